//! Learning tests: one file per concept, a simulated population (`population`) and
//! invariants over random signal sequences (`props`).

mod channel;
mod describe;
mod fatigue;
mod hour;
mod kinds;
mod population;
mod props;
mod tiers;
mod updates;

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{
    Effect, LearningConfig, RelationshipState, Response, ResponseKind, Signal, TouchRef, apply,
};

const UTC: Tz = chrono_tz::UTC;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// 2026-01-05T10:00:00Z: the origin of the day offsets below.
fn t0() -> DateTime<Utc> {
    utc("2026-01-05T10:00:00Z")
}

/// `t0` plus `n` days (fractions allowed).
fn day(n: f64) -> DateTime<Utc> {
    t0() + chrono::Duration::seconds((n * 86_400.0).round() as i64)
}

fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

fn sent(channel: &str, at: DateTime<Utc>) -> Signal {
    Signal::Sent {
        channel: channel.parse().unwrap(),
        at,
    }
}

fn ignored(channel: &str, at: DateTime<Utc>) -> Signal {
    Signal::Ignored {
        channel: channel.parse().unwrap(),
        at,
    }
}

/// A response on `channel` to the touch sent on it at `sent_at`.
fn answer(kind: ResponseKind, channel: &str, sent_at: DateTime<Utc>, at: DateTime<Utc>) -> Signal {
    Signal::Response(Response {
        kind,
        channel: channel.parse().unwrap(),
        at,
        touch: Some(TouchRef {
            channel: channel.parse().unwrap(),
            sent_at,
        }),
    })
}

/// A response not attributed to any touch.
fn loose(kind: ResponseKind, channel: &str, at: DateTime<Utc>) -> Signal {
    Signal::Response(Response {
        kind,
        channel: channel.parse().unwrap(),
        at,
        touch: None,
    })
}

/// A touch on `channel` at `at` answered `kind` an hour later.
fn touch_answered(kind: ResponseKind, channel: &str, at: DateTime<Utc>) -> [Signal; 2] {
    [
        sent(channel, at),
        answer(kind, channel, at, at + chrono::Duration::hours(1)),
    ]
}

/// A touch on `channel` at `at`, found ignored a response window later.
fn touch_ignored(channel: &str, at: DateTime<Utc>, cfg: &LearningConfig) -> [Signal; 2] {
    [sent(channel, at), ignored(channel, cfg.ignored_after(at))]
}

/// Applies `signals` in order, each judged at its own instant, following tier moves the
/// way the caller does (setting the contact's tier). Returns every effect.
fn feed(
    state: &mut RelationshipState,
    tier: &mut String,
    signals: impl IntoIterator<Item = Signal>,
    cfg: &LearningConfig,
    zone: Tz,
) -> Vec<Effect> {
    let mut all = Vec::new();
    for signal in signals {
        let (next, effects) = apply(state, &signal, tier, cfg, zone, signal.at());
        *state = next;
        for e in &effects {
            if let Effect::MoveTier { to, .. } = e {
                *tier = to.clone();
            }
        }
        all.extend(effects);
    }
    all
}

/// `feed` from a fresh acquaintance, in UTC, with the default config.
fn learn(signals: impl IntoIterator<Item = Signal>) -> (RelationshipState, Vec<Effect>) {
    let mut state = RelationshipState::default();
    let mut tier = "acquaintance".to_owned();
    let effects = feed(
        &mut state,
        &mut tier,
        signals,
        &LearningConfig::default(),
        UTC,
    );
    (state, effects)
}
