//! Outbound webhooks per the Standard Webhooks spec: signed POSTs whose `webhook-id`
//! derives from the touch, so a resend (after a timeout, a crash) is deduped by the
//! receiver. Every failure but a 410 and a refused address is transient: the dispatcher
//! owns the retry schedule.

mod sign;

use crate::channels::SetupError;
use std::time::Duration;

use chrono::Utc;
use futures::future::BoxFuture;
use reqwest::{StatusCode, header::CONTENT_TYPE};
use sha2::{Digest, Sha256};

pub use sign::{parse_secret, sign, webhook_id};

use super::{DeliveryError, OutboundWebhook, WebhookChannel, http};

/// What the webhook client needs; built from `[channels.webhook]` by the caller.
#[derive(Clone)]
pub struct WebhookSettings {
    pub url: String,
    /// Signing keys, decoded from `whsec_` secrets: the current one first, then the
    /// previous one during a key rotation (both signatures are sent).
    pub keys: Vec<Vec<u8>>,
    pub timeout: std::time::Duration,
    /// Allow private and loopback addresses (tests; an in-house receiver).
    pub allow_private: bool,
}

/// The webhook endpoint client.
pub struct Webhook {
    client: reqwest::Client,
    url: url::Url,
    keys: Vec<Vec<u8>>,
    timeout: Duration,
    fingerprint: String,
}

/// Keys stay out of debug output.
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("endpoint", &http::redacted(&self.url))
            .field("keys", &self.keys.len())
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl Webhook {
    /// Checks the URL and keys up front, so a bad endpoint fails at start, not per touch.
    pub fn new(settings: WebhookSettings) -> Result<Self, SetupError> {
        let url = http::check_url(&settings.url, settings.allow_private)
            .map_err(|e| format!("webhook url: {e}"))?;
        if settings.keys.is_empty() {
            return Err("webhook: at least one signing key is needed".into());
        }
        if settings.keys.iter().any(Vec::is_empty) {
            return Err("webhook: a signing key is empty".into());
        }
        if settings.timeout.is_zero() {
            return Err("webhook: the timeout must be above zero".into());
        }
        let client = http::client(settings.timeout, settings.allow_private)?;
        let fingerprint = fingerprint(url.as_str(), &settings.keys);
        Ok(Self {
            client,
            url,
            keys: settings.keys,
            timeout: settings.timeout,
            fingerprint,
        })
    }

    async fn deliver(
        &self,
        hook: &OutboundWebhook,
        gate: &dyn crate::channels::Gate,
    ) -> Result<(), DeliveryError> {
        gate.admit(self.timeout).await?;
        let id = webhook_id(&hook.touch);
        // Each attempt is signed afresh: receivers reject timestamps older than ~5 min.
        let timestamp = Utc::now().timestamp();
        let signature = sign(&id, timestamp, &hook.body, &self.keys);
        let sent = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(hook.body.clone())
            .send()
            .await;
        match sent {
            // The body is not read: a 2xx is the whole answer, and a slow body must not
            // turn a delivered webhook into a failure.
            Ok(resp) => classify(resp.status(), http::retry_after(resp.headers(), Utc::now())),
            Err(err) => Err(self.transport_error(&err)),
        }
    }

    /// Receivers dedupe on `webhook-id`, so a timeout is a plain transient failure: the
    /// resend is safe even if the first one arrived.
    fn transport_error(&self, err: &reqwest::Error) -> DeliveryError {
        if let Some(refused) = http::refused_address(err) {
            return DeliveryError::permanent(format!(
                "webhook url refused: {refused} (allow_private permits internal receivers)"
            ));
        }
        if err.is_timeout() {
            let phase = if err.is_connect() {
                "connecting"
            } else {
                "waiting for the answer"
            };
            return DeliveryError::transient(format!(
                "webhook timed out {phase} (timeout {:?})",
                self.timeout
            ));
        }
        DeliveryError::transient(format!(
            "webhook request failed ({})",
            http::failure_kind(err)
        ))
    }
}

/// A response status to an outcome. `retry_after` is the response's `Retry-After`.
fn classify(status: StatusCode, retry_after: Option<Duration>) -> Result<(), DeliveryError> {
    let code = status.as_u16();
    if status.is_success() {
        return Ok(());
    }
    if status == StatusCode::GONE {
        return Err(DeliveryError::gone("webhook 410"));
    }
    if status.is_redirection() {
        return Err(DeliveryError::transient(format!(
            "webhook {code} (redirects are not followed)"
        )));
    }
    let reason = match code {
        429 | 502 | 504 => format!("webhook {code} (throttled)"),
        _ => format!("webhook {code}"),
    };
    Err(DeliveryError::transient(reason).with_retry_after(retry_after))
}

/// Hashes the URL and every key, length-prefixed so no two configurations collide by
/// concatenation.
fn fingerprint(url: &str, keys: &[Vec<u8>]) -> String {
    let mut hasher = Sha256::new();
    for part in std::iter::once(url.as_bytes()).chain(keys.iter().map(Vec::as_slice)) {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    sign::hex(&hasher.finalize())[..16].to_owned()
}

impl WebhookChannel for Webhook {
    fn send_gated<'a>(
        &'a self,
        hook: &'a OutboundWebhook,
        gate: &'a dyn crate::channels::Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(self.deliver(hook, gate))
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channels::DeliveryClass;

    fn settings(url: &str, keys: Vec<Vec<u8>>) -> WebhookSettings {
        WebhookSettings {
            url: url.into(),
            keys,
            timeout: Duration::from_secs(5),
            allow_private: false,
        }
    }

    #[test]
    fn statuses_map_to_classes() {
        let wait = Some(Duration::from_secs(7));
        let class = |code: u16| {
            classify(StatusCode::from_u16(code).unwrap(), wait)
                .err()
                .map(|e| (e.class, e.retry_after))
        };
        for ok in [200, 201, 202, 204, 299] {
            assert_eq!(class(ok), None, "{ok}");
        }
        assert_eq!(class(410), Some((DeliveryClass::Gone, None)));
        for code in [301, 302, 307, 308] {
            assert_eq!(
                class(code),
                Some((DeliveryClass::Transient, None)),
                "{code}"
            );
        }
        for code in [400, 401, 404, 413, 429, 500, 502, 503, 504] {
            assert_eq!(
                class(code),
                Some((DeliveryClass::Transient, wait)),
                "{code}"
            );
        }
        let redirect = classify(StatusCode::MOVED_PERMANENTLY, None).unwrap_err();
        assert_eq!(redirect.reason, "webhook 301 (redirects are not followed)");
    }

    #[test]
    fn fingerprint_follows_url_and_keys() {
        let k1 = vec![1u8; 24];
        let k2 = vec![2u8; 24];
        let base = Webhook::new(settings("https://a.example/hook", vec![k1.clone()])).unwrap();
        let same = Webhook::new(settings("https://a.example/hook", vec![k1.clone()])).unwrap();
        let fp = base.fingerprint();
        assert_eq!(fp.len(), 16);
        assert!(fp.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(fp, same.fingerprint());
        for other in [
            settings("https://b.example/hook", vec![k1.clone()]),
            settings("https://a.example/hook", vec![k2.clone()]),
            settings("https://a.example/hook", vec![k1.clone(), k2.clone()]),
        ] {
            assert_ne!(fp, Webhook::new(other).unwrap().fingerprint());
        }
    }

    #[test]
    fn new_refuses_bad_settings() {
        let key = vec![vec![1u8; 24]];
        assert!(Webhook::new(settings("https://a.example/", vec![])).is_err());
        assert!(Webhook::new(settings("ftp://a.example/", key.clone())).is_err());
        assert!(Webhook::new(settings("http://169.254.169.254/", key.clone())).is_err());
        assert!(Webhook::new(settings("http://[::1]:80/", key.clone())).is_err());
        let mut zero = settings("https://a.example/", key);
        zero.timeout = Duration::ZERO;
        assert!(Webhook::new(zero).is_err());
    }
}
