//! Why a channel cannot be set up at start-up.

use std::fmt;

/// What is wrong with a channel's settings, naming the setting, variable or file, never
/// a secret's value. The daemon stops with exit 78 (configuration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SetupError(String);

impl SetupError {
    /// The same problem, said to be in `what` (`sms channel: …`).
    pub fn within(self, what: impl fmt::Display) -> Self {
        Self(format!("{what}: {}", self.0))
    }
}

impl From<String> for SetupError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for SetupError {
    fn from(message: &str) -> Self {
        Self(message.to_owned())
    }
}
