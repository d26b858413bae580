//! The loop the daemon closes with `feedback`: a sent touch is answered or not (the
//! response model decides), the learner hears of it when the outcome is known (the send
//! and the answer together, or the send and `ignored` once the response window closes),
//! and its effects act as the daemon's do. An unsubscribe withdraws consent on its
//! channel and a complaint suppresses (consent off on email and SMS, as the store does)
//! whether learning is on or off; with learning on the state is kept, moves the tier,
//! and the planner's own learned planning ([`planner::plan_learned`],
//! [`planner::check_in_learned`]) takes it from there: channel, hour and check-in
//! cadence, with the tier's answer rates as the channel prior and its answer hour as the
//! fallback hour, read from the statistics as the planner loop reads them.

use crate::domain::Channel;
use std::{cmp::Reverse, collections::BTreeMap, rc::Rc, time::Duration};

use chrono::{DateTime, Timelike, Utc};
use rand::rngs::StdRng;

use super::{Kind, Sim, Step};
use crate::{
    config::{Config, Occasion},
    learning::{
        self, ChannelPrior, Effect, RelationshipState, Response, Signal, TouchRef, answer_hour,
        posterior_mean,
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
            unanswered: 0,
        }
    }
}

/// What the learner's statistics say of one tier, as the store keeps them (under the
/// contact's tier when it happened): per channel, touches whose outcome is known and
/// how many were answered; per local hour, the engaged answers.
#[derive(Debug, Clone, Default)]
pub(super) struct Known {
    channels: BTreeMap<Channel, (u64, u64)>,
    hours: [u64; 24],
}

/// A tier's answer rates per channel, as the planner loop makes its prior.
fn tier_prior(known: &Known) -> ChannelPrior {
    crate::learning::tier_prior(
        known
            .channels
            .iter()
            .map(|(c, (s, r))| (c.as_str(), *s, *r)),
    )
}

impl Sim<'_> {
    /// The check-in cadence (seconds) for contact `c` whose tier's is `base`: learned
    /// (backed off, at most `max_backoff` times the tier's and a year; `None` once
    /// sunset) with learning on, else the tier's.
    pub(super) fn cadence(&self, c: usize, base: i64) -> Option<i64> {
        let m = &self.people[c].mind;
        if !self.learning {
            return Some(base);
        }
        let base = Duration::from_secs(base.max(0) as u64);
        let every = planner::learned_cadence(&self.cfg.learning.model, &m.state, base);
        every.map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// What the planner loop reads from the statistics, per tier: its answer rates per
    /// channel (scaled to [`learning::PRIOR_WEIGHT`](crate::learning::PRIOR_WEIGHT)) and the hour it (or, with too few answers,
    /// everyone) answers at.
    pub(super) fn knowledge(&self) -> Vec<(ChannelPrior, Option<u32>)> {
        let mut all = [0u64; 24];
        for k in &self.known {
            all.iter_mut().zip(k.hours).for_each(|(a, n)| *a += n);
        }
        let everyone = crate::learning::answer_mode(&all);
        self.known
            .iter()
            .map(|k| {
                (
                    tier_prior(k),
                    crate::learning::answer_mode(&k.hours).or(everyone),
                )
            })
            .collect()
    }

    /// What the planner plans contact `c` with: nothing with learning off; a contact
    /// nothing was learned of yet has a fresh state (and its tier's knowledge).
    pub(super) fn learned<'s>(
        &'s self,
        c: usize,
        prior: &'s ChannelPrior,
        fallback_hour: Option<u32>,
    ) -> Option<planner::Learned<'s>> {
        self.learning.then_some(planner::Learned {
            learning: &self.cfg.learning,
            state: &self.people[c].mind.state,
            prior,
            fallback_hour,
        })
    }

    /// Counts an outcome in the statistics, under the contact's tier now (as the store
    /// keys them); an engaged answer also counts its local hour.
    fn count(
        &mut self,
        c: usize,
        channel: Channel,
        settled: bool,
        answered: Option<DateTime<Utc>>,
    ) {
        let p = &self.people[c];
        let known = &mut self.known[p.tier];
        let e = known.channels.entry(channel).or_default();
        e.0 += u64::from(settled);
        e.1 += u64::from(answered.is_some());
        if let Some(at) = answered {
            let zone = p.contact.zone(self.cfg.rules.defaults.timezone);
            known.hours[at.with_timezone(&zone).hour() as usize % 24] += 1;
        }
    }

    /// Touch `i` of contact `c` went out: how they react is decided now, and heard of
    /// when it happens (or when the response window closes without it).
    pub(super) fn sent(&mut self, c: usize, i: usize, now: DateTime<Utc>) {
        let zone = self.people[c]
            .contact
            .zone(self.cfg.rules.defaults.timezone);
        let window = self.cfg.learning.model.response_window;
        let p = &mut self.people[c];
        let m = &mut p.mind;
        let e = &mut p.ledger[i];
        let answer = m.truth.react(
            &self.model,
            e.touch.channel,
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
        let (channel, sent_at) = (e.touch.channel, e.touch.sent_at.unwrap_or(now));
        let mut signals = Vec::with_capacity(2);
        let first = !std::mem::replace(&mut e.settled, true);
        if first {
            signals.push(Signal::Sent {
                channel,
                at: sent_at,
            });
        }
        let engaged = answer.kind.is_engaged().then_some(answer.at);
        self.count(c, channel, first, engaged);
        signals.push(Signal::Response(Response {
            kind: answer.kind,
            channel,
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
        let channel = e.touch.channel;
        let signals = [
            Signal::Sent {
                channel,
                at: e.touch.sent_at.unwrap_or(now),
            },
            Signal::Ignored { channel, at: now },
        ];
        self.count(c, channel, true, None);
        self.learn(c, &signals, now);
    }

    /// `feedback::learn_from`'s semantics: the signals through the learner, judged in
    /// the contact's tier now; consent and suppression always act, everything else (and
    /// the state itself) only with learning on.
    fn learn(&mut self, c: usize, signals: &[Signal], now: DateTime<Utc>) {
        let cfg = self.cfg;
        let p = &mut self.people[c];
        let zone = p.contact.zone(cfg.rules.defaults.timezone);
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
            Effect::WithdrawConsent { channel } => withdraw(Rc::make_mut(&mut p.contact), channel),
            Effect::Suppress { .. } => {
                let contact = Rc::make_mut(&mut p.contact);
                withdraw(contact, Channel::Email);
                withdraw(contact, Channel::Sms);
            }
            Effect::MoveTier { from, to, .. } if learning && self.cfg.rules.tier(&to).is_some() => {
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
            let answered: u32 = choice.iter().map(|ch| state.channel(*ch).responded).sum();
            let best = choice.iter().max_by(|a, b| {
                posterior_mean(state, **a, &none).total_cmp(&posterior_mean(state, **b, &none))
            });
            l.channel
                .count(answered >= 2, best.copied() == truth.channel);
        }
    }
}

/// The channels of the enabled occasions that can reach `contact` now, in config order.
fn reachable_channels(
    cfg: &Config,
    occasions: &[&Occasion],
    contact: &crate::domain::Contact,
) -> Vec<Channel> {
    let mut out: Vec<Channel> = Vec::new();
    for ch in occasions.iter().flat_map(|o| o.channels.iter().copied()) {
        if !out.contains(&ch) && policy::blocked(&cfg.rules, contact, ch).is_none() {
            out.push(ch);
        }
    }
    out
}

fn withdraw(contact: &mut crate::domain::Contact, channel: Channel) {
    match channel {
        Channel::Email => contact.email_consent = false,
        Channel::Sms => contact.sms_consent = false,
        // A webhook has no consent to withdraw (nor does the store keep one).
        Channel::Webhook => {}
    }
}
