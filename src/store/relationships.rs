//! What the store keeps for learning: responses, each contact's relationship state with
//! the notes that explain it, the one atomic write that changes them ([`Learn`]),
//! and suppression by hashed address.

use crate::domain::Channel;
use std::{collections::HashMap, future::Future};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::StoreError;
use crate::domain::Touch;
use crate::{
    domain::{Contact, ContactId, TouchId},
    learning::{RelationshipState, ResponseKind},
};

/// The setting holding the key suppression hashes are made with (generated once per
/// store: a bare SHA-256 of a phone number is reversed by trying them all).
pub(crate) const PEPPER_SETTING: &str = "suppression.pepper";

/// How many notes a contact's timeline keeps (the oldest go first).
pub const NOTES_KEPT: usize = 200;

/// An inbound signal as recorded: attributed to a contact and, where known, a touch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// Unique per contact: the caller's id, a provider's (`sms:SM…`), or generated.
    pub id: String,
    pub contact: ContactId,
    pub kind: ResponseKind,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub touch: Option<TouchId>,
    pub at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    /// Where it came from: `api`, `sms`, `click`, `unsubscribe`, `twilio_status`, or
    /// `delivery` (the provider refused a send: an SMTP hard bounce).
    pub source: String,
    /// What the provider said, in codes only (`smtp 550 5.1.1`), when rapport learned
    /// it while sending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// What it changed, in words (the timeline shows them).
    #[serde(default)]
    pub effects: Vec<String>,
}

/// A line on the contact's timeline written by the learner: a tier move, a back-off, a
/// sunset, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub at: DateTime<Utc>,
    pub text: String,
}

/// One contact's learned state as stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Relationship {
    /// Bumped by every [`Learn`]; a write names the version it was computed from.
    pub version: u64,
    pub state: RelationshipState,
    pub notes: Vec<Note>,
}

/// What a [`Learn`] does to the touch it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settle {
    /// Its first response: it leaves the set awaiting one (a touch `ignored` before
    /// goes back to `sent`).
    Responded,
    /// Still `sent` with no response after the response window: now `ignored`.
    Ignored,
}

/// One atomic change to a contact, computed from the [`Relationship`] at `version`:
/// applied whole if the version is still current, else not at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Learn {
    pub contact: ContactId,
    pub version: u64,
    /// `None`: the state is left as it is (learning is off); the version still moves.
    pub state: Option<RelationshipState>,
    /// Appended to the timeline.
    pub notes: Vec<Note>,
    /// The contact's new tier.
    pub tier: Option<String>,
    /// Channels whose consent is set: withdrawn (`false`) or given back (`true`).
    pub consent: Vec<(Channel, bool)>,
    /// Stops sending to the contact's addresses on these channels: their consent
    /// withdrawn and the addresses added to the suppression list (so a re-import cannot
    /// undo it).
    pub suppress: Option<Suppression>,
    /// Recorded insert-if-absent by (contact, id): a known id changes nothing at all.
    pub response: Option<ResponseRecord>,
    pub settle: Option<(TouchId, Settle)>,
    /// Counts as an interaction at this instant (the check-in clock).
    pub interaction: Option<DateTime<Utc>>,
    /// Counted in the per (tier, channel, occasion) statistics.
    pub stats: Vec<StatDelta>,
}

impl Learn {
    pub fn new(contact: ContactId, version: u64) -> Self {
        Self {
            contact,
            version,
            state: None,
            notes: Vec::new(),
            tier: None,
            consent: Vec::new(),
            suppress: None,
            response: None,
            settle: None,
            interaction: None,
            stats: Vec::new(),
        }
    }
}

/// Addresses to suppress: a complaint suppresses every channel, a hard bounce the
/// address that bounced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Suppression {
    pub reason: String,
    /// `email` and/or `sms`.
    pub channels: Vec<Channel>,
}

impl Suppression {
    pub fn all(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
            channels: vec![Channel::Email, Channel::Sms],
        }
    }
    pub(crate) fn covers(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }
}

/// What became of a [`Learn`] write (`Relationships::learn`).
#[derive(Debug, Clone, PartialEq)]
pub enum LearnOutcome {
    Applied,
    /// Someone else changed the contact since `version`: read again and recompute.
    Conflict,
    /// The response id was known: nothing changed; this is what was recorded then.
    Duplicate(Box<ResponseRecord>),
    NoContact,
}

/// One counter of the statistics, keyed by the tier the contact had, the touch's
/// channel and occasion.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StatKey {
    pub tier: String,
    /// A channel's name, or `*` for all of them.
    pub channel: String,
    pub occasion: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatField {
    /// A touch whose outcome is known: answered, or ignored for the response window.
    Settled,
    Responded,
    /// An unsubscribe, STOP or complaint.
    OptOut,
    /// An engaged response at this hour of the contact's day (keyed by tier only: the
    /// tier's pattern, which a contact with few answers of its own is sent at).
    AnsweredAt(u8),
}

impl StatField {
    pub fn as_str(self) -> std::borrow::Cow<'static, str> {
        match self {
            Self::Settled => "settled".into(),
            Self::Responded => "responded".into(),
            Self::OptOut => "opt_out".into(),
            Self::AnsweredAt(h) => format!("hour{h:02}").into(),
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(h) = s.strip_prefix("hour") {
            return h
                .parse::<u8>()
                .ok()
                .filter(|h| *h < 24)
                .map(Self::AnsweredAt);
        }
        [Self::Settled, Self::Responded, Self::OptOut]
            .into_iter()
            .find(|f| f.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatDelta {
    pub key: StatKey,
    pub field: StatField,
}

impl StatKey {
    /// The counter's name in one string (`tier|channel|occasion|field`): names contain
    /// no `|`.
    pub(crate) fn encode(&self, field: StatField) -> String {
        format!(
            "{}|{}|{}|{}",
            self.tier,
            self.channel,
            self.occasion,
            field.as_str()
        )
    }
    pub(crate) fn decode(s: &str) -> Option<(Self, StatField)> {
        let mut parts = s.split('|');
        let key = Self {
            tier: parts.next()?.to_owned(),
            channel: parts.next()?.to_owned(),
            occasion: parts.next()?.to_owned(),
        };
        let field = StatField::parse(parts.next()?)?;
        parts.next().is_none().then_some((key, field))
    }
}

/// The suppression hashes of a contact's addresses: HMAC-SHA256 under the store's
/// pepper of `email:<lower-case address>` and `sms:<E.164>`, hex.
/// The hashes of `s`'s channels' addresses of `c`.
pub(crate) fn suppressed_hashes(pepper: &[u8], c: &Contact, s: &Suppression) -> Vec<String> {
    let (email, phone) = address_hashes(pepper, c);
    [(Channel::Email, email), (Channel::Sms, phone)]
        .into_iter()
        .filter(|(ch, _)| s.covers(*ch))
        .filter_map(|(_, h)| h)
        .collect()
}

pub(crate) fn address_hashes(pepper: &[u8], c: &Contact) -> (Option<String>, Option<String>) {
    let hash = |what: String| {
        let mut mac = Hmac::<Sha256>::new_from_slice(pepper).expect("HMAC takes any key length");
        mac.update(what.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    (
        c.email
            .as_ref()
            .map(|e| hash(format!("email:{}", e.as_str().to_lowercase()))),
        c.phone
            .as_ref()
            .map(|p| hash(format!("sms:{}", p.as_str()))),
    )
}

/// A new random pepper, hex.
pub(crate) fn new_pepper() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Relationships and responses: what each contact taught us, and the one atomic write that changes it.
pub trait Relationships: Send + Sync {
    /// The contact's learned state with its notes; `None` when nothing was learned yet
    /// (the caller starts from the default at version 0).
    fn relationship(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Option<Relationship>, StoreError>> + Send;

    /// The relationships of those of `ids` that have one (the planner reads a page at
    /// once).
    fn relationships(
        &self,
        ids: &[ContactId],
    ) -> impl Future<Output = Result<HashMap<ContactId, Relationship>, StoreError>> + Send;

    /// Applies `learn` atomically if the contact's relationship is still at
    /// `learn.version` (see [`Learn`]).
    fn learn(
        &self,
        learn: &Learn,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<LearnOutcome, StoreError>> + Send;

    /// A contact's responses, oldest first.
    fn responses_for_contact(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Vec<ResponseRecord>, StoreError>> + Send;

    /// Up to `limit` touches `sent` at or before `before` with no response yet, the
    /// oldest first: the ones whose response window has closed when `before` is now
    /// minus the window.
    fn awaiting(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Touch>, StoreError>> + Send;

    /// The per (tier, channel, occasion) counters [`Learn::stats`] kept.
    fn stats(
        &self,
    ) -> impl Future<Output = Result<Vec<(StatKey, StatField, u64)>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_keys_round_trip() {
        let k = StatKey {
            tier: "friend".into(),
            channel: "sms".into(),
            occasion: "birthday".into(),
        };
        for f in [
            StatField::Settled,
            StatField::Responded,
            StatField::OptOut,
            StatField::AnsweredAt(0),
            StatField::AnsweredAt(23),
        ] {
            assert_eq!(StatKey::decode(&k.encode(f)), Some((k.clone(), f)));
        }
        assert_eq!(StatKey::decode("a|b|c"), None);
        assert_eq!(StatKey::decode("a|b|c|sent"), None);
        assert_eq!(StatKey::decode("a|b|c|settled|x"), None);
        assert_eq!(StatKey::decode("a|b|c|hour24"), None);
    }

    #[test]
    fn address_hashes_are_keyed_and_case_blind_on_email() {
        let mut c = Contact {
            id: ContactId::parse("c1").unwrap(),
            first_name: None,
            last_name: None,
            email: Some(crate::domain::EmailAddress::parse("Ada@Example.com").unwrap()),
            phone: Some(crate::domain::PhoneNumber::parse("+14155550100").unwrap()),
            timezone: None,
            locale: None,
            birthday: None,
            customer_since: None,
            tier: "friend".into(),
            attributes: Default::default(),
            email_consent: true,
            sms_consent: true,
        };
        let (e1, p1) = address_hashes(b"k1", &c);
        let (e2, _) = address_hashes(b"k2", &c);
        assert_ne!(e1, e2, "the pepper changes the hash");
        let e1 = e1.unwrap();
        assert_eq!(e1.len(), 64);
        assert!(!e1.contains("ada") && !p1.unwrap().contains("4155550100"));
        c.email = Some(crate::domain::EmailAddress::parse("ada@example.com").unwrap());
        assert_eq!(address_hashes(b"k1", &c).0.unwrap(), e1);
    }
}
