//! The `rapport` command line, end to end: the real binary, run in a fresh temp working
//! directory (so the built-in default config is the base layer), with a temp database.
//! Input files live in `tests/fixtures/cli/` and are copied into the temp dir.

mod check;
#[path = "../support/cli_env.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_env;
mod config;
mod event;
mod import;
mod plan;
mod preview;
mod shared;
mod simulate;
mod storage;
