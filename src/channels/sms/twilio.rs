//! The Twilio-compatible Messages API. Message creation has no idempotency key, so a
//! request that may have reached Twilio is never called transient: a timeout after
//! sending is `Uncertain`, and the dispatcher decides whether to risk a duplicate.

use crate::channels::SetupError;
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde::Deserialize;

use crate::channels::{DeliveryError, OutboundSms, SmsChannel, http};
use crate::domain::TouchId;

/// Error bodies are a few hundred bytes; anything past this is not Twilio's JSON.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Twilio error codes with their own handling.
const OPTED_OUT: u32 = 21610;
const RATE_LIMITED: u32 = 20429;
const AUTH_FAILED: u32 = 20003;

/// Who the SMS is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsSender {
    /// A phone number (E.164) or an alphanumeric sender id.
    From(String),
    /// A Twilio Messaging Service SID (`MG...`).
    MessagingService(String),
}

/// What the Twilio client needs; built from `[channels.sms]` by the caller, which reads
/// the auth token from the environment variable the config names.
#[derive(Clone)]
pub struct TwilioSettings {
    /// e.g. `https://api.twilio.com` (tests and other gateways stand in here).
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: String,
    pub sender: SmsSender,
    /// Full URL Twilio posts status updates to, with `?touch=<touch token>` appended per
    /// message by the client; `None` when no public URL is configured.
    pub status_callback: Option<String>,
    pub timeout: std::time::Duration,
    /// Allow private and loopback addresses (tests; an in-house gateway).
    pub allow_private: bool,
}

/// The client.
pub struct Twilio {
    client: reqwest::Client,
    messages_url: url::Url,
    account_sid: String,
    auth_token: secrecy::SecretString,
    sender: SmsSender,
    status_callback: Option<url::Url>,
    timeout: Duration,
}

/// The auth token stays out of debug output.
impl std::fmt::Debug for Twilio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twilio")
            .field("endpoint", &http::redacted(&self.messages_url))
            .field("account_sid", &self.account_sid)
            .field("sender", &self.sender)
            .finish_non_exhaustive()
    }
}

impl Twilio {
    /// Checks the URLs and credentials up front, so a bad config fails at start.
    pub fn new(settings: TwilioSettings) -> Result<Self, SetupError> {
        let base = http::check_url(&settings.base_url, settings.allow_private)
            .map_err(|e| format!("twilio base_url: {e}"))?;
        let sid = settings.account_sid.trim();
        if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err("twilio account_sid: expected letters and digits (AC...)".into());
        }
        if settings.auth_token.is_empty() {
            return Err("twilio auth token: empty".into());
        }
        let sender_empty = match &settings.sender {
            SmsSender::From(s) | SmsSender::MessagingService(s) => s.trim().is_empty(),
        };
        if sender_empty {
            return Err("twilio sender: empty".into());
        }
        if settings.timeout.is_zero() {
            return Err("twilio timeout: must be above zero".into());
        }
        let path = format!(
            "{}/2010-04-01/Accounts/{sid}/Messages.json",
            base.path().trim_end_matches('/')
        );
        let mut messages_url = base;
        messages_url.set_path(&path);
        // The callback is Twilio's to call, not ours: only its shape is checked.
        let status_callback = settings
            .status_callback
            .as_deref()
            .map(|cb| http::check_url(cb, true).map_err(|e| format!("twilio status_callback: {e}")))
            .transpose()?;
        Ok(Self {
            client: http::client(settings.timeout, settings.allow_private)?,
            messages_url,
            account_sid: sid.to_owned(),
            auth_token: settings.auth_token.into(),
            sender: settings.sender,
            status_callback,
            timeout: settings.timeout,
        })
    }

    async fn deliver(
        &self,
        sms: &OutboundSms,
        gate: &dyn crate::channels::Gate,
    ) -> Result<(), DeliveryError> {
        use secrecy::ExposeSecret;
        let mut form = vec![("To", sms.to.as_str().to_owned())];
        form.push(match &self.sender {
            SmsSender::From(from) => ("From", from.clone()),
            SmsSender::MessagingService(sid) => ("MessagingServiceSid", sid.clone()),
        });
        form.push(("Body", sms.body.clone()));
        if let Some(cb) = self.callback_for(&sms.touch) {
            form.push(("StatusCallback", cb));
        }
        gate.admit(self.timeout).await?;
        let sent = self
            .client
            .post(self.messages_url.clone())
            .basic_auth(&self.account_sid, Some(self.auth_token.expose_secret()))
            .form(&form)
            .send()
            .await;
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(err) => return Err(self.transport_error(&err)),
        };
        let status = resp.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = http::retry_after(resp.headers(), Utc::now());
        let code = error_code(&mut resp).await;
        Err(classify(status, code, retry_after))
    }

    /// The status callback URL with this touch's token, so status updates find their
    /// touch without a lookup by Twilio's message SID.
    fn callback_for(&self, touch: &TouchId) -> Option<String> {
        let mut cb = self.status_callback.clone()?;
        cb.query_pairs_mut().append_pair("touch", &touch.token());
        Some(cb.into())
    }

    fn transport_error(&self, err: &reqwest::Error) -> DeliveryError {
        if let Some(refused) = http::refused_address(err) {
            return DeliveryError::permanent(format!(
                "twilio base_url refused: {refused} (allow_private permits an internal gateway)"
            ));
        }
        // Connecting covers DNS, TCP and TLS: nothing of the message has left yet.
        if err.is_connect() {
            let what = if err.is_timeout() {
                "timed out".into()
            } else {
                http::failure_kind(err)
            };
            return DeliveryError::transient(format!("twilio connection failed ({what})"));
        }
        if err.is_builder() {
            return DeliveryError::permanent("twilio request could not be built");
        }
        if err.is_timeout() {
            return DeliveryError::uncertain(format!(
                "twilio no answer within {:?} (the message may have been created)",
                self.timeout
            ));
        }
        DeliveryError::uncertain(format!(
            "twilio connection broke off after sending ({}; the message may have been created)",
            http::failure_kind(err)
        ))
    }
}

/// The `code` of Twilio's error JSON, if the body is one. Reads at most
/// `MAX_ERROR_BODY`; the body itself is never kept (its `message` may echo the number).
async fn error_code(resp: &mut reqwest::Response) -> Option<u32> {
    #[derive(Deserialize)]
    struct TwilioError {
        code: Option<u32>,
    }
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ERROR_BODY {
            return None;
        }
    }
    serde_json::from_slice::<TwilioError>(&body).ok()?.code
}

/// A refusal to an outcome. Credential and URL mistakes are transient: a config error
/// must not permanently fail every queued message before ops can fix it.
fn classify(status: StatusCode, code: Option<u32>, retry_after: Option<Duration>) -> DeliveryError {
    let http = status.as_u16();
    let with_code = match code {
        Some(code) => format!("twilio {http} code {code}"),
        None => format!("twilio {http}"),
    };
    match (http, code) {
        (_, Some(OPTED_OUT)) => DeliveryError::opted_out("twilio 21610 (recipient opted out)"),
        (429, _) | (_, Some(RATE_LIMITED)) => {
            DeliveryError::transient(format!("{with_code} (rate limited)"))
                .with_retry_after(retry_after)
        }
        // A gateway's error can come back after Twilio created the message: uncertain,
        // so it is resent once at most (there is no idempotency key).
        (502 | 504, _) => {
            DeliveryError::uncertain(format!("{with_code} (gateway)")).with_retry_after(retry_after)
        }
        (500..=599, _) => DeliveryError::transient(with_code).with_retry_after(retry_after),
        (401 | 403, _) | (_, Some(AUTH_FAILED)) => DeliveryError::transient(format!(
            "{with_code} (authentication failed: check the account SID and auth token)"
        )),
        (404, _) => DeliveryError::transient(format!(
            "{with_code} (no such endpoint: check base_url and the account SID)"
        )),
        (300..=399, _) => DeliveryError::transient(format!(
            "{with_code} (redirects are not followed: check base_url)"
        )),
        _ => DeliveryError::permanent(with_code),
    }
}

impl SmsChannel for Twilio {
    fn send_gated<'a>(
        &'a self,
        sms: &'a OutboundSms,
        gate: &'a dyn crate::channels::Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.deliver(sms, gate))
    }

    fn kind(&self) -> &'static str {
        "twilio"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::DeliveryClass::{self, *};

    fn outcome(status: u16, code: Option<u32>) -> (DeliveryClass, String, Option<Duration>) {
        let wait = Some(Duration::from_secs(3));
        let status = StatusCode::from_u16(status).unwrap();
        let e = classify(status, code, wait);
        (e.class, e.reason, e.retry_after)
    }

    #[test]
    fn refusals_map_to_classes() {
        let wait = Some(Duration::from_secs(3));
        let cases = [
            (
                400,
                Some(21610),
                OptedOut,
                "twilio 21610 (recipient opted out)",
                None,
            ),
            (400, Some(21211), Permanent, "twilio 400 code 21211", None),
            (400, Some(21614), Permanent, "twilio 400 code 21614", None),
            (400, None, Permanent, "twilio 400", None),
            (422, None, Permanent, "twilio 422", None),
            (
                429,
                Some(20429),
                Transient,
                "twilio 429 code 20429 (rate limited)",
                wait,
            ),
            (429, None, Transient, "twilio 429 (rate limited)", wait),
            (
                400,
                Some(20429),
                Transient,
                "twilio 400 code 20429 (rate limited)",
                wait,
            ),
            (500, None, Transient, "twilio 500", wait),
            (503, Some(20503), Transient, "twilio 503 code 20503", wait),
        ];
        for (status, code, class, reason, retry) in cases {
            assert_eq!(
                outcome(status, code),
                (class, reason.to_owned(), retry),
                "{status} {code:?}"
            );
        }
        for (status, code) in [
            (401, Some(20003)),
            (403, None),
            (400, Some(20003)),
            (404, Some(20404)),
            (301, None),
        ] {
            let (class, reason, _) = outcome(status, code);
            assert_eq!(class, Transient, "{status}");
            assert!(reason.contains("check"), "{reason}");
        }
    }

    fn settings() -> TwilioSettings {
        TwilioSettings {
            base_url: "https://api.twilio.example/".into(),
            account_sid: "AC123".into(),
            auth_token: "tok".into(),
            sender: SmsSender::From("+15550001111".into()),
            status_callback: Some("https://rapport.example/twilio/status?x=1".into()),
            timeout: Duration::from_secs(5),
            allow_private: false,
        }
    }

    #[test]
    fn builds_the_messages_url_and_callback() {
        let t = Twilio::new(settings()).unwrap();
        assert_eq!(
            t.messages_url.as_str(),
            "https://api.twilio.example/2010-04-01/Accounts/AC123/Messages.json"
        );
        let touch = TouchId::from_stored("birthday:cus_1:2026".into());
        assert_eq!(
            t.callback_for(&touch).unwrap(),
            "https://rapport.example/twilio/status?x=1&touch=birthday.cus_1.2026"
        );
        let debug = format!("{t:?}");
        assert!(!debug.contains("tok"), "{debug}");
    }

    #[test]
    fn new_refuses_bad_settings() {
        let edits: [fn(&mut TwilioSettings); 6] = [
            |s| s.base_url = "http://10.0.0.1".into(),
            |s| s.account_sid = "AC/../x".into(),
            |s| s.auth_token = String::new(),
            |s| s.sender = SmsSender::MessagingService(" ".into()),
            |s| s.status_callback = Some("not a url".into()),
            |s| s.timeout = Duration::ZERO,
        ];
        for edit in edits {
            let mut s = settings();
            edit(&mut s);
            assert!(Twilio::new(s).is_err());
        }
    }
}
