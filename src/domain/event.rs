//! Events: things a contact did that rapport hears about (a purchase), kept on the
//! contact's timeline. An event may trigger an occasion (a thank-you after a purchase)
//! and always counts as an interaction (it resets the check-in clock).

use std::fmt;

use chrono::{DateTime, Utc};

use super::{ContactId, contact::FieldError};

/// The integrator's id for an event, unique per contact. Same alphabet as contact ids:
/// it becomes the occurrence part of a touch id (`thank_you:cus_42:order-1001`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId(String);

impl EventId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        // The same rules as a contact id, with the same messages.
        ContactId::parse(raw).map(|c| Self(c.as_str().to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub contact_id: ContactId,
    pub id: EventId,
    /// The event type, e.g. `purchase` (lower-case letters, digits and `_`).
    pub kind: String,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Free data for templates (`{{event.data.total}}`); a JSON object.
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// An event type as config and the CLI accept it.
pub fn valid_kind(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 64
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
