//! Deciding a due touch, as the dispatcher does: the precheck, then the policy with the
//! contact's history; a send takes its place, a hold comes back later, anything else is
//! final and counted by a bounded reason.

use std::{borrow::Cow, cmp::Reverse, rc::Rc};

use chrono::{DateTime, Duration, Utc};

use super::{Kind, Sim, Step, TierReport};
use crate::{
    domain::{Touch, TouchStatus},
    planner,
    policy::{self, History, Settled, Slot, Throttled, Verdict, Why, throttle},
};

impl Sim<'_> {
    pub(super) fn dispatch(&mut self, c: usize, i: usize, now: DateTime<Utc>) {
        let (cfg, contact) = (self.cfg, Rc::clone(&self.people[c].contact));
        let touch = &self.people[c].ledger[i].touch;
        if touch.status != TouchStatus::Planned || touch.next_attempt_at != now {
            return;
        }
        // Admitted as the dispatcher admits it: a channel that cannot carry the touch
        // moves it on to the occasion's next one it has not tried, if any; then the
        // policy decides on the contact's history.
        let mut history = self.history(c, now);
        let (touch, _, verdict) =
            policy::admit_through(&cfg.rules, Some(&contact), touch, &mut history, now);
        if let Cow::Owned(moved) = touch {
            self.people[c].ledger[i].touch = moved;
        }
        let verdict = match verdict {
            Settled::Decided(v) => v,
            Settled::Suppressed { reason } => {
                self.finish(c, i, TouchStatus::Suppressed, reason);
                return;
            }
        };
        match verdict {
            Verdict::Send => self.send(c, i, now),
            Verdict::Hold { until, why } => {
                if let Why::Throttled(t) = &why {
                    self.throttled(c, t);
                    let e = &mut self.people[c].ledger[i];
                    if !e.deferred {
                        e.deferred = true;
                        let k = e.occasion;
                        self.tiers[self.people[c].tier].occasions[k].deferred += 1;
                    }
                }
                // A hold always moves time on; never spin on one instant.
                let until = until.max(now + Duration::seconds(1));
                let e = &mut self.people[c].ledger[i];
                e.touch.next_attempt_at = until;
                e.touch.updated_at = now;
                self.queue.push(Reverse(Step {
                    at: until.timestamp(),
                    kind: Kind::Dispatch,
                    contact: c as u32,
                    priority: Reverse(e.touch.priority),
                    index: i as u32,
                }));
            }
            Verdict::Skip { why } => {
                if let Why::Throttled(t) = &why {
                    self.throttled(c, t);
                }
                self.finish(c, i, TouchStatus::Skipped, why_key(&why));
            }
            Verdict::Expire { why } => {
                let why = self.expiry(c, i, &why, &history, now);
                self.finish(c, i, TouchStatus::Expired, why);
            }
        }
    }

    /// What the store would hand the policy: places taken and touches from `horizon`
    /// ago, and the yearly touches still to come.
    fn history(&self, c: usize, now: DateTime<Utc>) -> History {
        let p = &self.people[c];
        let since = now - policy::lookback(self.horizon);
        let slots = p.sends.iter().filter(|s| s.at >= since).cloned().collect();
        let touches: Vec<Touch> = p
            .ledger
            .iter()
            .filter(|e| e.touch.scheduled_at >= since)
            .map(|e| e.touch.clone())
            .collect();
        let projected = planner::upcoming(&self.cfg.rules, &p.contact, now, self.horizon);
        History::new(slots, &touches, projected, Some(p.last_interaction))
    }

    /// Why an expired touch expired. The policy's `TooLate` says it in prose; for a bounded
    /// label (and to count the rule among the caps hit) ask again which it was: the
    /// window, or the throttle holding it past its expiry.
    fn expiry(
        &mut self,
        c: usize,
        i: usize,
        why: &Why,
        history: &History,
        now: DateTime<Utc>,
    ) -> String {
        if !matches!(why, Why::TooLate(_)) {
            return why_key(why);
        }
        let (cfg, p) = (self.cfg, &self.people[c]);
        let touch = &p.ledger[i].touch;
        let window = cfg
            .rules
            .occasion(&touch.occasion)
            .map_or(cfg.rules.defaults.send_window, |o| {
                cfg.rules.send_window(o, &p.contact.tier)
            });
        let zone = p.contact.zone(cfg.rules.defaults.timezone);
        if window.fit(now, zone, touch.expires_at).is_none() {
            return "its send window closed before it could go".to_owned();
        }
        let candidate = throttle::Candidate {
            touch: &touch.id,
            channel: touch.channel,
            priority: touch.priority,
            at: now,
        };
        let limits = &self.limits[p.tier];
        match throttle::check(limits, &history.slots, &history.upcoming, &candidate) {
            Err((t, _)) => {
                let key = format!("held past its expiry by {}", throttle_key(&t));
                self.throttled(c, &t);
                key
            }
            Ok(()) => "too late".to_owned(),
        }
    }

    fn send(&mut self, c: usize, i: usize, now: DateTime<Utc>) {
        let p = &mut self.people[c];
        let e = &mut p.ledger[i];
        e.touch.status = TouchStatus::Sent;
        e.touch.sent_at = Some(now);
        e.touch.slot_at = Some(now);
        e.touch.updated_at = now;
        e.touch.attempts += 1;
        p.sends.push(Slot {
            touch: e.touch.id.clone(),
            at: now,
            channel: e.touch.channel,
        });
        p.send_tiers.push(p.tier);
        self.tiers[p.tier].occasions[e.occasion].sent += 1;
        self.interacted(c, now);
        self.sent(c, i, now);
    }

    fn finish(&mut self, c: usize, i: usize, status: TouchStatus, why: String) {
        let p = &mut self.people[c];
        let e = &mut p.ledger[i];
        e.touch.status = status;
        let stats = &mut self.tiers[p.tier];
        let row = &mut stats.occasions[e.occasion];
        let map = match status {
            TouchStatus::Skipped => {
                row.skipped += 1;
                &mut stats.skipped
            }
            TouchStatus::Suppressed => {
                row.suppressed += 1;
                &mut stats.suppressed
            }
            _ => {
                row.expired += 1;
                &mut stats.expired
            }
        };
        TierReport::count(map, why.clone());
        e.touch.reason = Some(why);
    }

    fn throttled(&mut self, c: usize, t: &Throttled) {
        let stats = &mut self.tiers[self.people[c].tier];
        TierReport::count(&mut stats.caps_hit, throttle_key(t));
    }
}

/// A bounded label for a throttle decision: the rule, never an instant or an id.
fn throttle_key(t: &Throttled) -> String {
    match t {
        Throttled::Limited(l) => l.to_string(),
        Throttled::Yields {
            occasion, limit, ..
        } => format!("yields to {occasion} ({limit})"),
    }
}

fn why_key(why: &Why) -> String {
    match why {
        Why::Throttled(t) => throttle_key(t),
        Why::NotDue(_) => "no longer due (an interaction since it was planned)".to_owned(),
        Why::TooLate(_) => "too late".to_owned(),
        Why::Window | Why::ChannelNotAllowed { .. } => why.to_string(),
    }
}
