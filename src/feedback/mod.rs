//! The loop closed: responses and silence go through the pure learner
//! ([`crate::learning`]) into the store, in one atomic write per contact
//! ([`Relationships::learn`](crate::store::Relationships::learn)), with what they changed on the timeline.
//!
//! - [`respond`]: one response (API, SMS, click, unsubscribe, provider callback),
//!   attributed to its touch: the one named, else the most recent sent on its channel.
//! - [`consent`]: a consent change that is not a response (an SMS `START`).
//! - [`bounced`]: a hard bounce the provider gave while a touch was being sent (an
//!   SMTP `550 5.1.1`), learned as a `bounce_hard` response through [`respond`]'s path.
//! - [`sweep`]: touches sent without a response for `learning.response_window` become
//!   `ignored`, and the learner hears of it (fatigue, sunset, demotion).
//!
//! Each reads the contact's relationship at a version, computes, and writes if the
//! version is still current; on a conflict (another response for the same contact at
//! the same moment) it reads again. Nothing is learned twice and nothing is lost.

use crate::domain::Channel;
use crate::store::{Contacts, Coordination, Ledger, Relationships};
use chrono::{DateTime, Timelike, Utc};

use crate::{
    config::Config,
    domain::{Contact, ContactId, Touch, TouchId, TouchStatus},
    learning::{Response, ResponseKind, Signal, TouchRef},
    store::{Learn, LearnOutcome, Note, ResponseRecord, Settle, StatField, StatKey, StoreError},
};

mod bounce;
mod learn;
mod sweep;

pub use bounce::{Bounce, bounced};
pub(crate) use learn::learn_from;
use learn::{stat, stat_key};
pub use sweep::{sweep, sweep_loop};

/// The setting holding when this store started learning: touches sent before (by a
/// version that did not learn) are settled without teaching anything.
pub(crate) const SINCE_SETTING: &str = "learning.since";

/// Records when learning started, once per store (the first start of a version that
/// learns); later starts keep the first.
pub async fn start_learning<S: Coordination>(
    store: &S,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    store.init_setting(SINCE_SETTING, &now.to_rfc3339()).await?;
    Ok(())
}

/// Conflicts are resolved by reading again; a contact this busy is worth an error.
const TRIES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum FeedbackError {
    #[error("no contact with id {0}")]
    UnknownContact(ContactId),
    #[error("no touch with id {0}")]
    UnknownTouch(TouchId),
    #[error("touch {0} has not been sent (status {1}): nothing to respond to yet")]
    NotSent(TouchId, TouchStatus),
    #[error("touch {touch} belongs to contact {owner}, not {given}")]
    WrongContact {
        touch: TouchId,
        owner: ContactId,
        given: ContactId,
    },
    #[error("touch {touch} went out by {sent}, not {given}")]
    WrongChannel {
        touch: TouchId,
        sent: Channel,
        given: Channel,
    },
    #[error("a response needs a touch id, or a contact and a channel")]
    NoTarget,
    #[error("contact {0} changed too often to record this; try again")]
    Busy(ContactId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A response as it arrives.
#[derive(Debug, Clone)]
pub struct Inbound {
    /// The caller's id for it (a provider's message id): the same id is recorded once.
    /// `None`: a new one is made.
    pub id: Option<String>,
    pub kind: ResponseKind,
    /// The touch it answers, if the caller knows it (a link, a webhook payload).
    pub touch: Option<TouchId>,
    /// Needed without a touch.
    pub contact: Option<ContactId>,
    /// The channel it came in on; without it, the touch's.
    pub channel: Option<Channel>,
    pub at: DateTime<Utc>,
    /// `api`, `sms`, `click`, `unsubscribe`, `twilio_status`.
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    New(ResponseRecord),
    /// Its id was recorded before: this is that record, and nothing changed.
    Known(ResponseRecord),
}

impl Recorded {
    pub fn record(&self) -> &ResponseRecord {
        match self {
            Self::New(r) | Self::Known(r) => r,
        }
    }
}

/// Records a response and learns from it.
pub async fn respond<S: Contacts + Ledger + Relationships>(
    store: &S,
    cfg: &Config,
    input: Inbound,
    now: DateTime<Utc>,
) -> Result<Recorded, FeedbackError> {
    let (contact_id, named) = target(store, &input).await?;
    learn_response(
        store,
        cfg,
        &input,
        &contact_id,
        About::Sent(named),
        None,
        now,
    )
    .await
}

/// Which touch a response answers, once its contact is known.
enum About {
    /// The touch named (checked to be sent), or else the latest one sent on the
    /// response's channel, if any.
    Sent(Option<TouchId>),
    /// A touch the provider refused while it was being sent: the record names it, but
    /// it was never sent, so the response settles it not and teaches nothing of a send.
    Unsent(TouchId),
}

/// Records `input` for `contact_id` and learns from it, with `detail` (codes only) on
/// the record.
async fn learn_response<S: Contacts + Ledger + Relationships>(
    store: &S,
    cfg: &Config,
    input: &Inbound,
    contact_id: &ContactId,
    about: About,
    detail: Option<String>,
    now: DateTime<Utc>,
) -> Result<Recorded, FeedbackError> {
    let contact_id = contact_id.clone();
    let id = input
        .id
        .clone()
        .unwrap_or_else(|| format!("r_{}", ulid::Ulid::new()));
    for _ in 0..TRIES {
        let contact = store
            .get_contact(&contact_id)
            .await?
            .ok_or_else(|| FeedbackError::UnknownContact(contact_id.clone()))?;
        // Read afresh each try: another response may have settled it meanwhile.
        let touch = answered(store, input, &about, &contact_id).await?;
        let channel = input
            .channel
            .or_else(|| touch.as_ref().map(|t| t.channel))
            .unwrap_or(Channel::Email);
        let rel = store.relationship(&contact_id).await?.unwrap_or_default();
        let mut learn = Learn::new(contact_id.clone(), rel.version);
        let mut signals = Vec::new();
        if let Some(t) = touch.as_ref().filter(|t| t.responded_at.is_none()) {
            settle(&mut learn, &mut signals, &contact, t, input);
        }
        if matches!(
            input.kind,
            ResponseKind::Unsubscribe | ResponseKind::Complaint
        ) {
            count_opt_out(&mut learn, &contact, touch.as_ref(), channel);
        }
        signals.push(response_signal(input, channel, touch.as_ref()));
        let effects = learn_from(cfg, &contact, &rel, &signals, now, &mut learn);
        if input.kind.is_engaged() {
            note_engagement(&mut learn, cfg, &contact, input.at);
        }
        let record = ResponseRecord {
            id: id.clone(),
            contact: contact_id.clone(),
            kind: input.kind,
            channel,
            touch: match &about {
                About::Unsent(t) => Some(t.clone()),
                About::Sent(_) => touch.as_ref().map(|t| t.id.clone()),
            },
            at: input.at,
            recorded_at: now,
            source: input.source.to_owned(),
            detail: detail.clone(),
            effects,
        };
        learn.response = Some(record.clone());
        match store.learn(&learn, now).await? {
            LearnOutcome::Applied => return Ok(Recorded::New(record)),
            LearnOutcome::Duplicate(known) => return Ok(Recorded::Known(*known)),
            LearnOutcome::NoContact => return Err(FeedbackError::UnknownContact(contact_id)),
            LearnOutcome::Conflict => continue,
        }
    }
    Err(FeedbackError::Busy(contact_id))
}

/// The touch a response answers, as it is now: the one named, else the latest sent on
/// the response's channel; none for a touch that was never sent.
async fn answered<S: Ledger>(
    store: &S,
    input: &Inbound,
    about: &About,
    contact_id: &ContactId,
) -> Result<Option<Touch>, FeedbackError> {
    Ok(match about {
        About::Sent(Some(t)) => Some(fresh(store, t).await?),
        About::Sent(None) => match &input.channel {
            Some(ch) => latest_sent(store, contact_id, *ch, input.at).await?,
            None => None,
        },
        About::Unsent(_) => None,
    })
}

/// The first response to `t` settles it: counted as settled (and heard of as sent, if
/// nothing had settled it before) and, if engaged, as responded.
fn settle(
    learn: &mut Learn,
    signals: &mut Vec<Signal>,
    contact: &Contact,
    t: &Touch,
    input: &Inbound,
) {
    learn.settle = Some((t.id.clone(), Settle::Responded));
    let key = stat_key(contact, t);
    if t.status == TouchStatus::Sent {
        // First news of this touch: it was sent (the learner hears of a send
        // when its outcome is known, so the hot path never writes here).
        signals.push(Signal::Sent {
            channel: t.channel,
            at: t.sent_at.unwrap_or(input.at),
        });
        learn.stats.push(stat(&key, StatField::Settled));
    }
    // The response rate counts engagement; opt-outs are counted apart.
    if input.kind.is_engaged() {
        learn.stats.push(stat(&key, StatField::Responded));
    }
}

/// An unsubscribe or a complaint counts against the touch's occasion, or against the
/// channel when no touch is known.
fn count_opt_out(learn: &mut Learn, contact: &Contact, touch: Option<&Touch>, channel: Channel) {
    let key = match touch {
        Some(t) => stat_key(contact, t),
        None => StatKey {
            tier: contact.tier.clone(),
            channel: channel.to_string(),
            occasion: "-".into(),
        },
    };
    learn.stats.push(stat(&key, StatField::OptOut));
}

/// What the learner hears of the response: its kind, channel and time, and the send it
/// answers.
fn response_signal(input: &Inbound, channel: Channel, touch: Option<&Touch>) -> Signal {
    Signal::Response(Response {
        kind: input.kind,
        channel,
        at: input.at,
        touch: touch.and_then(|t| {
            t.sent_at.map(|sent_at| TouchRef {
                channel: t.channel,
                sent_at,
            })
        }),
    })
}

/// An engaged response is an interaction, at an hour of the contact's local day.
fn note_engagement(learn: &mut Learn, cfg: &Config, contact: &Contact, at: DateTime<Utc>) {
    learn.interaction = Some(at);
    let local = at.with_timezone(&contact.zone(cfg.rules.defaults.timezone));
    let tier = StatKey {
        tier: contact.tier.clone(),
        channel: "*".into(),
        occasion: "*".into(),
    };
    learn
        .stats
        .push(stat(&tier, StatField::AnsweredAt(local.hour() as u8)));
}

/// Sets consent on `channel` outside a response (an SMS `START`), with a note saying
/// why. Returns whether the contact exists.
pub async fn consent<S: Relationships>(
    store: &S,
    contact: &ContactId,
    channel: Channel,
    given: bool,
    why: &str,
    now: DateTime<Utc>,
) -> Result<bool, FeedbackError> {
    for _ in 0..TRIES {
        let rel = store.relationship(contact).await?.unwrap_or_default();
        let mut learn = Learn::new(contact.clone(), rel.version);
        learn.consent.push((channel, given));
        let verb = if given { "given" } else { "withdrawn" };
        learn.notes.push(Note {
            at: now,
            text: format!("consent {verb} on {}: {why}", channel.label()),
        });
        match store.learn(&learn, now).await? {
            LearnOutcome::Applied | LearnOutcome::Duplicate(_) => return Ok(true),
            LearnOutcome::NoContact => return Ok(false),
            LearnOutcome::Conflict => continue,
        }
    }
    Err(FeedbackError::Busy(contact.clone()))
}

/// The contact a response is for, and the touch it names (checked to be theirs, sent,
/// and on the channel given).
async fn target<S: Ledger>(
    store: &S,
    input: &Inbound,
) -> Result<(ContactId, Option<TouchId>), FeedbackError> {
    let Some(id) = &input.touch else {
        let contact = input.contact.clone().ok_or(FeedbackError::NoTarget)?;
        return Ok((contact, None));
    };
    let touch = fresh(store, id).await?;
    if let Some(given) = &input.contact {
        if *given != touch.contact_id {
            return Err(FeedbackError::WrongContact {
                touch: touch.id,
                owner: touch.contact_id,
                given: given.clone(),
            });
        }
    }
    if let Some(given) = &input.channel {
        if *given != touch.channel {
            return Err(FeedbackError::WrongChannel {
                touch: touch.id,
                sent: touch.channel,
                given: *given,
            });
        }
    }
    if touch.sent_at.is_none() {
        return Err(FeedbackError::NotSent(touch.id, touch.status));
    }
    Ok((touch.contact_id, Some(touch.id)))
}

async fn fresh<S: Ledger>(store: &S, id: &TouchId) -> Result<Touch, FeedbackError> {
    store
        .get_touches(std::slice::from_ref(id))
        .await?
        .pop()
        .ok_or_else(|| FeedbackError::UnknownTouch(id.clone()))
}

/// The touch a response on `channel` without a touch id answers: the most recent one
/// sent to the contact on that channel at or before the response (an SMS reply, an
/// unsubscribe by mail).
async fn latest_sent<S: Ledger>(
    store: &S,
    contact: &ContactId,
    channel: Channel,
    at: DateTime<Utc>,
) -> Result<Option<Touch>, FeedbackError> {
    Ok(store
        .touches_for_contact(contact)
        .await?
        .into_iter()
        .filter(|t| t.channel == channel && t.sent_at.is_some_and(|s| s <= at))
        .max_by_key(|t| (t.sent_at, t.id.clone())))
}
