//! The ways rapport reaches a contact: a closed set. Config files, the ledger's rows, the
//! API and the CLI name a channel as a string; it is parsed into a [`Channel`] there, at
//! the edge, and passed as one everywhere else.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Sms,
    Webhook,
}

impl Channel {
    /// Every channel, in the order the docs list them.
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Webhook];

    /// The name config, rows and the API use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    /// How the channel is written in sentences: "SMS", not "sms".
    pub const fn label(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "SMS",
            Channel::Webhook => "webhook",
        }
    }

    /// The names of every channel, for a message listing the known ones.
    pub fn known() -> String {
        Self::ALL.map(Channel::as_str).join(", ")
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel {0:?} (known: {known})", known = Channel::known())]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownChannel(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(Channel::known(), "email, sms, webhook");
        let err = "fax".parse::<Channel>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown channel \"fax\" (known: email, sms, webhook)"
        );
        assert!("Email".parse::<Channel>().is_err(), "names are lower case");
    }
}
