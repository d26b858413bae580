//! The policy simulator (`rapport simulate`): the planner and the policy run over a
//! population with a simulated clock, nothing sent, so ops can see what a config does
//! to a year of contacts before they deploy it.
//!
//! It drives the daemon's own pure pieces: [`planner::due`](crate::planner::due),
//! [`planner::check_in`](crate::planner::check_in) and
//! [`planner::for_event`](crate::planner::for_event) plan touches, recorded
//! insert-if-absent by id as the ledger does, and
//! [`policy::evaluate`](crate::policy::evaluate) decides each touch when it falls due,
//! with the history the store would hold. What it models of the daemon:
//! - each enabled occasion's planner runs at the start and then on its cron `schedule`;
//! - a contact's last interaction starts at the start (the daemon counts from when it
//!   first sees a contact) and moves with every send and event;
//! - an event is recorded at its time (or at the start, if older) and plans what it
//!   triggers then;
//! - the dispatcher takes a touch at its next attempt time, to the second (its 500 ms
//!   poll is left out); within a contact, higher priority first; a hold comes back at
//!   its `until`; no consent or no address suppresses, as the dispatcher's precheck.
//!
//! Left out: delivery failures and retries, responses (and so learning), tier moves.

mod engine;
mod report;

#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};

pub use report::{CapCheck, GapCheck, OccasionReport, SimReport, TierReport};

use crate::{
    config::Config,
    domain::{Contact, Event},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SimOptions {
    pub start: DateTime<Utc>,
    pub days: u32,
}

/// Runs `cfg` over `contacts` (a later contact with the same id replaces an earlier one,
/// as an import does) and `events` for `opts.days` from `opts.start`.
pub fn run(cfg: &Config, contacts: &[Contact], events: &[Event], opts: &SimOptions) -> SimReport {
    let mut sim = engine::Sim::new(cfg, contacts, events, opts);
    sim.run();
    sim.report()
}
