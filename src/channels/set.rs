//! Every configured channel, built once at start-up, with what they share at run time:
//! the key that signs unsubscribe links and the webhook endpoint's disabled state.

use crate::channels::SetupError;
use crate::store::Coordination;
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use base64::Engine as _;

use super::{
    EmailChannel, SmsChannel, WebhookChannel,
    sms::{SmsOutbox, Twilio, TwilioSettings},
    webhook::{Webhook, WebhookSettings, parse_secret},
};
use crate::config::{Config, SmsTransport, WebhookConfig};

/// The shortest unsubscribe signing key accepted from the environment.
const MIN_SIGNING_KEY: usize = 16;
/// The store setting holding the generated unsubscribe signing key.
const SIGNING_KEY: &str = "unsubscribe.signing_key";
/// How long a replica trusts what it last read about the webhook endpoint being
/// disabled (another replica may have seen the 410).
const RECHECK: Duration = Duration::from_secs(5);

pub struct Channels {
    pub email: Arc<dyn EmailChannel>,
    pub sms: Option<Arc<dyn SmsChannel>>,
    pub webhook: Option<Arc<dyn WebhookChannel>>,
    /// Signs the per-contact tokens in `List-Unsubscribe` links.
    pub unsubscribe_key: Arc<Vec<u8>>,
    /// (disabled, when last read from the store).
    webhook_disabled: Mutex<(bool, Option<Instant>)>,
}

impl Channels {
    /// Email only, with a random signing key (tests, tools).
    pub fn email_only(email: Arc<dyn EmailChannel>) -> Self {
        Self::new(email, None, None, Arc::new(random_key()))
    }

    pub fn new(
        email: Arc<dyn EmailChannel>,
        sms: Option<Arc<dyn SmsChannel>>,
        webhook: Option<Arc<dyn WebhookChannel>>,
        unsubscribe_key: Arc<Vec<u8>>,
    ) -> Self {
        Self {
            email,
            sms,
            webhook,
            unsubscribe_key,
            webhook_disabled: Mutex::new((false, None)),
        }
    }

    /// Builds every configured channel. Secrets come from the environment variables the
    /// config names (`env`); an error names the variable or key, never a secret.
    pub async fn build<S: Coordination>(
        cfg: &Config,
        store: &S,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, BuildError> {
        let email = super::email_channel(&cfg.email).map_err(|e| e.within("email channel"))?;
        let secret = |name: &str| env(name).filter(|v| !v.is_empty());
        let sms = sms_channel(cfg, &secret)?;
        let webhook = match &cfg.webhook {
            None => None,
            Some(w) => Some(webhook_channel(w, &secret)?),
        };
        let unsubscribe_key = unsubscribe_key(cfg, store, &secret).await?;
        Ok(Self::new(
            Arc::from(email),
            sms,
            webhook,
            Arc::new(unsubscribe_key),
        ))
    }

    fn disabled_setting(hook: &dyn WebhookChannel) -> String {
        format!("webhook.disabled.{}", hook.fingerprint())
    }

    /// Whether the webhook endpoint was disabled by a 410 (under its current config).
    pub async fn webhook_disabled<S: Coordination>(&self, store: &S) -> bool {
        let Some(hook) = &self.webhook else {
            return false;
        };
        {
            let state = self
                .webhook_disabled
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if state.0 || state.1.is_some_and(|at| at.elapsed() < RECHECK) {
                return state.0;
            }
        }
        let disabled = match store.setting(&Self::disabled_setting(hook.as_ref())).await {
            Ok(v) => v.is_some(),
            // Unknown: send; a 410 would disable it again.
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the webhook endpoint's state");
                false
            }
        };
        *self
            .webhook_disabled
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = (disabled, Some(Instant::now()));
        disabled
    }

    /// Disables the webhook endpoint after a 410, for every replica, until its
    /// configuration changes.
    pub async fn disable_webhook<S: Coordination>(
        &self,
        store: &S,
        at: chrono::DateTime<chrono::Utc>,
    ) {
        let Some(hook) = &self.webhook else { return };
        *self
            .webhook_disabled
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = (true, Some(Instant::now()));
        tracing::error!(
            "the webhook endpoint answered 410 Gone: it is disabled until [channels.webhook] changes"
        );
        if let Err(e) = store
            .set_setting(&Self::disabled_setting(hook.as_ref()), &at.to_rfc3339())
            .await
        {
            tracing::error!(error = %e, "cannot record that the webhook endpoint is disabled");
        }
    }
}

/// Why the channels could not be built: their configuration (exit 78), or the store
/// that keeps the generated signing key (exit 69).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Config(#[from] SetupError),
    #[error("cannot read the unsubscribe signing key: {0}")]
    Store(#[source] crate::store::StoreError),
}

impl From<String> for BuildError {
    fn from(e: String) -> Self {
        Self::Config(e.into())
    }
}

/// The SMS channel, if one is configured: the outbox, or Twilio with its auth token.
fn sms_channel(
    cfg: &Config,
    secret: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Arc<dyn SmsChannel>>, SetupError> {
    Ok(match cfg.sms.as_ref().map(|s| &s.transport) {
        None => None,
        Some(SmsTransport::Outbox { dir }) => Some(Arc::new(
            SmsOutbox::new(dir.clone()).map_err(|e| e.within("sms channel"))?,
        )),
        Some(SmsTransport::Twilio {
            base_url,
            account_sid,
            auth_token_env,
            sender,
            timeout,
            allow_private,
        }) => {
            let auth_token = secret(auth_token_env).ok_or_else(|| {
                format!("sms channel: the auth token variable {auth_token_env} is not set")
            })?;
            let status_callback = cfg
                .api
                .public_url
                .as_ref()
                .map(|u| format!("{u}/v1/twilio/status"));
            Some(Arc::new(
                Twilio::new(TwilioSettings {
                    base_url: base_url.clone(),
                    account_sid: account_sid.clone(),
                    auth_token,
                    sender: sender.clone(),
                    status_callback,
                    timeout: *timeout,
                    allow_private: *allow_private,
                })
                .map_err(|e| e.within("sms channel"))?,
            ))
        }
    })
}

/// The webhook channel, signing with the current secret and the previous one.
fn webhook_channel(
    w: &WebhookConfig,
    secret: &impl Fn(&str) -> Option<String>,
) -> Result<Arc<dyn WebhookChannel>, SetupError> {
    let mut keys = Vec::new();
    for name in std::iter::once(&w.secret_env).chain(&w.previous_secret_env) {
        let value = secret(name)
            .ok_or_else(|| format!("webhook channel: the secret variable {name} is not set"))?;
        keys.push(
            parse_secret(&value).map_err(|e| e.within(format_args!("webhook channel: {name}")))?,
        );
    }
    Ok(Arc::new(
        Webhook::new(WebhookSettings {
            url: w.url.clone(),
            keys,
            timeout: w.timeout,
            allow_private: w.allow_private,
        })
        .map_err(|e| e.within("webhook channel"))?,
    ))
}

/// The key that signs unsubscribe links: from the variable `api.signing_secret_env`
/// names, else the one generated and kept in the store.
async fn unsubscribe_key<S: Coordination>(
    cfg: &Config,
    store: &S,
    secret: &impl Fn(&str) -> Option<String>,
) -> Result<Vec<u8>, BuildError> {
    match &cfg.api.signing_secret_env {
        Some(name) => {
            let key = secret(name)
                .ok_or_else(|| format!("api: the signing secret variable {name} is not set"))?
                .into_bytes();
            // Tokens are only as unguessable as the key.
            if key.len() < MIN_SIGNING_KEY {
                return Err(BuildError::Config(
                    format!(
                        "api: the signing secret in {name} is {} bytes; use at least {MIN_SIGNING_KEY} random bytes",
                        key.len()
                    )
                    .into(),
                ));
            }
            Ok(key)
        }
        // Generated once and kept in the store, so every replica (and every restart)
        // signs and verifies with the same key.
        None => {
            let fresh = base64::engine::general_purpose::STANDARD.encode(random_key());
            let kept = store
                .init_setting(SIGNING_KEY, &fresh)
                .await
                .map_err(BuildError::Store)?;
            base64::engine::general_purpose::STANDARD
                .decode(kept)
                .map_err(|_| {
                    BuildError::Store(crate::store::StoreError::Corrupt(format!(
                        "the stored setting {SIGNING_KEY} is not base64"
                    )))
                })
        }
    }
}

fn random_key() -> Vec<u8> {
    (0..32).map(|_| rand::random::<u8>()).collect()
}
