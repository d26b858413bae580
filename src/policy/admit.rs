//! Admission: what happens to a due touch right before it would go out, decided by one
//! function for the dispatcher, `rapport plan` and the simulator, so the three cannot
//! disagree. First the precheck (the contact gone; its channel unable to reach the
//! contact, when it moves to the occasion's next channel that can, or is suppressed:
//! [`reach`]), then the relationship policy against the contact's history
//! ([`History::decide`]).

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use super::{History, Reach, Verdict, move_reason, reach};
use crate::{
    config::Rules,
    domain::{Channel, Contact, Outcome, Touch},
};

/// What admission makes of a due touch.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// Its channel cannot reach the contact: it moves to `to` (the ledger records
    /// `reason`), and is admitted again on it right after ([`moved`]).
    Move { to: Channel, reason: String },
    /// Nothing can carry it (its contact is gone, or no channel it has not tried can
    /// reach the contact): final.
    Suppressed { reason: String },
    /// The policy's verdict on its channel; the history has taken it in (a send holds
    /// its place for the contact's next touches).
    Decided(Verdict),
}

impl Admission {
    /// The outcome the ledger records for `touch` admitted so; `None` for a send (its
    /// outcome is the send's).
    pub fn outcome(self, touch: &Touch) -> Option<Outcome> {
        let id = touch.id.clone();
        Some(match self {
            Self::Move { to, reason } => Outcome::Fallback {
                id,
                channel: to,
                reason,
            },
            Self::Suppressed { reason } => Outcome::Suppressed { id, reason },
            Self::Decided(Verdict::Send) => return None,
            Self::Decided(v @ Verdict::Hold { until, .. }) => Outcome::Defer {
                id,
                at: until,
                reason: v.reason(),
            },
            Self::Decided(v @ Verdict::Skip { .. }) => Outcome::Skipped {
                id,
                reason: v.reason().unwrap_or_default(),
            },
            Self::Decided(v @ Verdict::Expire { .. }) => Outcome::Expired {
                id,
                reason: v.reason().unwrap_or_default(),
            },
        })
    }
}

/// Admits `touch` at `now`: the precheck, then the policy against `h` (updated as the
/// decision plays out for the contact's next touch). `contact`: `None` when it no longer
/// exists.
pub fn admit(
    rules: &Rules,
    contact: Option<&Contact>,
    touch: &Touch,
    h: &mut History,
    now: DateTime<Utc>,
) -> Admission {
    let Some(contact) = contact else {
        return Admission::Suppressed {
            reason: "contact no longer exists".into(),
        };
    };
    match reach(rules, contact, touch) {
        Reach::Go => Admission::Decided(h.decide(rules, contact, touch, now)),
        Reach::Move { to, why } => Admission::Move {
            reason: move_reason(touch, to, &why),
            to,
        },
        Reach::Suppressed { why } => {
            // Settled: no longer a touch still to go for the contact's next ones.
            h.upcoming.retain(|u| u.touch != touch.id);
            Admission::Suppressed { reason: why }
        }
    }
}

/// `touch` as it stands after a move to `to` for `reason`: on `to`, with the channel it
/// left among those it does not go back to.
pub fn moved(touch: &Touch, to: Channel, reason: &str) -> Touch {
    let mut t = touch.clone();
    t.tried.push(std::mem::replace(&mut t.channel, to));
    t.reason = Some(reason.to_owned());
    t
}

/// Where admission ends once every move is followed.
#[derive(Debug, Clone, PartialEq)]
pub enum Settled {
    /// The policy's verdict on the channel it ended on.
    Decided(Verdict),
    /// No channel can carry it, for `reason`.
    Suppressed { reason: String },
}

/// [`admit`], following each move as the dispatcher does (the move recorded, the moved
/// touch admitted again right after): the touch as it finally stands, the reasons of
/// its moves (in order), and where it settled.
pub fn admit_through<'t>(
    rules: &Rules,
    contact: Option<&Contact>,
    touch: &'t Touch,
    h: &mut History,
    now: DateTime<Utc>,
) -> (Cow<'t, Touch>, Vec<String>, Settled) {
    let mut t = Cow::Borrowed(touch);
    let mut moves = Vec::new();
    loop {
        match admit(rules, contact, &t, h, now) {
            Admission::Move { to, reason } => {
                t = Cow::Owned(moved(&t, to, &reason));
                moves.push(reason);
            }
            Admission::Suppressed { reason } => return (t, moves, Settled::Suppressed { reason }),
            Admission::Decided(v) => return (t, moves, Settled::Decided(v)),
        }
    }
}
