//! Twilio's inbound side, as pure functions: no I/O, no axum. The routes that take
//! Twilio's webhooks call these.
//!
//! - [`signature`] / [`verify`]: the `X-Twilio-Signature` header, as Twilio's own
//!   validator (`twilio-python` `RequestValidator`) computes and checks it:
//!   <https://www.twilio.com/docs/usage/webhooks/webhooks-security>.
//! - [`keyword`]: whether an inbound SMS is an opt-out, opt-in or help keyword
//!   (<https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out>).
//! - [`twiml_message`]: the TwiML body that answers the inbound webhook, with or without
//!   a reply (<https://www.twilio.com/docs/messaging/twiml>).
//! - [`status_callback`]: what a `StatusCallback` (`MessageStatus`, `ErrorCode`) teaches
//!   the daemon about a contact
//!   (<https://www.twilio.com/docs/messaging/guides/outbound-message-status-in-status-callbacks>,
//!   <https://www.twilio.com/docs/api/errors>).
//!
//! The webhook's fields are in
//! <https://www.twilio.com/docs/messaging/guides/webhook-request>; `MessageSid` is the
//! dedupe key, and the caller answers within Twilio's 15 s.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// `X-Twilio-Signature` for a request to `url` with the form `params`:
/// base64(HMAC-SHA1(auth token, url + name + value for every parameter)), the names
/// sorted and each name's values sorted, with no separators. `params` are the decoded
/// form fields, all of them (Twilio adds fields without notice), repeats included; a GET
/// has none, its query being part of `url`.
pub fn signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `header` (the `X-Twilio-Signature` value) signs this request.
///
/// `url` must be the URL Twilio requested, rebuilt from the configured public base URL
/// rather than from the `Host` header. Twilio is not consistent about default ports, so,
/// as its validator does, the URL is also tried with `:443` (https) or `:80` (http) added
/// when it has no port, or removed when it has that one. Unlike that validator, a
/// non-default port is never removed: the URL we rebuild is the one Twilio was given.
///
/// The comparison is on the decoded bytes, by `hmac`'s `verify_slice`, which takes the
/// same time wherever the bytes differ; every URL variant is checked. An empty auth
/// token verifies nothing: anyone could sign with it.
pub(crate) fn verify(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: &str,
) -> bool {
    if auth_token.is_empty() {
        return false;
    }
    // Canonical base64 only, so each signature has one spelling, as with the string
    // comparison Twilio's validators do.
    let Ok(presented) = STANDARD.decode(header) else {
        return false;
    };
    let mut valid = false;
    for candidate in url_variants(url) {
        valid |= mac(auth_token, &candidate, params)
            .verify_slice(&presented)
            .is_ok();
    }
    valid
}

/// The HMAC over `url` and the sorted parameters, not yet finalised.
fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    // Sorting the pairs sorts by name, then each name's values: the order Twilio signs in.
    // Byte order of UTF-8 is code point order, as in Python's `sorted`.
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_unstable();
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(url.as_bytes());
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// `url` as given, then, for http and https, the same URL with its default port added
/// (none given) or removed (the default given).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    variants.extend(toggle_default_port(url));
    variants
}

fn toggle_default_port(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default = if scheme.eq_ignore_ascii_case("https") {
        "443"
    } else if scheme.eq_ignore_ascii_case("http") {
        "80"
    } else {
        return None;
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
    // The port is after the last colon that follows any userinfo and IPv6 literal.
    let host = authority.rfind('@').map_or(0, |at| at + 1);
    let host = authority[host..]
        .rfind(']')
        .map_or(host, |bracket| host + bracket + 1);
    match authority[host..].rfind(':') {
        None => Some(format!("{scheme}://{authority}:{default}{tail}")),
        Some(colon) => {
            let colon = host + colon;
            (&authority[colon + 1..] == default)
                .then(|| format!("{scheme}://{}{tail}", &authority[..colon]))
        }
    }
}

/// What an inbound SMS asks for, when it is a keyword rather than a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keyword {
    /// STOP and its synonyms: no more SMS until an opt-in.
    OptOut,
    /// START, UNSTOP, YES: SMS may resume.
    OptIn,
    /// HELP, INFO: answer with program and contact information.
    Help,
}

/// Twilio's default keywords on long codes (Advanced Opt-Out can add others; Twilio then
/// reports them in `OptOutType`).
const OPT_OUT: &[&str] = &[
    "STOP",
    "STOPALL",
    "UNSUBSCRIBE",
    "CANCEL",
    "END",
    "QUIT",
    "REVOKE",
    "OPTOUT",
];
const OPT_IN: &[&str] = &["START", "UNSTOP", "YES"];
const HELP: &[&str] = &["HELP", "INFO"];

/// The keyword an inbound SMS is, if any.
///
/// `opt_out_type` is the webhook's `OptOutType` field (`STOP`, `START`, `HELP`, sent
/// with Advanced Opt-Out): when it holds one of those it wins, since it says what Twilio
/// itself did with the message, custom keywords included. Otherwise the whole body,
/// trimmed, must equal a keyword, ignoring case: "Please stop messaging me" is a reply
/// (`None`), not an opt-out.
///
/// Trailing punctuation ("Stop!", "HELP?") is tolerated for opt-out and help but not for
/// opt-in: honouring a loosely written STOP can only send less, while a loosely read
/// "Yes!" (often an answer to a question) would resume SMS that Twilio, matching single
/// words, may still block.
pub(crate) fn keyword(body: &str, opt_out_type: Option<&str>) -> Option<Keyword> {
    if let Some(reported) = opt_out_type.and_then(reported_keyword) {
        return Some(reported);
    }
    let word = body.trim();
    if is_one_of(word, OPT_IN) {
        return Some(Keyword::OptIn);
    }
    let word = word.trim_end_matches(|c: char| c.is_ascii_punctuation() || c.is_whitespace());
    if is_one_of(word, OPT_OUT) {
        Some(Keyword::OptOut)
    } else if is_one_of(word, HELP) {
        Some(Keyword::Help)
    } else {
        None
    }
}

fn reported_keyword(opt_out_type: &str) -> Option<Keyword> {
    let value = opt_out_type.trim();
    [
        ("STOP", Keyword::OptOut),
        ("START", Keyword::OptIn),
        ("HELP", Keyword::Help),
    ]
    .into_iter()
    .find_map(|(name, kind)| value.eq_ignore_ascii_case(name).then_some(kind))
}

fn is_one_of(word: &str, keywords: &[&str]) -> bool {
    keywords.iter().any(|k| word.eq_ignore_ascii_case(k))
}

const XML_DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8"?>"#;

/// The TwiML answering an inbound message webhook (served as `text/xml`): an empty
/// `<Response/>` for no reply, or one `<Message>` with `text`, XML-escaped. A blank
/// `text` is no reply, as Twilio does not send an empty SMS.
pub(crate) fn twiml_message(text: Option<&str>) -> String {
    match text.filter(|t| !t.trim().is_empty()) {
        None => format!("{XML_DECLARATION}<Response/>"),
        Some(text) => format!(
            "{XML_DECLARATION}<Response><Message>{}</Message></Response>",
            xml_escape(text)
        ),
    }
}

/// `text` as XML character data or attribute value: the five special characters as
/// entities, and the characters XML 1.0 cannot carry at all dropped (they cannot be
/// escaped either, and would make Twilio reject the whole document).
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// A `MessageStatus` of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryStatus {
    Queued,
    Accepted,
    Scheduled,
    Sending,
    Sent,
    Delivered,
    Read,
    Undelivered,
    Failed,
    Canceled,
}

impl DeliveryStatus {
    /// The status Twilio names `status` (any case), if it is one this module knows.
    pub(crate) fn parse(status: &str) -> Option<Self> {
        let known = [
            ("queued", Self::Queued),
            ("accepted", Self::Accepted),
            ("scheduled", Self::Scheduled),
            ("sending", Self::Sending),
            ("sent", Self::Sent),
            ("delivered", Self::Delivered),
            ("read", Self::Read),
            ("undelivered", Self::Undelivered),
            ("failed", Self::Failed),
            ("canceled", Self::Canceled),
        ];
        let status = status.trim();
        known
            .into_iter()
            .find_map(|(name, s)| status.eq_ignore_ascii_case(name).then_some(s))
    }
}

/// What a status callback teaches the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusOutcome {
    /// The handset has it (`delivered`, or `read` where read receipts exist).
    Delivered,
    /// Nothing to learn yet: still on its way, or `sent` to a carrier that may never
    /// report delivery. Also any status this module does not know.
    InFlight,
    /// It will not arrive.
    Failed { kind: FailureKind },
}

/// Whose problem a failed message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// The recipient replied STOP (21610): record the opt-out, never retry.
    OptedOut,
    /// The number cannot take SMS, now or later: stop using it.
    HardBounce,
    /// The handset or carrier may take it later, or the cause is unknown.
    SoftBounce,
    /// Our account, sender, content or configuration: not the contact's doing.
    Ours,
}

/// What the daemon learns from a status callback: `message_status` is `MessageStatus`,
/// `error_code` is `ErrorCode` (absent or empty when there is none).
///
/// `undelivered` and `failed` are classified by error code ([`failure_kind`]); a
/// `canceled` message (only a scheduled message we cancelled can be) failed through no
/// fault of the contact's. Error codes on other statuses are ignored.
pub(crate) fn status_callback(message_status: &str, error_code: Option<&str>) -> StatusOutcome {
    use DeliveryStatus as S;
    match DeliveryStatus::parse(message_status) {
        Some(S::Delivered | S::Read) => StatusOutcome::Delivered,
        Some(S::Undelivered | S::Failed) => StatusOutcome::Failed {
            kind: failure_kind(error_code.and_then(|c| c.trim().parse().ok())),
        },
        Some(S::Canceled) => StatusOutcome::Failed {
            kind: FailureKind::Ours,
        },
        Some(S::Queued | S::Accepted | S::Scheduled | S::Sending | S::Sent) | None => {
            StatusOutcome::InFlight
        }
    }
}

/// The error codes with a known owner (<https://www.twilio.com/docs/api/errors/NNNNN>).
/// Any other code, or none, is a soft bounce: retrying later costs one message, while
/// wrongly calling a number dead loses the contact's SMS for good.
fn failure_kind(error_code: Option<u32>) -> FailureKind {
    use FailureKind::*;
    match error_code {
        // Attempt to send to unsubscribed recipient: the contact replied STOP.
        Some(21610) => OptedOut,
        // Invalid 'To' phone number.
        Some(21211) => HardBounce,
        // 'To' not reachable with this To/From combination. Usually a landline or a
        // number no route reaches; it can also be our sender's reach, so this is the least
        // certain of the hard bounces (RELIABILITY.md 3.3 lists it as permanent).
        Some(21612) => HardBounce,
        // 'To' is not a valid mobile number.
        Some(21614) => HardBounce,
        // 'To' is a landline (my reading of the code; unverified).
        Some(21635) => HardBounce,
        // Unknown destination handset: the number is not in service.
        Some(30005) => HardBounce,
        // Landline or unreachable carrier.
        Some(30006) => HardBounce,
        // Unreachable destination handset: switched off or out of coverage, temporary.
        Some(30003) => SoftBounce,
        // Message blocked: by the recipient, the carrier or a barring; which one Twilio
        // does not say, so it counts as unknown.
        Some(30004) => SoftBounce,
        // Unknown error.
        Some(30008) => SoftBounce,
        // Permission to send to the 'To' region not enabled: our geo permissions.
        Some(21408) => Ours,
        // 'From' is not a message-enabled number of this account.
        Some(21606) => Ours,
        // Trial account, 'To' not verified.
        Some(21608) => Ours,
        // Queue overflow: we sent faster than the sender's rate allows.
        Some(30001) => Ours,
        // Account suspended.
        Some(30002) => Ours,
        // Carrier violation / filtered: content or sender registration, not the contact.
        Some(30007) => Ours,
        // US A2P 10DLC: sent from an unregistered number.
        Some(30034) => Ours,
        _ => SoftBounce,
    }
}

#[cfg(test)]
mod tests;
