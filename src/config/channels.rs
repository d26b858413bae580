//! The channels' settings once validated: `[channels.email]`, `[channels.sms]`,
//! `[channels.webhook]`, and the provider `rate` each may set.

use std::{fmt, path::PathBuf, time::Duration};

use super::format_duration;
use crate::domain::EmailAddress;

#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub transport: SmsTransport,
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone)]
pub enum SmsTransport {
    /// Each SMS becomes a file in `dir`.
    Outbox { dir: PathBuf },
    /// A Twilio-compatible Messages API.
    Twilio {
        base_url: String,
        account_sid: String,
        /// The name of the environment variable holding the auth token.
        auth_token_env: String,
        sender: crate::channels::sms::SmsSender,
        timeout: Duration,
        allow_private: bool,
    },
}

/// `[channels.webhook]`: the one endpoint webhook touches are posted to.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// Environment variables holding `whsec_` secrets: the current one, and the
    /// previous one while receivers rotate (both signatures are sent).
    pub secret_env: String,
    pub previous_secret_env: Option<String>,
    pub timeout: Duration,
    /// The wait before each retry (Standard Webhooks' schedule by default); once it is
    /// used up, or `max_age` after the touch was due, the touch fails.
    pub retry_schedule: Vec<Duration>,
    pub max_age: Duration,
    pub rate: Option<Rate>,
    pub allow_private: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Tls,
}

#[derive(Clone)]
pub enum EmailTransport {
    /// Each message becomes a `.eml` file in `dir`: the embedded default.
    Outbox { dir: PathBuf },
    Smtp {
        host: String,
        port: u16,
        tls: TlsMode,
        /// Names of environment variables, never the secrets themselves.
        username_env: Option<String>,
        password_env: Option<String>,
        pool_size: u32,
        timeout: Duration,
    },
}

impl fmt::Debug for EmailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outbox { dir } => write!(f, "Outbox({})", dir.display()),
            Self::Smtp {
                host, port, tls, ..
            } => write!(f, "Smtp({host}:{port}, {tls:?})"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub transport: EmailTransport,
    pub from_name: Option<String>,
    pub from: EmailAddress,
    /// A mailto target for `List-Unsubscribe`, beside the https one.
    pub list_unsubscribe_mailto: Option<EmailAddress>,
    /// Sign outgoing mail with DKIM.
    pub dkim: Option<DkimKey>,
    /// The provider's rate limit.
    pub rate: Option<Rate>,
    /// Links in email bodies go through `PUBLIC_URL/c/TOKEN`, which records a click
    /// and redirects (needs `api.public_url`).
    pub track_clicks: bool,
}

/// A DKIM signing key: `[channels.email.dkim]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub selector: String,
    pub domain: String,
    /// PEM: an RSA private key (PKCS#1 or PKCS#8), or an ed25519 key (base64).
    pub key_file: PathBuf,
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// A provider rate limit: `count` messages per `per` (`rate = "50/s"`), spaced evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, format_duration(self.per))
    }
}

impl Rate {
    /// The time between two messages.
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }
}
