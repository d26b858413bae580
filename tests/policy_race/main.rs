//! The relationship policy under concurrency: caps hold exactly, and priority still
//! decides, when many dispatchers (in one process, or replica processes on one Redis)
//! race for the same contacts' places.
//!
//! In-process: 1,000 contacts with five due touches each (three birthdays of equal
//! priority, a thank-you and a check-in), a tier allowing two touches a week, and eight
//! dispatchers handed the same ids in shuffled batches, each id to two or three of them.
//! Replicas: three `rapport run` processes on one Redis and a real SMTP server, with a
//! tier cap of one a week.

mod in_process;
mod replicas;
#[path = "../support/mod.rs"]
mod support;
