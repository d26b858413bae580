//! A hard bounce learned while sending: the provider refused a touch because the
//! address is dead (SMTP `550 5.1.1` at `RCPT`, or after the body). It is a
//! `bounce_hard` response like one posted to the API, through the same path
//! ([`super::learn_response`]): the same suppression, notes and score. It differs in
//! what it answers: the touch was never sent, so the record names it but settles
//! nothing, and it carries the provider's codes (`smtp 550 5.1.1`) as its detail.

use crate::domain::Channel;
use crate::store::{Contacts, Ledger, Relationships};
use chrono::{DateTime, Utc};

use super::{About, FeedbackError, Inbound, Recorded, learn_response};
use crate::{
    config::Config,
    domain::{ContactId, TouchId},
    learning::ResponseKind,
};

/// The hard bounce of one send.
#[derive(Debug, Clone)]
pub struct Bounce {
    pub touch: TouchId,
    pub contact: ContactId,
    /// The channel whose address bounced.
    pub channel: Channel,
    /// The provider's codes only (`smtp 550 5.1.1`), never its text.
    pub detail: String,
    pub at: DateTime<Utc>,
}

/// Records `bounce` as a `bounce_hard` response: the address on its channel is
/// suppressed (consent withdrawn, its hash on the suppression list), as a `bounce_hard`
/// posted to the API would.
pub async fn bounced<S: Contacts + Ledger + Relationships>(
    store: &S,
    cfg: &Config,
    bounce: Bounce,
    now: DateTime<Utc>,
) -> Result<Recorded, FeedbackError> {
    let input = Inbound {
        // A new id each time: a send bounces once (after the bounce its address is
        // suppressed and no later send reaches it), and a touch revived after the
        // contact's address changed may bounce again on the new one, which must count.
        id: None,
        kind: ResponseKind::BounceHard,
        touch: None,
        contact: Some(bounce.contact.clone()),
        channel: Some(bounce.channel),
        at: bounce.at,
        source: "delivery",
    };
    learn_response(
        store,
        cfg,
        &input,
        &bounce.contact,
        About::Unsent(bounce.touch),
        Some(bounce.detail),
        now,
    )
    .await
}
