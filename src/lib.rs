//! rapport: a daemon that keeps customer relationships warm.
//!
//! # Layout
//! - [`app`]: `App::build(Config)` and `App::run(role, ...)`, the one place that wires
//!   the store, queue, planner, dispatcher, channels and HTTP API together.
//! - [`api`]: the HTTP API (axum): bearer auth, JSON errors naming the field, contacts,
//!   events, health and readiness, the OpenAPI document.
//! - [`shutdown`]: signals -> one cancellation token; drain with a deadline.
//! - [`cli`]: the `rapport` subcommands.
//! - [`check`]: what `rapport check` reports and `rapport run` refuses to start on:
//!   every template rendered for sample contacts of every tier, the DKIM key read.
//! - [`config`]: TOML layers -> validated [`config::Config`], every problem at once.
//! - [`custody`]: the store's identity; a store that comes back empty or different is
//!   held (nothing planned or sent) until an operator adopts it.
//! - [`domain`]: contacts, touches, time; newtypes parsed at the edge.
//! - [`planner`]: which touches are due at an instant (pure), and the cron loop.
//! - [`policy`]: the relationship policy (caps, gaps, priority), channel choice, retry
//!   timing; pure.
//! - [`learning`]: what each relationship learns from responses (engagement, channel,
//!   hour, fatigue, tier moves); pure, not yet wired to responses.
//! - [`ratelimit`]: the GCRA behind provider rate limits.
//! - [`dispatch`]: claim -> consent -> render -> send -> record, with group commit.
//! - [`queue`]: apalis jobs (touch ids only, versioned) and worker wiring.
//! - [`channels`]: email (built with lettre, DKIM, List-Unsubscribe) over pipelined SMTP or
//!   into an outbox folder; SMS (Twilio-compatible API or outbox); Standard Webhooks; the
//!   guarded HTTP client; failure classes.
//! - [`render`]: Handlebars in strict mode, tier variants, partials, front matter.
//! - [`ingest`]: contact import from CSV or JSONL.
//! - [`simulate`]: the planner and policy over a population with a simulated clock,
//!   nothing sent: what a config does to a year of contacts.
//! - [`store`]: the `Store` contract and its backends, SQLite and Redis (Lua scripts).
//! - [`telemetry`]: logging with typed events; no addresses, bodies or secrets.

pub mod api;
pub mod app;
pub mod channels;
pub mod check;
pub mod cli;
pub mod config;
pub mod custody;
pub mod dispatch;
pub mod domain;
pub mod feedback;
pub mod ingest;
pub mod learning;
pub mod planner;
pub mod policy;
pub mod queue;
pub mod ratelimit;
pub mod render;
pub mod shutdown;
pub mod simulate;
pub mod store;
pub mod telemetry;

/// Exit codes (sysexits.h), so supervisors and scripts can tell failures apart.
pub mod exit {
    /// The command line was wrong (a malformed flag value).
    pub const USAGE: i32 = 64;
    /// Bad input data (rejected import rows, an event for an unknown contact).
    pub const DATAERR: i32 = 65;
    /// A dependency (store, mail server) is unreachable at start.
    pub const UNAVAILABLE: i32 = 69;
    /// Internal error.
    pub const SOFTWARE: i32 = 70;
    /// The configuration is invalid.
    pub const CONFIG: i32 = 78;
}
