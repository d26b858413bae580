//! What the learner sees: touches sent and ignored, responses, and interactions the
//! caller reports (a purchase).

use std::{fmt, str::FromStr};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domain::Channel;

/// How a contact answered a touch. A closed set: each kind has a weight in
/// [`Weights`](super::Weights) and a fixed meaning to the learner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    Reply,
    Click,
    Positive,
    Negative,
    /// Includes an SMS `STOP`.
    Unsubscribe,
    BounceHard,
    BounceSoft,
    Complaint,
}

impl ResponseKind {
    pub const ALL: [ResponseKind; 8] = [
        Self::Reply,
        Self::Click,
        Self::Positive,
        Self::Negative,
        Self::Unsubscribe,
        Self::BounceHard,
        Self::BounceSoft,
        Self::Complaint,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reply => "reply",
            Self::Click => "click",
            Self::Positive => "positive",
            Self::Negative => "negative",
            Self::Unsubscribe => "unsubscribe",
            Self::BounceHard => "bounce_hard",
            Self::BounceSoft => "bounce_soft",
            Self::Complaint => "complaint",
        }
    }

    /// The contact said no, or the address is dead: acted on at once, and never counted
    /// as an interaction. A soft bounce is neither engagement nor refusal (the mailbox
    /// was full today), so it is not negative.
    pub fn is_negative(self) -> bool {
        matches!(
            self,
            Self::Negative | Self::Unsubscribe | Self::BounceHard | Self::Complaint
        )
    }

    /// The contact engaged: these count as an interaction, a success for the touch's
    /// channel, an observation of their hour and evidence for promotion.
    pub fn is_engaged(self) -> bool {
        matches!(self, Self::Reply | Self::Click | Self::Positive)
    }

    /// Whether this response, received on channel `on`, suppresses the contact's
    /// address on `channel`: a complaint is about us, so every address; a hard bounce is
    /// about the address that bounced. (The learner acts on both with
    /// [`Effect::Suppress`](super::Effect::Suppress).)
    pub fn suppresses(self, on: Channel, channel: Channel) -> bool {
        match self {
            Self::Complaint => true,
            Self::BounceHard => on == channel,
            _ => false,
        }
    }

    /// In words: `"hard bounce"`, `"reply"`.
    pub fn label(self) -> &'static str {
        self.names().0
    }

    /// `"3 replies"`, `"1 click"`: for reasons on the timeline.
    pub(crate) fn counted(self, n: u32) -> String {
        let (one, many) = self.names();
        format!("{n} {}", if n == 1 { one } else { many })
    }

    /// Singular and plural.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::Reply => ("reply", "replies"),
            Self::Click => ("click", "clicks"),
            Self::Positive => ("positive response", "positive responses"),
            Self::Negative => ("negative response", "negative responses"),
            Self::Unsubscribe => ("unsubscribe", "unsubscribes"),
            Self::BounceHard => ("hard bounce", "hard bounces"),
            Self::BounceSoft => ("soft bounce", "soft bounces"),
            Self::Complaint => ("complaint", "complaints"),
        }
    }
}

impl fmt::Display for ResponseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A response kind name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a response kind (expected one of: {known})", known = ResponseKind::ALL.map(ResponseKind::as_str).join(", "))]
pub struct UnknownKind(pub String);

impl FromStr for ResponseKind {
    type Err = UnknownKind;
    /// Also takes `stop` (the SMS keyword) for `unsubscribe`, so inbound SMS needs no
    /// mapping of its own.
    fn from_str(s: &str) -> Result<Self, UnknownKind> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("stop") {
            return Ok(Self::Unsubscribe);
        }
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// The touch a response answers, where the caller knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchRef {
    pub channel: Channel,
    pub sent_at: DateTime<Utc>,
}

/// One inbound signal from the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub kind: ResponseKind,
    /// The channel it came in on (an unsubscribe withdraws consent on this one).
    pub channel: Channel,
    pub at: DateTime<Utc>,
    /// Without it the response still counts as engagement, hour and interaction, but not
    /// as a success for any channel: channel statistics are "of the touches sent here,
    /// how many were answered".
    pub touch: Option<TouchRef>,
}

/// One thing that happened to the relationship, in the order it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    Sent {
        channel: Channel,
        at: DateTime<Utc>,
    },
    /// A touch sent on `channel` got no response within `response_window`; `at` is when
    /// that was noticed.
    Ignored {
        channel: Channel,
        at: DateTime<Utc>,
    },
    Response(Response),
    /// Something the contact did that is not an answer to a touch (a purchase): it
    /// counts as an interaction and nothing else.
    Interaction {
        at: DateTime<Utc>,
    },
}

impl Signal {
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            Self::Sent { at, .. } | Self::Ignored { at, .. } | Self::Interaction { at } => *at,
            Self::Response(r) => r.at,
        }
    }
}
