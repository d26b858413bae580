//! The simulation loop: one queue of steps in time order (events, planner ticks, dispatch
//! attempts), and per contact the ledger and history the store would hold.
//!
//! Why it is fast enough for 10,000 contacts over a year: a yearly occasion's tick looks
//! only at the contacts whose date is a candidate day (an index by month-day, as the
//! store has), and skips those whose touch for their local day is already recorded; a
//! check-in tick looks only at the contacts whose cadence has run out (a heap keyed by
//! when it does). Nothing scans every contact per step.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap},
    rc::Rc,
};

use chrono::{DateTime, Duration, Utc};

use super::{
    SimOptions,
    model::{Answer, BadAttribute, ResponseModel, Truth},
    report::{LearnedStats, ResponseStats, SimReport, TierReport},
};
use crate::{
    config::{Config, DateField, Occasion},
    domain::{Contact, ContactId, Event, MonthDay, Touch, TouchStatus},
    planner,
    policy::{Limits, Slot},
};

mod decide;
mod learn;
mod plan;

use learn::Mind;

/// At one instant an event is recorded, then answers arrive and silent touches are
/// noticed, before the planners run; all before the dispatcher looks for due touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Event,
    Respond,
    Settle,
    Plan,
    Dispatch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Step {
    at: i64,
    kind: Kind,
    contact: u32,
    /// Within a contact, higher priority first, as the dispatcher orders a batch.
    priority: Reverse<u32>,
    /// The event, the occasion (a planner tick) or the touch in the contact's ledger.
    index: u32,
}

struct Entry {
    touch: Touch,
    /// Index into `Sim::occasions`.
    occasion: usize,
    deferred: bool,
    /// Once sent: the contact's tier then, and how they will react.
    tier_at_send: usize,
    answer: Option<Answer>,
    /// The learner has heard how it went (answered, or ignored).
    settled: bool,
}

struct Person {
    /// Shared until learning changes it (consent, tier).
    contact: Rc<Contact>,
    /// The tier now, an index into `Sim::tier_names`.
    tier: usize,
    last_interaction: DateTime<Utc>,
    ledger: Vec<Entry>,
    sends: Vec<Slot>,
    /// The tier each of `sends` was made in.
    send_tiers: Vec<usize>,
    mind: Mind,
    /// Per occasion: its yearly touch for the contact's current local day is recorded, so
    /// the planner can give nothing new before this instant (the next local midnight).
    quiet_until: Vec<i64>,
}

/// One inactivity occasion's contacts, keyed by when their check-in can next be due.
/// Entries are never removed early: one whose time no longer matches `due` is stale.
struct CheckIns {
    occasion: usize,
    /// The cadence per tier, in seconds.
    every: Vec<Option<i64>>,
    due: Vec<i64>,
    heap: BinaryHeap<Reverse<(i64, u32)>>,
}

impl CheckIns {
    fn set(&mut self, contact: usize, at: i64) {
        if self.due[contact] != at {
            self.due[contact] = at;
            self.heap.push(Reverse((at, contact as u32)));
        }
    }
}

pub(super) struct Sim<'a> {
    cfg: &'a Config,
    model: ResponseModel,
    /// Whether the learner steers (channel, hour, cadence, tier) or only consent acts.
    learning: bool,
    /// The enabled occasions, in config order.
    occasions: Vec<&'a Occasion>,
    tier_names: Vec<String>,
    people: Vec<Person>,
    /// Per tier, what the learner's statistics say.
    known: Vec<learn::Known>,
    dates: HashMap<(DateField, MonthDay), Vec<u32>>,
    check_ins: Vec<CheckIns>,
    events: Vec<(&'a Event, u32)>,
    queue: BinaryHeap<Reverse<Step>>,
    /// How far back (and ahead) history matters to any tier, as the dispatcher reads it.
    horizon: std::time::Duration,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    days: u32,
    tiers: Vec<TierReport>,
    limits: Vec<Limits>,
    ignored_events: usize,
}

fn instant(ts: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(ts, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The contacts as an import leaves them: it upserts by id, so the last row for an id
/// wins (in the place of the id's first row). With each id's index among them.
fn last_row_per_id(contacts: &[Contact]) -> (Vec<&Contact>, HashMap<&ContactId, usize>) {
    let mut chosen: Vec<&Contact> = Vec::new();
    let mut by_id: HashMap<&ContactId, usize> = HashMap::new();
    for c in contacts {
        match by_id.get(&c.id) {
            Some(&i) => chosen[i] = c,
            None => {
                by_id.insert(&c.id, chosen.len());
                chosen.push(c);
            }
        }
    }
    (chosen, by_id)
}

/// The contacts (by index) whose birthday or customer-since date falls on each
/// month-day, as the store indexes them for the yearly occasions.
fn date_index(chosen: &[&Contact]) -> HashMap<(DateField, MonthDay), Vec<u32>> {
    let mut dates: HashMap<(DateField, MonthDay), Vec<u32>> = HashMap::new();
    for (i, c) in chosen.iter().enumerate() {
        if let Some(b) = c.birthday {
            dates
                .entry((DateField::Birthday, b.day))
                .or_default()
                .push(i as u32);
        }
        if let Some(d) = c.customer_since {
            let key = (DateField::CustomerSince, MonthDay::of(d));
            dates.entry(key).or_default().push(i as u32);
        }
    }
    dates
}

/// One person per contact, each with the truth of how they answer drawn from the
/// model; a tier only the contacts name joins `tier_names`. Every attribute the model
/// cannot read, of every contact, is an error.
fn people<'c>(
    cfg: &Config,
    opts: &SimOptions,
    chosen: &[&'c Contact],
    tier_names: &mut Vec<&'c str>,
    start: DateTime<Utc>,
    occasion_count: usize,
) -> Result<Vec<Person>, Vec<BadAttribute>> {
    let mut people = Vec::with_capacity(chosen.len());
    let mut bad = Vec::new();
    for c in chosen {
        let tier = match tier_names.iter().position(|t| *t == c.tier) {
            Some(t) => t,
            None => {
                tier_names.push(&c.tier);
                tier_names.len() - 1
            }
        };
        let truth = match Truth::draw(&opts.model, cfg, c, tier) {
            Ok(t) => t,
            Err(more) => {
                bad.extend(more);
                continue;
            }
        };
        people.push(Person {
            contact: Rc::new((*c).clone()),
            tier,
            last_interaction: start,
            ledger: Vec::new(),
            sends: Vec::new(),
            send_tiers: Vec::new(),
            mind: Mind::new(truth, &opts.model, c.id.as_str(), tier),
            quiet_until: vec![i64::MIN; occasion_count],
        });
    }
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(people)
}

impl<'a> Sim<'a> {
    pub(super) fn new(
        cfg: &'a Config,
        contacts: &'a [Contact],
        events: &'a [Event],
        opts: &SimOptions,
    ) -> Result<Self, Vec<BadAttribute>> {
        let start = instant(opts.start.timestamp());
        let end = start
            .checked_add_signed(Duration::days(i64::from(opts.days)))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let occasions: Vec<&Occasion> = cfg.rules.occasions.iter().filter(|o| o.enabled).collect();
        let names: Vec<&str> = occasions.iter().map(|o| o.name.as_str()).collect();
        let mut tier_names: Vec<&str> = cfg.rules.tiers.iter().map(|t| t.name.as_str()).collect();
        let (chosen, by_id) = last_row_per_id(contacts);
        let dates = date_index(&chosen);
        let people = people(cfg, opts, &chosen, &mut tier_names, start, occasions.len())?;
        let limits: Vec<Limits> = tier_names
            .iter()
            .map(|t| Limits::for_tier(&cfg.rules, t))
            .collect();
        let mut tiers: Vec<TierReport> = tier_names
            .iter()
            .zip(&limits)
            .map(|(t, l)| TierReport::new(t, l, &names, opts.learning))
            .collect();
        for p in &people {
            tiers[p.tier].contacts += 1;
        }
        let horizon = Limits::widest_horizon(&cfg.rules);
        let mut sim = Self {
            cfg,
            model: opts.model.clone(),
            learning: opts.learning,
            occasions,
            tier_names: tier_names.iter().map(|t| (*t).to_owned()).collect(),
            known: vec![learn::Known::default(); tier_names.len()],
            people,
            dates,
            check_ins: Vec::new(),
            events: Vec::new(),
            queue: BinaryHeap::new(),
            horizon,
            start,
            end,
            days: opts.days,
            tiers,
            limits,
            ignored_events: 0,
        };
        sim.schedule_planners();
        sim.add_events(events, &by_id);
        Ok(sim)
    }

    /// Events are replayed at their time; one older than the start arrives at the start.
    fn add_events(&mut self, events: &'a [Event], by_id: &HashMap<&ContactId, usize>) {
        for e in events {
            let at = e.at.max(self.start);
            match by_id.get(&e.contact_id) {
                Some(&c) if at < self.end => {
                    self.queue.push(Reverse(Step {
                        at: at.timestamp(),
                        kind: Kind::Event,
                        contact: c as u32,
                        priority: Reverse(0),
                        index: self.events.len() as u32,
                    }));
                    self.events.push((e, c as u32));
                }
                _ => self.ignored_events += 1,
            }
        }
    }

    pub(super) fn run(&mut self) {
        while let Some(Reverse(step)) = self.queue.pop() {
            if step.at >= self.end.timestamp() {
                break;
            }
            let now = instant(step.at);
            let index = step.index as usize;
            match step.kind {
                Kind::Event => self.on_event(index),
                Kind::Respond => self.on_answer(step.contact as usize, index, now),
                Kind::Settle => self.on_silence(step.contact as usize, index, now),
                Kind::Plan => self.on_tick(index, now),
                Kind::Dispatch => self.dispatch(step.contact as usize, index, now),
            }
        }
    }

    fn on_event(&mut self, i: usize) {
        let (event, c) = self.events[i];
        let c = c as usize;
        // Recorded when it arrives: at its time, or at the start for an older one.
        let now = event.at.max(self.start);
        self.tiers[self.people[c].mind.start_tier].events += 1;
        self.interacted(c, event.at);
        for k in 0..self.occasions.len() {
            let contact = Rc::clone(&self.people[c].contact);
            if let Some(t) =
                planner::for_event(&self.cfg.rules, self.occasions[k], &contact, event, now)
            {
                self.record(c, k, t, now);
            }
        }
    }

    /// A send, an event or an answer: the check-in clocks start again.
    fn interacted(&mut self, c: usize, at: DateTime<Utc>) {
        let p = &mut self.people[c];
        p.last_interaction = p.last_interaction.max(at);
        self.reschedule_check_ins(c);
    }

    /// When each check-in can next be due: the cadence after the last interaction (the
    /// learned one with learning on; none for a tier without one or once sunset).
    fn reschedule_check_ins(&mut self, c: usize) {
        let p = &self.people[c];
        let last = p.last_interaction.timestamp();
        for j in 0..self.check_ins.len() {
            let base = self.check_ins[j].every[self.people[c].tier];
            let at = base
                .and_then(|e| self.cadence(c, e))
                .map_or(i64::MAX, |e| last.saturating_add(e));
            self.check_ins[j].set(c, at);
        }
    }

    pub(super) fn report(mut self) -> SimReport {
        let months = f64::from(self.days) * 12.0 / 365.25;
        self.learned_at_end();
        for p in &self.people {
            let mut tiers: Vec<usize> = p.send_tiers.clone();
            tiers.sort_unstable();
            tiers.dedup();
            for t in tiers {
                let here: Vec<bool> = p.send_tiers.iter().map(|x| *x == t).collect();
                self.tiers[t].observe(&self.limits[t], &p.sends, &here);
            }
            let tier = &mut self.tiers[p.tier];
            for e in p
                .ledger
                .iter()
                .filter(|e| e.touch.status == TouchStatus::Planned)
            {
                tier.occasions[e.occasion].pending += 1;
            }
        }
        let mut responses = ResponseStats::default();
        let mut learned = self.learning.then(LearnedStats::default);
        for t in &mut self.tiers {
            let contacts = t.contacts as f64;
            for o in &mut t.occasions {
                if contacts > 0.0 && months > 0.0 {
                    o.per_contact_per_month = o.sent as f64 / contacts / months;
                }
            }
            t.responses.finish();
            responses.add(&t.responses);
            if let (Some(all), Some(l)) = (&mut learned, &mut t.learned) {
                l.finish();
                all.add(l);
            }
        }
        responses.finish();
        if let Some(l) = &mut learned {
            l.finish();
        }
        SimReport {
            start: self.start,
            end: self.end,
            days: self.days,
            contacts: self.people.len(),
            events: self.events.len(),
            ignored_events: self.ignored_events,
            seed: self.model.seed,
            learning: self.learning,
            responses,
            learned,
            tiers: self.tiers,
        }
    }

    #[cfg(test)]
    pub(super) fn touches(&self) -> impl Iterator<Item = &Touch> {
        self.people
            .iter()
            .flat_map(|p| p.ledger.iter().map(|e| &e.touch))
    }

    /// Each contact's id and learned state, in file order.
    #[cfg(test)]
    pub(super) fn states(
        &self,
    ) -> impl Iterator<Item = (&str, &crate::learning::RelationshipState)> {
        self.people
            .iter()
            .map(|p| (p.contact.id.as_str(), &p.mind.state))
    }
}
