//! Channels: how a rendered message leaves. Every failure is classified once, here:
//! transient (retry with backoff) or permanent (record and stop).

pub mod clicks;
pub mod email;
pub mod http;
mod outbox;
mod set;
mod setup;
pub mod sms;
mod smtp;
pub mod unsubscribe;
pub mod webhook;

use std::{fmt, time::Duration};

use futures::future::BoxFuture;

pub use email::{ListUnsubscribe, OutboundEmail, build_message};
pub use set::{BuildError, Channels};
pub use setup::SetupError;

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
    /// The send never started: the [`Gate`] said no (the daemon is stopping, or the claim
    /// on the touch would not last the call). Nothing reached the provider; the touch
    /// goes back to the ledger as it was.
    NotStarted,
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
            DeliveryClass::NotStarted => "not started",
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
    pub fn not_started(reason: impl Into<String>) -> Self {
        Self::new(DeliveryClass::NotStarted, reason)
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

/// Asked right before each provider call (the SMTP transaction, the HTTP request, the
/// outbox write), after any wait for a connection or a rate-limit place: may this send
/// still start? `needs` is the longest the call may take (the channel's timeout). The
/// dispatcher's gate refuses once the daemon is stopping, and when the claim on the
/// touch would not outlast the call by the clock of that moment, so a worker that was
/// paused or cut off while its lease passed to another sends nothing. A refusal is a
/// [`DeliveryClass::NotStarted`] error.
pub trait Gate: Send + Sync {
    fn admit(&self, needs: Duration) -> BoxFuture<'_, Result<(), DeliveryError>>;
}

/// The gate of a caller that holds no claim (a preview, a self-test, a channel test):
/// always open.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ungated;

impl Gate for Ungated {
    fn admit(&self, _needs: Duration) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async { Ok(()) })
    }
}

/// How long an outbox write may take, as a [`Gate`] asks it (a local file, synced).
pub(crate) const OUTBOX_WRITE: Duration = Duration::from_secs(1);

/// One SMS, ready to go.
#[derive(Debug, Clone)]
pub struct OutboundSms {
    pub touch: TouchId,
    pub to: PhoneNumber,
    pub body: String,
}

/// An SMS transport: a Twilio-compatible Messages API, or the outbox folder.
pub trait SmsChannel: Send + Sync + 'static {
    /// Sends `sms` if `gate` admits it right before the provider call.
    fn send_gated<'a>(
        &'a self,
        sms: &'a OutboundSms,
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Sends with no claim to check ([`Ungated`]).
    fn send<'a>(&'a self, sms: &'a OutboundSms) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.send_gated(sms, &Ungated)
    }
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
    /// Sends `hook` if `gate` admits it right before the request.
    fn send_gated<'a>(
        &'a self,
        hook: &'a OutboundWebhook,
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Sends with no claim to check ([`Ungated`]).
    fn send<'a>(&'a self, hook: &'a OutboundWebhook) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.send_gated(hook, &Ungated)
    }
    /// Identifies the endpoint's configuration (URL and secrets, hashed): a 410 disables
    /// the endpoint under this fingerprint, so a changed config enables it again.
    fn fingerprint(&self) -> String;
}

/// An email transport. Open set: SMTP and the outbox folder today.
pub trait EmailChannel: Send + Sync + 'static {
    /// Sends `email` if `gate` admits it right before the transaction starts.
    fn send_gated<'a>(
        &'a self,
        email: &'a OutboundEmail,
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// Sends with no claim to check ([`Ungated`]).
    fn send<'a>(&'a self, email: &'a OutboundEmail) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.send_gated(email, &Ungated)
    }
    /// A short name for logs and metrics (`smtp`, `outbox`).
    fn kind(&self) -> &'static str;
}

/// Builds the configured email transport. The DKIM key is loaded here, once: a missing
/// or unusable key stops startup instead of failing every send.
pub fn email_channel(
    cfg: &crate::config::EmailConfig,
) -> Result<Box<dyn EmailChannel>, SetupError> {
    let dkim = cfg.dkim.as_ref().map(email::Dkim::load).transpose()?;
    match &cfg.transport {
        crate::config::EmailTransport::Outbox { dir } => {
            let outbox = outbox::Outbox::new(dir.clone(), cfg.clone(), dkim)?;
            Ok(Box::new(outbox))
        }
        crate::config::EmailTransport::Smtp { .. } => Ok(Box::new(smtp::Smtp::new(cfg, dkim)?)),
    }
}
