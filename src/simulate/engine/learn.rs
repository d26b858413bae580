//! The loop the daemon closes with `feedback`: a sent touch is answered or not (the
//! response model decides), the learner hears of it when the outcome is known (the send
//! and the answer together, or the send and `ignored` once the response window closes),
//! and its effects act as the daemon's do. An unsubscribe withdraws consent on its
//! channel and a complaint suppresses (consent off on email and SMS, as the store does)
//! whether learning is on or off; with learning on the learned state also steers later
//! touches: the channel (Thompson sampling among the occasion's channels the contact can
//! be reached on), the hour (the one they answer at, inside the send window), the
//! check-in cadence (backed off, then sunset) and the tier.

use std::{cmp::Reverse, rc::Rc, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rand::rngs::StdRng;

use super::{Kind, Sim, Step};
use crate::{
    config::{Config, Occasion, Trigger},
    domain::{NewTouch, SendWindow, TouchStatus, time::local_instant},
    learning::{
        self, ChannelPrior, Effect, RelationshipState, Response, Signal, TouchRef, answer_hour,
        best_hour, check_in_cadence, posterior_mean,
    },
    planner, policy,
    simulate::model::{ResponseModel, Truth, stream},
};

/// One simulated contact's inner life: what they truly prefer, what has been learned
/// about them, and their dice.
pub(super) struct Mind {
    pub(super) truth: Truth,
    pub(super) state: RelationshipState,
    pub(super) start_tier: usize,
    /// How they react to touches.
    answers: StdRng,
    /// The learner's channel draws for them.
    picks: StdRng,
    /// Touches they left unanswered in a row (what happened, not what was learned).
    unanswered: u32,
}

impl Mind {
    pub(super) fn new(truth: Truth, model: &ResponseModel, id: &str, tier: usize) -> Self {
        Self {
            truth,
            state: RelationshipState::default(),
            start_tier: tier,
            answers: stream(model.seed, id, 1),
            picks: stream(model.seed, id, 2),
            unanswered: 0,
        }
    }
}

impl Sim<'_> {
    /// The check-in cadence (seconds) for contact `c` whose tier's is `base`: learned
    /// (backed off; `None` once sunset) with learning on, else the tier's. Bounded only
    /// by `max_backoff`: a tier has no maximum of its own.
    pub(super) fn cadence(&self, c: usize, base: i64) -> Option<i64> {
        if !self.learning {
            return Some(base);
        }
        let base = Duration::from_secs(base.max(0) as u64);
        let model = &self.cfg.learning.model;
        let every = check_in_cadence(&self.people[c].mind.state, model, base, Duration::MAX);
        every.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// With learning on, a new touch goes out on the channel and at the hour learned;
    /// with it off, as planned (the first channel that can reach the contact, the start
    /// of the window).
    pub(super) fn steer(&mut self, c: usize, k: usize, mut t: NewTouch) -> NewTouch {
        if !self.learning || t.status != TouchStatus::Planned {
            return t;
        }
        let (cfg, occasion) = (self.cfg, self.occasions[k]);
        let p = &mut self.people[c];
        let allowed: Vec<&str> = occasion
            .channels
            .iter()
            .map(String::as_str)
            .filter(|ch| policy::blocked(cfg, &p.contact, ch).is_none())
            .collect();
        let none = ChannelPrior::new();
        if let Some(ch) =
            learning::choose_channel(&p.mind.state, &allowed, &none, &mut p.mind.picks)
        {
            t.channel = ch.to_owned();
        }
        let window = cfg.send_window(occasion, &p.contact.tier);
        let (first, last) = window_hours(window);
        let min = cfg.learning.model.min_hour_observations;
        if let Some(h) = best_hour(&p.mind.state, first, last, None, min) {
            let zone = p.contact.zone(cfg.defaults.timezone);
            at_hour(&mut t, h, window, zone, occasion);
        }
        t
    }

    /// Touch `i` of contact `c` went out: how they react is decided now, and heard of
    /// when it happens (or when the response window closes without it).
    pub(super) fn sent(&mut self, c: usize, i: usize, now: DateTime<Utc>) {
        let zone = self.people[c].contact.zone(self.cfg.defaults.timezone);
        let window = self.cfg.learning.model.response_window;
        let p = &mut self.people[c];
        let m = &mut p.mind;
        let e = &mut p.ledger[i];
        let answer = m.truth.react(
            &self.model,
            &e.touch.channel,
            now,
            zone,
            m.unanswered,
            &mut m.answers,
        );
        m.unanswered = match answer {
            Some(a) if a.kind.is_engaged() => 0,
            _ => m.unanswered.saturating_add(1),
        };
        e.tier_at_send = p.tier;
        e.answer = answer;
        self.tiers[p.tier].responses.sent += 1;
        let mut push = |at: DateTime<Utc>, kind| {
            self.queue.push(Reverse(Step {
                at: at.timestamp(),
                kind,
                contact: c as u32,
                priority: Reverse(0),
                index: i as u32,
            }));
        };
        push(learning::config::plus(now, window), Kind::Settle);
        if let Some(a) = answer {
            push(a.at, Kind::Respond);
        }
    }

    /// The answer to touch `i` arrives (with the send, if its outcome was not known yet).
    pub(super) fn on_answer(&mut self, c: usize, i: usize, now: DateTime<Utc>) {
        let e = &mut self.people[c].ledger[i];
        let Some(answer) = e.answer else { return };
        let stats = &mut self.tiers[e.tier_at_send].responses;
        if answer.kind.is_engaged() {
            stats.responses += 1;
        } else {
            stats.opt_outs += 1;
            if answer.kind == learning::ResponseKind::Complaint {
                stats.complaints += 1;
            }
        }
        let (channel, sent_at) = (e.touch.channel.clone(), e.touch.sent_at.unwrap_or(now));
        let mut signals = Vec::with_capacity(2);
        if !std::mem::replace(&mut e.settled, true) {
            signals.push(Signal::Sent {
                channel: channel.clone(),
                at: sent_at,
            });
        }
        signals.push(Signal::Response(Response {
            kind: answer.kind,
            channel: channel.clone(),
            at: answer.at,
            touch: Some(TouchRef { channel, sent_at }),
        }));
        self.learn(c, &signals, now);
        if answer.kind.is_engaged() {
            self.interacted(c, answer.at);
        }
    }

    /// Touch `i`'s response window closed: ignored, unless it was answered.
    pub(super) fn on_silence(&mut self, c: usize, i: usize, now: DateTime<Utc>) {
        let e = &mut self.people[c].ledger[i];
        if std::mem::replace(&mut e.settled, true) {
            return;
        }
        self.tiers[e.tier_at_send].responses.ignored += 1;
        let channel = e.touch.channel.clone();
        let signals = [
            Signal::Sent {
                channel: channel.clone(),
                at: e.touch.sent_at.unwrap_or(now),
            },
            Signal::Ignored { channel, at: now },
        ];
        self.learn(c, &signals, now);
    }

    /// `feedback::learn_from`'s semantics: the signals through the learner, judged in
    /// the contact's tier now; consent and suppression always act, everything else (and
    /// the state itself) only with learning on.
    fn learn(&mut self, c: usize, signals: &[Signal], now: DateTime<Utc>) {
        let cfg = self.cfg;
        let p = &mut self.people[c];
        let zone = p.contact.zone(cfg.defaults.timezone);
        let mut state = if self.learning {
            p.mind.state.clone()
        } else {
            RelationshipState::default()
        };
        let mut effects = Vec::new();
        for s in signals {
            let (next, more) =
                learning::apply(&state, s, &p.contact.tier, &cfg.learning.model, zone, now);
            state = next;
            effects.extend(more);
        }
        if self.learning {
            p.mind.state = state;
        }
        for e in effects {
            self.act(c, e);
        }
        self.reschedule_check_ins(c);
    }

    fn act(&mut self, c: usize, effect: Effect) {
        let learning = self.learning;
        let p = &mut self.people[c];
        match effect {
            Effect::WithdrawConsent { channel } => withdraw(Rc::make_mut(&mut p.contact), &channel),
            Effect::Suppress { .. } => {
                let contact = Rc::make_mut(&mut p.contact);
                withdraw(contact, "email");
                withdraw(contact, "sms");
            }
            Effect::MoveTier { from, to, .. } if learning && self.cfg.tier(&to).is_some() => {
                let Some(t) = self.tier_names.iter().position(|n| *n == to) else {
                    return;
                };
                if let Some(l) = &mut self.tiers[p.tier].learned {
                    *l.tier_moves.entry(format!("{from} -> {to}")).or_default() += 1;
                }
                p.tier = t;
                Rc::make_mut(&mut p.contact).tier = to;
            }
            Effect::Sunset { .. } if learning => {
                if let Some(l) = &mut self.tiers[p.tier].learned {
                    l.sunsets += 1;
                }
            }
            // Backed off, revived: the cadence read from the state says it. A move to a
            // tier the config lacks is not acted on, as the daemon does not.
            _ => {}
        }
    }

    /// What was learned, against the truth, for each contact in the tier it ended in.
    pub(super) fn learned_at_end(&mut self) {
        let cfg = self.cfg;
        let min = cfg.learning.model.min_hour_observations;
        let none = ChannelPrior::new();
        for p in &self.people {
            let Some(l) = &mut self.tiers[p.tier].learned else {
                continue;
            };
            let (state, truth) = (&p.mind.state, &p.mind.truth);
            l.contacts += 1;
            let fatigued = state.ignored_in_row() >= cfg.learning.model.fatigue_after;
            l.backed_off += u64::from(fatigued && !state.is_sunset());
            let learned = answer_hour(state, min);
            l.hour.count(learned.is_some(), learned == Some(truth.hour));
            let choice = reachable_channels(cfg, &self.occasions, &p.contact);
            if choice.len() < 2 {
                continue;
            }
            let answered: u32 = choice.iter().map(|ch| state.channel(ch).responded).sum();
            let best = choice.iter().max_by(|a, b| {
                posterior_mean(state, a, &none).total_cmp(&posterior_mean(state, b, &none))
            });
            l.channel
                .count(answered >= 2, best.copied() == truth.channel.as_deref());
        }
    }
}

/// The channels of the enabled occasions that can reach `contact` now, in config order.
fn reachable_channels<'a>(
    cfg: &Config,
    occasions: &[&'a Occasion],
    contact: &crate::domain::Contact,
) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for ch in occasions.iter().flat_map(|o| o.channels.iter()) {
        if !out.contains(&ch.as_str()) && policy::blocked(cfg, contact, ch).is_none() {
            out.push(ch);
        }
    }
    out
}

fn withdraw(contact: &mut crate::domain::Contact, channel: &str) {
    match channel {
        "email" => contact.email_consent = false,
        "sms" => contact.sms_consent = false,
        // A webhook has no consent to withdraw (nor does the store keep one).
        _ => {}
    }
}

/// The whole hours a send window touches, `[first, last)`: 09:30-17:30 is 9..18.
fn window_hours(window: SendWindow) -> (u32, u32) {
    let day = NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default();
    let midnight = local_instant(day, 0, chrono_tz::UTC);
    let (open, close) = window.on(day, chrono_tz::UTC);
    let minutes = |t: DateTime<Utc>| (t - midnight).num_minutes().clamp(0, 1440) as u32;
    (minutes(open) / 60, minutes(close).div_ceil(60))
}

/// Moves `t` to `hour` (local, inside the window): on its day if that is still ahead,
/// else the next day, if before it expires. A check-in moved to the next day expires
/// with that day, as one planned for it would.
fn at_hour(t: &mut NewTouch, hour: u32, window: SendWindow, zone: Tz, occasion: &Occasion) {
    let check_in = matches!(occasion.trigger, Trigger::Inactivity { .. });
    let from = t.scheduled_at;
    let mut day = from.with_timezone(&zone).date_naive();
    for _ in 0..2 {
        let (open, close) = window.on(day, zone);
        let at = local_instant(day, hour * 60, zone).max(open);
        let expires = if check_in {
            planner::expiry(day, zone, occasion.expires).max(t.expires_at)
        } else {
            t.expires_at
        };
        if at >= from {
            if at < close && at < expires {
                t.scheduled_at = at;
                t.expires_at = expires;
            }
            return;
        }
        let Some(next) = day.succ_opt() else { return };
        day = next;
    }
}
