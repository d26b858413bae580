//! Admission: the relationship policy for a claimed batch, and the atomic reservation
//! of each admitted touch's place against its contact's caps.

use std::collections::HashMap;

use super::Dispatcher;
use chrono::{DateTime, Utc};

use crate::{
    domain::{Contact, ContactId, Outcome, Touch, TouchId},
    planner,
    policy::{self, History, Limits, Reach, Verdict},
    store::{Reservation, Store, StoreError},
};

/// How often a batch decides again after losing reservation races before it hands the
/// losers back as a new job.
const ADMIT_ROUNDS: usize = 8;

impl<S: Store> Dispatcher<S> {
    /// The relationship policy for a claimed batch: each touch either gets its place
    /// against its contact's caps (reserved in the store, atomically with the check)
    /// and is returned ready to send, or gets its outcome now (suppressed, held,
    /// skipped, expired). A reservation that loses a race (another worker took a place
    /// for the same contact meanwhile) is decided again on fresh history.
    pub(super) async fn admit(
        &self,
        touches: Vec<Touch>,
        contacts: &HashMap<ContactId, Contact>,
        owner: &str,
    ) -> Result<(Vec<Touch>, Vec<(Touch, Outcome)>), StoreError> {
        let mut out = Admitted {
            ready: Vec::with_capacity(touches.len()),
            decided: Vec::new(),
        };
        let mut pending = Vec::with_capacity(touches.len());
        for t in touches {
            match self.precheck(&t, contacts.get(&t.contact_id)) {
                Some(o) => out.decided.push((t, o)),
                None => pending.push(t),
            }
        }
        let horizon = Limits::widest_horizon(&self.cfg);
        // The batch's own touches are not read back from the store: they are here.
        let batch: Vec<TouchId> = pending.iter().map(|t| t.id.clone()).collect();
        for _round in 0..ADMIT_ROUNDS {
            if pending.is_empty() {
                break;
            }
            let asks = self
                .decide_round(
                    std::mem::take(&mut pending),
                    contacts,
                    &batch,
                    horizon,
                    &mut out,
                )
                .await?;
            if asks.is_empty() {
                break;
            }
            let reservations: Vec<Reservation> = asks.iter().map(|(r, _)| r.clone()).collect();
            let taken = self.store.reserve(&reservations, owner).await?;
            for ((_, t), ok) in asks.into_iter().zip(taken) {
                if ok {
                    out.ready.push(t);
                } else {
                    pending.push(t);
                }
            }
        }
        // Still racing after every round: try again shortly, as a new job.
        for t in pending {
            let o = Outcome::Defer {
                id: t.id.clone(),
                at: self.clock.now() + chrono::Duration::seconds(1),
                reason: Some("held: its contact's caps were busy; trying again".into()),
            };
            out.decided.push((t, o));
        }
        Ok((out.ready, out.decided))
    }

    /// One round of decisions on fresh history: `pending` touches, contact by contact,
    /// in [`policy::decision_order`]. Those a limited tier sends come back as the
    /// reservations to ask the store for; the rest land in `out`.
    async fn decide_round(
        &self,
        mut pending: Vec<Touch>,
        contacts: &HashMap<ContactId, Contact>,
        batch: &[TouchId],
        horizon: std::time::Duration,
        out: &mut Admitted,
    ) -> Result<Vec<(Reservation, Touch)>, StoreError> {
        let now = self.clock.now();
        let mut ids: Vec<ContactId> = pending.iter().map(|t| t.contact_id.clone()).collect();
        ids.sort();
        ids.dedup();
        let span = policy::lookback(horizon);
        let mut records = self.store.policy_records(&ids, now - span, batch).await?;
        pending.sort_by(policy::decision_order);
        let mut asks: Vec<(Reservation, Touch)> = Vec::new();
        for group in by_contact(pending) {
            let Some(contact) = contacts.get(&group[0].contact_id) else {
                continue;
            };
            let mut record = records.remove(&contact.id).unwrap_or_default();
            // This contact's touches in the batch, as the store would have returned
            // them (left out of the read: they are here).
            record.touches.extend(group.iter().cloned());
            let projected = planner::upcoming(&self.cfg, contact, now, horizon);
            let h = History::new(
                record.slots,
                &record.touches,
                projected,
                record.last_interaction,
            );
            asks.extend(self.decide_contact(contact, group, h, record.version, now, out));
        }
        Ok(asks)
    }

    /// Decides one contact's touches in order against its history `h` (each decision
    /// seen by the next). A send in a limited tier becomes a reservation at the next
    /// version of the contact's record: those are returned, to ask the store for.
    fn decide_contact(
        &self,
        contact: &Contact,
        group: Vec<Touch>,
        mut h: History,
        mut version: u64,
        now: DateTime<Utc>,
        out: &mut Admitted,
    ) -> Vec<(Reservation, Touch)> {
        let mut asks = Vec::new();
        let unlimited = Limits::for_tier(&self.cfg, &contact.tier).is_unlimited();
        for t in group {
            match h.decide(&self.cfg, contact, &t, now) {
                Verdict::Send if unlimited => out.ready.push(t),
                Verdict::Send => {
                    asks.push((
                        Reservation {
                            touch: t.id.clone(),
                            contact: t.contact_id.clone(),
                            channel: t.channel,
                            at: now,
                            version,
                        },
                        t,
                    ));
                    version += 1;
                }
                v @ Verdict::Hold { until, .. } => {
                    let o = Outcome::Defer {
                        id: t.id.clone(),
                        at: until,
                        reason: v.reason(),
                    };
                    out.decided.push((t, o));
                }
                v @ Verdict::Skip { .. } => {
                    let o = Outcome::Skipped {
                        id: t.id.clone(),
                        reason: v.reason().unwrap_or_default(),
                    };
                    out.decided.push((t, o));
                }
                v @ Verdict::Expire { .. } => {
                    let o = Outcome::Expired {
                        id: t.id.clone(),
                        reason: v.reason().unwrap_or_default(),
                    };
                    out.decided.push((t, o));
                }
            }
        }
        asks
    }

    /// What settles a touch before the policy is asked: the contact gone, or its
    /// channel unable to reach the contact ([`policy::reach`]: no consent, no address),
    /// when it moves on to the occasion's next channel that can, or is suppressed.
    pub(super) fn precheck(&self, touch: &Touch, contact: Option<&Contact>) -> Option<Outcome> {
        let Some(contact) = contact else {
            return Some(Outcome::Suppressed {
                id: touch.id.clone(),
                reason: "contact no longer exists".into(),
            });
        };
        match policy::reach(&self.cfg, contact, touch) {
            Reach::Go => None,
            Reach::Move { to, why } => Some(Outcome::Fallback {
                id: touch.id.clone(),
                channel: to.to_owned(),
                reason: policy::move_reason(touch, to, &why),
            }),
            Reach::Suppressed { why } => Some(Outcome::Suppressed {
                id: touch.id.clone(),
                reason: why,
            }),
        }
    }
}

/// Where a batch's touches stand so far.
struct Admitted {
    /// Each has its place: ready to send.
    ready: Vec<Touch>,
    /// Each has its outcome now.
    decided: Vec<(Touch, Outcome)>,
}

/// `touches` (in decision order) in runs of one contact each.
fn by_contact(touches: Vec<Touch>) -> Vec<Vec<Touch>> {
    let mut groups: Vec<Vec<Touch>> = Vec::new();
    for t in touches {
        match groups.last_mut() {
            Some(g) if g[0].contact_id == t.contact_id => g.push(t),
            _ => groups.push(vec![t]),
        }
    }
    groups
}
