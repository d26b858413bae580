//! `GET /u/{token}` and `POST /u/{token}`: one-click unsubscribe (RFC 8058), where the
//! `List-Unsubscribe` header of every marketing email points.
//!
//! Public by necessity: the mailbox provider's POST carries no cookie or credential
//! (the RFC forbids any), so the signed token in the path is the only authority, and it
//! alone names the contact (`channels::unsubscribe`). The POST withdraws email consent
//! before it answers, and answers 200, never a redirect; a repeat changes nothing more
//! and answers the same. The GET is for a person whose mail client opened the link: it
//! shows a button that sends that POST and changes nothing itself, because link
//! scanners fetch every URL in a message.
//!
//! Every token that leads to no contact (forged, signed with another key, malformed,
//! or for a contact no longer stored) gets the same 404, so the endpoint tells nobody
//! which contacts exist. The token is neither logged nor echoed.

use crate::domain::Channel;
use crate::store::Store;
use axum::{
    extract::{Path, State, rejection::PathRejection},
    http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, HeaderName, REFERRER_POLICY},
    response::Html,
};

use crate::feedback::{self, FeedbackError, Inbound};
use crate::learning::ResponseKind;
use crate::{
    api::{ApiError, ApiState, one_click::OneClick},
    channels::unsubscribe,
    domain::ContactId,
};

/// A page to show, with headers that keep it (and its token-bearing URL) out of caches,
/// referrers and frames.
type Page = ([(HeaderName, &'static str); 3], Html<String>);

/// `GET`: a confirmation page with a button that POSTs the one-click body.
pub(in crate::api) async fn confirm<S: Store>(
    State(state): State<ApiState<S>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Page, ApiError> {
    let contact = contact_of(&state, path)?;
    if state
        .store
        .get_contact(&contact)
        .await
        .map_err(ApiError::internal)?
        .is_none()
    {
        return Err(unknown_link());
    }
    // No `action`: the form posts to the URL the page came from, whatever prefix a
    // proxy put in front of `/u/`.
    let body = format!(
        "<h1>Unsubscribe</h1>\n<p>Stop all email from {}?</p>\n\
         <form method=\"post\">\n\
         <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\n\
         <button type=\"submit\">Unsubscribe</button>\n</form>",
        escape(&state.cfg.brand_name)
    );
    Ok(page("Unsubscribe", &body))
}

/// `POST`: the one-click unsubscribe itself.
pub(in crate::api) async fn one_click<S: Store>(
    State(state): State<ApiState<S>>,
    path: Result<Path<String>, PathRejection>,
    body: Result<OneClick, ApiError>,
) -> Result<Page, ApiError> {
    // The token first: a request for nobody is the same 404 whatever its body.
    let contact = contact_of(&state, path)?;
    body?;
    // Recorded before the answer: a 200 means the opt-out is stored. A store out of
    // reach is a 503 with Retry-After (another store error a 500), so the provider
    // tries again. It is an `unsubscribe` response too
    // (attributed to the last email sent), once: a repeated click changes nothing.
    let now = state.clock.now();
    let store = state.store.as_ref();
    match store
        .get_contact(&contact)
        .await
        .map_err(ApiError::internal)?
    {
        None => return Err(unknown_link()),
        Some(c) if !c.email_consent => {}
        Some(_) => {
            let input = Inbound {
                id: None,
                kind: ResponseKind::Unsubscribe,
                touch: None,
                contact: Some(contact.clone()),
                channel: Some(Channel::Email),
                at: now,
                source: "unsubscribe",
            };
            match feedback::respond(store, &state.cfg, input, now).await {
                Ok(_) => {}
                Err(FeedbackError::UnknownContact(_)) => return Err(unknown_link()),
                Err(e) => return Err(super::responses::feedback_error(e)),
            }
        }
    }
    tracing::info!(
        contact = contact.as_str(),
        "one-click unsubscribe: email consent withdrawn"
    );
    let body = format!(
        "<h1>Unsubscribed</h1>\n<p>You will get no more email from {}.</p>",
        escape(&state.cfg.brand_name)
    );
    Ok(page("Unsubscribed", &body))
}

/// The contact the path's token was signed for, or the uniform 404.
fn contact_of<S: Store>(
    state: &ApiState<S>,
    path: Result<Path<String>, PathRejection>,
) -> Result<ContactId, ApiError> {
    let Ok(Path(token)) = path else {
        return Err(unknown_link());
    };
    unsubscribe::verify(&state.unsubscribe_key, &token).ok_or_else(unknown_link)
}

/// The one answer for every token that leads to no contact.
fn unknown_link() -> ApiError {
    ApiError::NotFound("this unsubscribe link is not valid".into())
}

fn page(title: &str, body: &str) -> Page {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n</head>\n\
         <body>\n{body}\n</body>\n</html>\n"
    );
    (
        [
            (CACHE_CONTROL, "no-store"),
            (REFERRER_POLICY, "no-referrer"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
            ),
        ],
        Html(html),
    )
}

/// `text` safe inside HTML content.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escape_covers_the_html_specials() {
        assert_eq!(
            super::escape("Tom & Jerry's <\"Co\">"),
            "Tom &amp; Jerry&#39;s &lt;&quot;Co&quot;&gt;"
        );
    }
}
