//! rapport: a daemon that keeps customer relationships warm.
//!
//! # Layout
//! `ARCHITECTURE.md` in the repository follows one touch through
//! these modules and maps the storage roles.
//!
//! The pure core (time passed in, no I/O):
//! - [`domain`]: contacts, touches, events, channels, time and the send window, outcomes;
//!   newtypes parsed at the edge.
//! - [`planner`]: which touches are due at an instant, learned hour and channel
//!   included; [`planner::runner`] is the tick and the dry run (`rapport plan`).
//! - [`policy`]: [`policy::admit`] (the admission of a due touch, shared by the
//!   dispatcher, `rapport plan` and the simulator), reach (consent, addresses), caps,
//!   gaps and priority, retry timing; it reads [`config::Rules`].
//! - [`learning`]: what each relationship learns from responses and silence
//!   (engagement, channel, hour, fatigue, tier moves), and what a tier teaches a new
//!   contact (the channel prior, the tier's answer hour).
//!
//! The touch path:
//! - [`queue`]: the [`queue::Queue`] seam (pump, apalis workers); jobs carry touch ids.
//! - [`dispatch`]: claim (lease, gate, drain) -> admit (policy, reservations) -> deliver
//!   (render, pace, send) -> settle -> record, with group commit.
//! - [`channels`]: email (lettre, DKIM, List-Unsubscribe) over pipelined SMTP or into an
//!   outbox folder; SMS (Twilio-compatible API or outbox); Standard Webhooks; the
//!   guarded HTTP client; failure classes.
//! - [`render`]: Handlebars in strict mode, tier variants, partials, front matter.
//! - [`ratelimit`]: the GCRA behind provider rate limits.
//! - [`feedback`]: responses, bounces and silence through the learner into the store.
//! - [`custody`]: the store's identity; a store that comes back empty or older is held
//!   (nothing planned or sent) until an operator adopts it.
//!
//! Storage and edges:
//! - [`store`]: six role traits ([`store::Contacts`], [`store::Ledger`],
//!   [`store::Caps`], [`store::Relationships`], [`store::Coordination`],
//!   [`store::RequestKeys`]) summed as [`store::Store`], each implemented in a file of the
//!   same name by the SQLite and the Redis backend; [`with_store!`] picks the backend once.
//! - [`app`]: `App<S>`: builds and runs the API, planners, reconciler and workers.
//! - [`api`]: the HTTP API (axum): bearer auth, idempotency keys, JSON errors naming the
//!   field, the OpenAPI document checked against the router.
//! - [`config`]: TOML layers -> validated [`config::Config`], every problem at once.
//! - [`ingest`]: contact import from CSV or JSONL, events.
//! - [`check`]: what `rapport check` reports and `rapport run` refuses to start on.
//! - [`simulate`]: the planner and policy over a population with a simulated clock.
//! - [`shutdown`]: signals -> one cancellation token; drain with a deadline.
//! - [`telemetry`]: logging with typed events; no addresses, bodies or secrets.
//! - [`cli`]: the `rapport` subcommands (run by `src/commands/`).

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
