//! Building the MIME message both transports send.

use lettre::{
    Message,
    message::{Mailbox, MultiPart, SinglePart, header::ContentType},
};

use super::DeliveryError;
use crate::{
    config::EmailConfig,
    domain::{EmailAddress, TouchId},
    render::RenderedEmail,
};

/// One email, ready to go.
#[derive(Debug, Clone)]
pub struct OutboundEmail {
    pub touch: TouchId,
    pub to: EmailAddress,
    pub to_name: Option<String>,
    pub content: RenderedEmail,
}

impl OutboundEmail {
    /// Derived from the touch id, so every retry of a touch carries the same Message-ID
    /// (receivers and our own tests can deduplicate on it) and no two touches share one.
    pub fn message_id(&self, domain: &str) -> String {
        format!("<{}@{domain}>", self.touch.token())
    }
}

pub fn build_message(cfg: &EmailConfig, email: &OutboundEmail) -> Result<Message, DeliveryError> {
    let bad = |what: &str| DeliveryError::permanent(format!("cannot build message: bad {what}"));
    let from = Mailbox::new(
        cfg.from_name.clone(),
        cfg.from.as_str().parse().map_err(|_| bad("from address"))?,
    );
    let to = Mailbox::new(
        email.to_name.clone(),
        email
            .to
            .as_str()
            .parse()
            .map_err(|_| bad("recipient address"))?,
    );
    let builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.content.subject.clone())
        .message_id(Some(email.message_id(cfg.from.domain())));
    let text = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(email.content.text.clone());
    let built = match &email.content.html {
        None => builder.singlepart(text),
        Some(html) => builder.multipart(
            MultiPart::alternative().singlepart(text).singlepart(
                SinglePart::builder()
                    .header(ContentType::TEXT_HTML)
                    .body(html.clone()),
            ),
        ),
    };
    built.map_err(|_| bad("message"))
}
