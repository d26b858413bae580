//! Touches: one outbound message each, identified deterministically.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Channel, ContactId};

/// `occasion:contact:occurrence`, e.g. `birthday:cus_42:2026`. The same occasion for the
/// same contact and occurrence always yields the same id, which is what makes planning
/// idempotent: recording is insert-if-absent on this key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TouchId(String);

impl TouchId {
    pub fn derive(occasion: &str, contact: &ContactId, occurrence: &str) -> Self {
        Self(format!("{occasion}:{contact}:{occurrence}"))
    }
    /// For ids read back from the store or a job payload.
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// A form safe in a Message-ID local part and a file name: `:` becomes `.`, and any
    /// other character outside `[A-Za-z0-9._-]` becomes `=XX` (its hex code), so distinct
    /// ids keep distinct tokens.
    /// The id a [`token`](Self::token) was made from (`None`: not a token).
    pub fn from_token(token: &str) -> Option<Self> {
        let mut out = Vec::with_capacity(token.len());
        let bytes = token.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'.' => out.push(b':'),
                b'=' => {
                    let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 2;
                }
                b if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-') => out.push(b),
                _ => return None,
            }
            i += 1;
        }
        String::from_utf8(out).ok().map(Self)
    }

    pub fn token(&self) -> String {
        let mut out = String::with_capacity(self.0.len());
        for c in self.0.chars() {
            match c {
                ':' => out.push('.'),
                c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-') => out.push(c),
                c => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("={b:02X}"));
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for TouchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a touch is in its life. Every status but `Planned` and `Sending` is final.
/// `Skipped`: the relationship policy decided against it (caps, minimum gap, a
/// higher-priority touch, a check-in no longer due), with the reason recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchStatus {
    Planned,
    Sending,
    Sent,
    Failed,
    Expired,
    Suppressed,
    Skipped,
    /// Sent, and no response came within the learning's response window (a late
    /// response takes it back to `sent`).
    Ignored,
}

impl TouchStatus {
    pub const ALL: [TouchStatus; 8] = [
        Self::Planned,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::Expired,
        Self::Suppressed,
        Self::Skipped,
        Self::Ignored,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Planned => "planned",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Suppressed => "suppressed",
            Self::Skipped => "skipped",
            Self::Ignored => "ignored",
        }
    }
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Planned | Self::Sending)
    }
}

/// A touch status name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown touch status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for TouchStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl fmt::Display for TouchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A touch as the planner wants it recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTouch {
    pub id: TouchId,
    pub occasion: String,
    pub contact_id: ContactId,
    pub occurrence: String,
    pub channel: Channel,
    pub priority: u32,
    pub scheduled_at: DateTime<Utc>,
    /// When the occurrence became due, whenever it is planned: the send window's first
    /// instant on the day, the event plus its delay, the end of the check-in cadence.
    /// An adoption of the store settles touches due before it (`rapport store adopt`).
    pub due: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// `Planned`, or `Expired` when the planner saw it only after its window closed
    /// (or `Skipped`: due before an adoption of the store).
    pub status: TouchStatus,
    pub reason: Option<String>,
}

/// An adoption of the store after a loss (`rapport store adopt`): what was due before
/// `at`, for the contacts present then, is not sent again unless `resend_due`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The identity the store was given.
    pub id: String,
    pub at: DateTime<Utc>,
    pub resend_due: bool,
}

impl NewTouch {
    /// The touch as the ledger holds it right after recording it at `now`.
    pub fn recorded(self, now: DateTime<Utc>) -> Touch {
        Touch {
            id: self.id,
            occasion: self.occasion,
            contact_id: self.contact_id,
            occurrence: self.occurrence,
            channel: self.channel,
            tried: Vec::new(),
            priority: self.priority,
            status: self.status,
            scheduled_at: self.scheduled_at,
            next_attempt_at: self.scheduled_at,
            expires_at: self.expires_at,
            attempts: 0,
            reason: self.reason,
            created_at: now,
            updated_at: now,
            sent_at: None,
            slot_at: None,
            uncertain: 0,
            responded_at: None,
        }
    }
}

/// A touch as recorded in the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct Touch {
    pub id: TouchId,
    pub occasion: String,
    pub contact_id: ContactId,
    pub occurrence: String,
    pub channel: Channel,
    /// The channels it moved away from, oldest first (see [`super::Outcome::Fallback`]):
    /// it does not go back to them. Stored with the touch; `reason` says why, in words.
    pub tried: Vec<Channel>,
    pub priority: u32,
    pub status: TouchStatus,
    pub scheduled_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub attempts: u32,
    pub reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The send slot it holds against the contact's caps: reserved at dispatch, kept
    /// once sent, given back by any other outcome.
    pub slot_at: Option<DateTime<Utc>>,
    /// Attempts on its current channel that ended without an answer (the provider may
    /// have taken the message): one is retried, a second is not.
    pub uncertain: u32,
    /// When its first response came (a reply, a click, an unsubscribe...).
    pub responded_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_tokens_safe() {
        let c = ContactId::parse("cus_42").unwrap();
        let a = TouchId::derive("birthday", &c, "2026");
        assert_eq!(a, TouchId::derive("birthday", &c, "2026"));
        assert_eq!(a.as_str(), "birthday:cus_42:2026");
        assert_ne!(a, TouchId::derive("birthday", &c, "2027"));
        assert_ne!(a, TouchId::derive("anniversary", &c, "2026"));
        assert_eq!(a.token(), "birthday.cus_42.2026");
        let odd = TouchId::derive("birthday", &ContactId::parse("a.b+d").unwrap(), "2026");
        assert_eq!(odd.token(), "birthday.a=2Eb=2Bd.2026");
        for id in [&a, &odd] {
            assert_eq!(TouchId::from_token(&id.token()).as_ref(), Some(id));
        }
        assert_eq!(TouchId::from_token("a b"), None);
        assert_eq!(TouchId::from_token("a=2"), None);
        assert_eq!(TouchId::from_token("a=ZZ"), None);
    }

    #[test]
    fn statuses_round_trip() {
        for s in TouchStatus::ALL {
            assert_eq!(s.as_str().parse::<TouchStatus>().unwrap(), s);
        }
        assert!(TouchStatus::Sent.is_final() && !TouchStatus::Sending.is_final());
    }
}
