//! Channels: how a rendered message leaves. Every failure is classified once, here:
//! transient (retry with backoff) or permanent (record and stop).

pub mod clicks;
pub mod email;
pub mod http;
mod outbox;
mod set;
pub mod sms;
mod smtp;
pub mod unsubscribe;
pub mod webhook;

use std::{fmt, time::Duration};

use futures::future::BoxFuture;

pub use email::{ListUnsubscribe, OutboundEmail, build_message};
pub use set::Channels;

use crate::domain::{PhoneNumber, TouchId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClass {
    Transient,
    Permanent,
    /// The transaction broke off without an answer (timeout, dropped connection): the
    /// server may have accepted the message. Retried once, with the same Message-ID.
    Uncertain,
    /// The recipient opted out of this channel at the provider (Twilio error 21610):
    /// the contact's consent for the channel is withdrawn, never retried; the touch
    /// moves on to the occasion's next channel.
    OptedOut,
    /// The endpoint is gone (a webhook receiver answered 410): the endpoint is disabled
    /// until its configuration changes; the touch moves on to the next channel.
    Gone,
    /// The recipient's address does not exist or takes no mail (SMTP `550 5.1.1` and
    /// the like): the address is suppressed as a `bounce_hard` response would, never
    /// retried; the touch moves on to the occasion's next channel.
    HardBounce,
}

/// Why a delivery failed. `reason` is safe to store and log: codes and kinds only, never
/// the server's text (SMTP replies echo addresses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DeliveryError {
    pub class: DeliveryClass,
    pub reason: String,
    /// How long the provider asked us to wait (`Retry-After`), for a transient failure.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.class {
            DeliveryClass::Transient => "transient",
            DeliveryClass::Permanent => "permanent",
            DeliveryClass::Uncertain => "uncertain",
            DeliveryClass::OptedOut => "opted out",
            DeliveryClass::Gone => "gone",
            DeliveryClass::HardBounce => "hard bounce",
        };
        write!(f, "{} ({class})", self.reason)
    }
}

impl DeliveryError {
    fn new(class: DeliveryClass, reason: impl Into<String>) -> Self {
        Self {
            class,
            reason: reason.into(),
            retry_after: None,
        }
    }
    pub fn transient(reason: impl Into<String>) -> Self {
        Self::new(DeliveryClass::Transient, reason)
    }
    pub fn uncertain(reason: impl Into<String>) -> Self {
        Self::new(DeliveryClass::Uncertain, reason)
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::new(DeliveryClass::Permanent, reason)
    }
    pub fn opted_out(reason: impl Into<String>) -> Self {
        Self::new(DeliveryClass::OptedOut, reason)
    }
    pub fn gone(reason: impl Into<String>) -> Self {
        Self::new(DeliveryClass::Gone, reason)
    }
    pub fn hard_bounce(reason: impl Into<String>) -> Self {
        Self::new(DeliveryClass::HardBounce, reason)
    }
    /// The provider's `Retry-After`, when it gave one.
    #[must_use]
    pub fn with_retry_after(mut self, wait: Option<Duration>) -> Self {
        self.retry_after = wait;
        self
    }
}

/// One SMS, ready to go.
#[derive(Debug, Clone)]
pub struct OutboundSms {
    pub touch: TouchId,
    pub to: PhoneNumber,
    pub body: String,
}

/// An SMS transport: a Twilio-compatible Messages API, or the outbox folder.
pub trait SmsChannel: Send + Sync + 'static {
    fn send<'a>(&'a self, sms: &'a OutboundSms) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// A short name for logs and metrics (`twilio`, `outbox`).
    fn kind(&self) -> &'static str;
}

/// One webhook delivery: `body` is the exact JSON sent and signed (never re-serialised
/// after signing). Its `webhook-id` derives from the touch, so every retry carries the
/// same one.
#[derive(Debug, Clone)]
pub struct OutboundWebhook {
    pub touch: TouchId,
    pub body: Vec<u8>,
}

/// The outbound webhook endpoint (Standard Webhooks).
pub trait WebhookChannel: Send + Sync + 'static {
    fn send<'a>(&'a self, hook: &'a OutboundWebhook) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Identifies the endpoint's configuration (URL and secrets, hashed): a 410 disables
    /// the endpoint under this fingerprint, so a changed config enables it again.
    fn fingerprint(&self) -> String;
}

/// An email transport. Open set: SMTP and the outbox folder today.
pub trait EmailChannel: Send + Sync + 'static {
    fn send<'a>(&'a self, email: &'a OutboundEmail) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// A short name for logs and metrics (`smtp`, `outbox`).
    fn kind(&self) -> &'static str;
}

/// Builds the configured email transport. The DKIM key is loaded here, once: a missing
/// or unusable key stops startup instead of failing every send.
pub fn email_channel(cfg: &crate::config::EmailConfig) -> Result<Box<dyn EmailChannel>, String> {
    let dkim = cfg.dkim.as_ref().map(email::Dkim::load).transpose()?;
    match &cfg.transport {
        crate::config::EmailTransport::Outbox { dir } => {
            let outbox = outbox::Outbox::new(dir.clone(), cfg.clone(), dkim)?;
            Ok(Box::new(outbox))
        }
        crate::config::EmailTransport::Smtp { .. } => Ok(Box::new(smtp::Smtp::new(cfg, dkim)?)),
    }
}
