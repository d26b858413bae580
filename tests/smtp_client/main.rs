//! rapport's own SMTP client (`channels::smtp`) against the in-process test server over
//! real TCP, through the public API: a config loaded the way the app loads it, then
//! `channels::email_channel`. Every case runs with and without PIPELINING (RFC 2920).
//!
//! What is checked besides delivery: how failures are classified (4xx transient, 5xx
//! permanent, no answer before the body transient, no answer after it uncertain), that a
//! refused transaction leaves the connection usable (RSET) while a broken one is never
//! reused, and that no error reason carries the recipient or the server's text.

mod broken_connections;
mod delivery;
mod harness;
mod refusals;
#[path = "../support/mod.rs"]
mod support;
