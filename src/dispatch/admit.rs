//! Admission of a claimed batch: each touch admitted by [`policy::admit`] (the one
//! decision `rapport plan` and the simulator make too) on the history the store holds,
//! and the atomic reservation of each send's place against its contact's caps.

use std::collections::HashMap;

use super::Dispatcher;
use chrono::{DateTime, Utc};

use crate::{
    domain::{Contact, ContactId, Outcome, Touch, TouchId},
    planner,
    policy::{self, Admission, History, Limits, Verdict},
    store::{Reservation, Store, StoreError},
};

/// How often a batch decides again after losing reservation races before it hands the
/// losers back as a new job.
const ADMIT_ROUNDS: usize = 8;

impl<S: Store> Dispatcher<S> {
    /// Admission of a claimed batch: each touch either gets its place against its
    /// contact's caps (reserved in the store, atomically with the check) and is
    /// returned ready to send, or gets its outcome now (moved to another channel,
    /// suppressed, held, skipped, expired). A reservation that loses a race (another
    /// worker took a place for the same contact meanwhile) is decided again on fresh
    /// history.
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
        let horizon = Limits::widest_horizon(&self.cfg.rules);
        // The batch's own touches are not read back from the store: they are here.
        let batch: Vec<TouchId> = touches.iter().map(|t| t.id.clone()).collect();
        let mut pending = touches;
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

    /// One round of admission ([`policy::admit`]) on fresh history: `pending` touches,
    /// contact by contact, in [`policy::decision_order`]. Those a limited tier sends
    /// come back as the reservations to ask the store for; the rest land in `out`.
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
            let contact = contacts.get(&group[0].contact_id);
            let mut record = records.remove(&group[0].contact_id).unwrap_or_default();
            // This contact's touches in the batch, as the store would have returned
            // them (left out of the read: they are here).
            record.touches.extend(group.iter().cloned());
            let projected = contact.map_or_else(Vec::new, |c| {
                planner::upcoming(&self.cfg.rules, c, now, horizon)
            });
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

    /// Admits one contact's touches in order against its history `h` (each decision
    /// seen by the next). A send in a limited tier becomes a reservation at the next
    /// version of the contact's record: those are returned, to ask the store for.
    fn decide_contact(
        &self,
        contact: Option<&Contact>,
        group: Vec<Touch>,
        mut h: History,
        mut version: u64,
        now: DateTime<Utc>,
        out: &mut Admitted,
    ) -> Vec<(Reservation, Touch)> {
        let rules = &self.cfg.rules;
        let mut asks = Vec::new();
        let unlimited = contact.is_some_and(|c| Limits::for_tier(rules, &c.tier).is_unlimited());
        for t in group {
            match policy::admit(rules, contact, &t, &mut h, now) {
                Admission::Decided(Verdict::Send) if unlimited => out.ready.push(t),
                Admission::Decided(Verdict::Send) => {
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
                settled => {
                    if let Some(o) = settled.outcome(&t) {
                        out.decided.push((t, o));
                    }
                }
            }
        }
        asks
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
