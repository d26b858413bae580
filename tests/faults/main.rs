//! The fault suite: the real `rapport` binary as separate processes, against real Redis
//! servers and real SMTP and HTTP servers over TCP, broken from outside as a production
//! service is (a replica paused past its lease, SIGTERM mid-send, kill -9, Redis
//! restarted with and without persistence, poison queue rows, bouncing and throttling
//! providers, Redis stopped under the workers), counting deliveries per recipient and
//! Message-ID and asserting exact numbers: nothing lost, nothing sent twice but the
//! in-flight repeats the README allows. And personal data where it belongs: never in a
//! trace log, and gone from the SQLite files once a contact is erased.

mod bounces;
mod crash;
mod drain;
mod pause;
mod poison;
mod privacy;
mod retry_after;
mod rig;
mod store_loss;
#[path = "../support/mod.rs"]
mod support;
