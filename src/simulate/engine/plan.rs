//! Planning, as the daemon's planner loop does on each occasion's schedule: yearly
//! dates for the contacts whose day it is somewhere, check-ins for those idle past their
//! cadence, and recording what they give insert-if-absent by id, as the ledger does.

use std::{cmp::Reverse, collections::BinaryHeap};

use chrono::{DateTime, Utc};

use super::{CheckIns, Entry, Kind, Sim, Step, TierReport};
use crate::{
    config::{DateField, Trigger},
    domain::{NewTouch, TouchStatus, time::local_midnight},
    planner,
};

impl Sim<'_> {
    /// Every planner runs at the start (as the daemon's does at start-up), then on its
    /// schedule; check-ins start counting from the start.
    pub(super) fn schedule_planners(&mut self) {
        for (k, o) in self.occasions.iter().enumerate() {
            if o.schedule.is_none() || matches!(o.trigger, Trigger::Event { .. }) {
                continue;
            }
            self.queue.push(Reverse(Step {
                at: self.start.timestamp(),
                kind: Kind::Plan,
                contact: 0,
                priority: Reverse(0),
                index: k as u32,
            }));
            if !matches!(o.trigger, Trigger::Inactivity { .. }) {
                continue;
            }
            let every: Vec<Option<i64>> = self
                .tier_names
                .iter()
                .map(|t| {
                    self.cfg
                        .rules
                        .check_in_every(o, t)
                        .map(|e| e.as_secs() as i64)
                })
                .collect();
            let mut ci = CheckIns {
                occasion: k,
                due: vec![i64::MAX; self.people.len()],
                every,
                heap: BinaryHeap::new(),
            };
            for (c, p) in self.people.iter().enumerate() {
                if let Some(e) = ci.every[p.tier] {
                    ci.set(c, self.start.timestamp() + e);
                }
            }
            self.check_ins.push(ci);
        }
    }

    pub(super) fn on_tick(&mut self, k: usize, now: DateTime<Utc>) {
        let o = self.occasions[k];
        match o.trigger {
            Trigger::Date(field) => self.plan_dates(k, field, now),
            Trigger::Inactivity { .. } => {
                if let Some(j) = self.check_ins.iter().position(|c| c.occasion == k) {
                    self.plan_check_ins(j, now);
                }
            }
            Trigger::Event { .. } => {}
        }
        if let Some(next) = o.schedule.as_ref().and_then(|s| s.after(&now).next()) {
            self.queue.push(Reverse(Step {
                at: next.timestamp(),
                kind: Kind::Plan,
                contact: 0,
                priority: Reverse(0),
                index: k as u32,
            }));
        }
    }

    fn plan_dates(&mut self, k: usize, field: DateField, now: DateTime<Utc>) {
        let (cfg, occasion) = (self.cfg, self.occasions[k]);
        // What the statistics say, read once per run as the planner loop does, and only
        // when someone is due (most ticks find nobody).
        let mut known = None;
        for day in planner::candidate_days(now) {
            let Some(ids) = self.dates.get(&(field, day)).cloned() else {
                continue;
            };
            for c in ids {
                let c = c as usize;
                if self.people[c].quiet_until[k] > now.timestamp() {
                    continue;
                }
                if planner::due(&cfg.rules, occasion, &self.people[c].contact, now).is_none() {
                    continue;
                }
                let known = known.get_or_insert_with(|| self.knowledge());
                let (prior, hour) = &known[self.people[c].tier];
                let learned = self.learned(c, prior, *hour);
                let contact = std::slice::from_ref(&*self.people[c].contact);
                let planned =
                    planner::plan_learned(&cfg.rules, occasion, contact, |_| learned, now);
                let Some(t) = planned.into_iter().next() else {
                    continue;
                };
                let p = &mut self.people[c];
                let zone = p.contact.zone(cfg.rules.defaults.timezone);
                let today = now.with_timezone(&zone).date_naive();
                p.quiet_until[k] = today
                    .succ_opt()
                    .map_or(i64::MAX, |d| local_midnight(d, zone).timestamp());
                self.record(c, k, t, now);
            }
        }
    }

    fn plan_check_ins(&mut self, j: usize, now: DateTime<Utc>) {
        let (cfg, occasion) = (self.cfg, self.occasions[self.check_ins[j].occasion]);
        let now_ts = now.timestamp();
        let mut known = None;
        loop {
            let ci = &mut self.check_ins[j];
            let Some(&Reverse((due, c))) = ci.heap.peek() else {
                break;
            };
            if due > now_ts {
                break;
            }
            ci.heap.pop();
            let c = c as usize;
            if ci.due[c] != due {
                continue;
            }
            let Some(every) = ci.every[self.people[c].tier] else {
                continue;
            };
            // A backed-off cadence runs out later than the tier's: not due yet.
            let p = &self.people[c];
            let last = p.last_interaction.timestamp();
            match self.cadence(c, every) {
                None => {
                    self.check_ins[j].set(c, i64::MAX);
                    continue;
                }
                Some(e) if last.saturating_add(e) > now_ts => {
                    self.check_ins[j].set(c, last.saturating_add(e));
                    continue;
                }
                Some(_) => {}
            }
            let known = known.get_or_insert_with(|| self.knowledge());
            let (prior, hour) = &known[p.tier];
            let learned = self.learned(c, prior, *hour);
            let due = planner::check_in_learned(
                &cfg.rules,
                occasion,
                &p.contact,
                p.last_interaction,
                learned,
                now,
            );
            let next = match due {
                Some(t) => {
                    self.record(c, self.check_ins[j].occasion, t, now);
                    // The planner names a check-in by its cadence period: until the next
                    // period starts, an idle contact only gets the one already recorded.
                    (now_ts.div_euclid(every.max(1)) + 1) * every.max(1)
                }
                None => now_ts + 1,
            };
            self.check_ins[j].set(c, next);
        }
    }

    /// Records `t` unless the contact's ledger has it (insert-if-absent by id).
    pub(super) fn record(&mut self, c: usize, k: usize, t: NewTouch, now: DateTime<Utc>) {
        if self.people[c].ledger.iter().any(|e| e.touch.id == t.id) {
            return;
        }
        let p = &mut self.people[c];
        let stats = &mut self.tiers[p.tier];
        stats.occasions[k].planned += 1;
        if t.status != TouchStatus::Planned {
            stats.occasions[k].expired += 1;
            let why = if t.expires_at <= now {
                "recorded after its expiry"
            } else {
                "planned after its send window closed"
            };
            TierReport::count(&mut stats.expired, why.to_owned());
        } else {
            self.queue.push(Reverse(Step {
                at: t.scheduled_at.timestamp(),
                kind: Kind::Dispatch,
                contact: c as u32,
                priority: Reverse(t.priority),
                index: p.ledger.len() as u32,
            }));
        }
        let touch = t.recorded(now);
        p.ledger.push(Entry {
            touch,
            occasion: k,
            deferred: false,
            tier_at_send: p.tier,
            answer: None,
            settled: false,
        });
    }
}
