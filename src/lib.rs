//! rapport: a daemon that keeps customer relationships warm.
//!
//! # Layout
//! - [`app`]: `App::build(Config)` and `App::run_until(shutdown)`, the one place that wires
//!   the store, queue, planner, dispatcher and channels together.
//! - [`shutdown`]: signals -> one cancellation token; drain with a deadline.
//! - [`cli`]: the `rapport` subcommands.
//! - [`config`]: TOML layers -> validated [`config::Config`], every problem at once.
//! - [`domain`]: contacts, touches, time; newtypes parsed at the edge.
//! - [`planner`]: which touches are due at an instant (pure), and the cron loop.
//! - [`policy`]: pure decisions about timing (retry backoff, windows).
//! - [`dispatch`]: claim -> consent -> render -> send -> record, with group commit.
//! - [`queue`]: apalis jobs (touch ids only, versioned) and worker wiring.
//! - [`channels`]: email (built with lettre) over pipelined SMTP or into an outbox folder;
//!   failure classes.
//! - [`render`]: Handlebars in strict mode, tier variants, partials, front matter.
//! - [`ingest`]: contact import from CSV or JSONL.
//! - [`store`]: the `Store` contract and its backends, SQLite and Redis (Lua scripts).
//! - [`telemetry`]: logging with typed events; no addresses, bodies or secrets.

pub mod app;
pub mod channels;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod ingest;
pub mod planner;
pub mod policy;
pub mod queue;
pub mod render;
pub mod shutdown;
pub mod store;
pub mod telemetry;

/// Exit codes (sysexits.h), so supervisors and scripts can tell failures apart.
pub mod exit {
    /// Bad input data (rejected import rows).
    pub const DATAERR: i32 = 65;
    /// A dependency (store, mail server) is unreachable at start.
    pub const UNAVAILABLE: i32 = 69;
    /// Internal error.
    pub const SOFTWARE: i32 = 70;
    /// The configuration is invalid.
    pub const CONFIG: i32 = 78;
}
