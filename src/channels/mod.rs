//! Channels: how a rendered message leaves. Every failure is classified once, here:
//! transient (retry with backoff) or permanent (record and stop).

pub mod email;
mod outbox;
mod smtp;

use std::fmt;

use futures::future::BoxFuture;

pub use email::{OutboundEmail, build_message};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryClass {
    Transient,
    Permanent,
    /// The transaction broke off without an answer (timeout, dropped connection): the
    /// server may have accepted the message. Retried once, with the same Message-ID.
    Uncertain,
}

/// Why a delivery failed. `reason` is safe to store and log: codes and kinds only, never
/// the server's text (SMTP replies echo addresses).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DeliveryError {
    pub class: DeliveryClass,
    pub reason: String,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = match self.class {
            DeliveryClass::Transient => "transient",
            DeliveryClass::Permanent => "permanent",
            DeliveryClass::Uncertain => "uncertain",
        };
        write!(f, "{} ({class})", self.reason)
    }
}

impl DeliveryError {
    pub fn transient(reason: impl Into<String>) -> Self {
        Self {
            class: DeliveryClass::Transient,
            reason: reason.into(),
        }
    }
    pub fn uncertain(reason: impl Into<String>) -> Self {
        Self {
            class: DeliveryClass::Uncertain,
            reason: reason.into(),
        }
    }
    pub fn permanent(reason: impl Into<String>) -> Self {
        Self {
            class: DeliveryClass::Permanent,
            reason: reason.into(),
        }
    }
}

/// An email transport. Open set: SMTP and the outbox folder today.
pub trait EmailChannel: Send + Sync + 'static {
    fn send<'a>(&'a self, email: &'a OutboundEmail) -> BoxFuture<'a, Result<(), DeliveryError>>;
    /// A short name for logs and metrics (`smtp`, `outbox`).
    fn kind(&self) -> &'static str;
}

/// Builds the configured email transport.
pub fn email_channel(cfg: &crate::config::EmailConfig) -> Result<Box<dyn EmailChannel>, String> {
    match &cfg.transport {
        crate::config::EmailTransport::Outbox { dir } => {
            Ok(Box::new(outbox::Outbox::new(dir.clone(), cfg.clone())?))
        }
        crate::config::EmailTransport::Smtp { .. } => Ok(Box::new(smtp::Smtp::new(cfg)?)),
    }
}
