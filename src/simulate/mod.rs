//! The policy simulator (`rapport simulate`): the planner and the policy run over a
//! population with a simulated clock, nothing sent, so ops can see what a config does
//! to a year of contacts before they deploy it.
//!
//! It drives the daemon's own pure pieces:
//! [`planner::plan_learned`](crate::planner::plan_learned),
//! [`planner::check_in_learned`](crate::planner::check_in_learned) and
//! [`planner::for_event`](crate::planner::for_event) plan touches, recorded
//! insert-if-absent by id as the ledger does, and
//! [`policy::evaluate`](crate::policy::evaluate) decides each touch when it falls due,
//! with the history the store would hold. What it models of the daemon:
//! - each enabled occasion's planner runs at the start and then on its cron `schedule`;
//! - a contact's last interaction starts at the start (the daemon counts from when it
//!   first sees a contact) and moves with every send, event and engaged answer;
//! - an event is recorded at its time (or at the start, if older) and plans what it
//!   triggers then;
//! - the dispatcher takes a touch at its next attempt time, to the second (its 500 ms
//!   poll is left out); within a contact, higher priority first; a hold comes back at
//!   its `until`; a channel that cannot carry it moves it to the next, as the
//!   dispatcher's precheck;
//! - every contact answers (or not) as a [`ResponseModel`] drawn from a seed says, and
//!   the learner hears of it as `feedback` tells it: the send with its outcome, the
//!   answer when it comes, `ignored` when the response window closes. Consent and
//!   suppression always act; with learning on the tier moves, and the planner's own
//!   learned planning ([`planner::plan_learned`](crate::planner::plan_learned),
//!   [`planner::check_in_learned`](crate::planner::check_in_learned)) picks channel,
//!   hour and check-in cadence from the state (see `engine/learn.rs`).
//!
//! Left out: delivery failures and retries, bounces, answers not to a touch.

mod engine;
mod model;
mod report;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

pub use model::{BadAttribute, DEFAULT_SEED, ResponseModel};
pub use report::{
    CapCheck, Comparison, GapCheck, LearnedStats, Match, OccasionReport, ResponseStats, SimReport,
    TierReport,
};

use crate::{
    config::Config,
    domain::{Contact, Event},
};

#[derive(Debug, Clone, PartialEq)]
pub struct SimOptions {
    pub start: DateTime<Utc>,
    pub days: u32,
    /// How the contacts answer (and the seed their preferences are drawn from).
    pub model: ResponseModel,
    /// Whether learning steers (`learning.enabled` unless the command line says).
    pub learning: bool,
}

/// Runs `cfg` over `contacts` (a later contact with the same id replaces an earlier one,
/// as an import does) and `events` for `opts.days` from `opts.start`. Fails only on
/// `sim_*` attributes that do not say what they should, naming every one.
pub fn run(
    cfg: &Config,
    contacts: &[Contact],
    events: &[Event],
    opts: &SimOptions,
) -> Result<SimReport, Vec<BadAttribute>> {
    let cfg = effective(cfg, opts);
    let mut sim = engine::Sim::new(&cfg, contacts, events, opts)?;
    sim.run();
    Ok(sim.report())
}

/// `cfg` with learning on or off as `opts` say: the planner plans with what was learned
/// only when the config has learning on.
fn effective(cfg: &Config, opts: &SimOptions) -> Config {
    let mut cfg = cfg.clone();
    cfg.learning.enabled = opts.learning;
    cfg
}

/// The same population run with learning off, then on.
pub fn compare(
    cfg: &Config,
    contacts: &[Contact],
    events: &[Event],
    opts: &SimOptions,
) -> Result<Comparison, Vec<BadAttribute>> {
    let with = |learning| SimOptions {
        learning,
        ..opts.clone()
    };
    Ok(Comparison {
        seed: opts.model.seed,
        off: run(cfg, contacts, events, &with(false))?,
        on: run(cfg, contacts, events, &with(true))?,
    })
}
