//! `rapport plan --at`: what the planners would record at an instant and what the
//! dispatcher would do with each touch (go out, perhaps on another channel, be held,
//! skipped or suppressed), writing nothing.

use rapport::store::{Caps, Contacts, Coordination};
use rapport::store::{Ledger, Relationships};

use chrono::{DateTime, Utc};
use rapport::{
    config::{Config, Rules},
    domain::{Contact, ContactId, Touch, TouchId},
    exit, planner,
    policy::{self, History, Limits, Settled, Verdict},
    store::PolicyRecord,
};

use super::{fmt_ts, open_store, parse_instant, relationship::max_horizon};

/// The policy's view of one contact at `now`, as the dispatcher builds it.
fn history_of(cfg: &Config, c: &Contact, record: PolicyRecord, now: DateTime<Utc>) -> History {
    History::new(
        record.slots,
        &record.touches,
        planner::upcoming(&cfg.rules, c, now, Limits::widest_horizon(&cfg.rules)),
        record.last_interaction,
    )
}

pub(super) async fn plan(cfg: &Config, at: &str) -> anyhow::Result<i32> {
    let at = match parse_instant("--at", at) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rapport: {e}");
            return Ok(exit::USAGE);
        }
    };
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    rapport::with_store!(store, |store| {
        let mut rows = rows_at(&store, cfg, at).await?;
        // Decide each touch as the dispatcher would at its time, contact by contact,
        // higher priority first, each send taking its place.
        let mut contact_ids: Vec<ContactId> =
            rows.iter().map(|(t, _)| t.contact_id.clone()).collect();
        contact_ids.sort();
        contact_ids.dedup();
        let contacts = store.get_contacts(&contact_ids).await?;
        let records = store
            .policy_records(&contact_ids, at - max_horizon(cfg), &[])
            .await?;
        rows.sort_by(|(a, _), (b, _)| policy::decision_order(a, b));
        let (out, (sends, held, settled)) = decide_rows(cfg, &contacts, &records, &rows, at);
        print_by_occasion(out);
        println!(
            "at {}: {sends} would go out, {held} held or skipped, {settled} already settled; nothing was written",
            fmt_ts(at)
        );
        if let Some(why) = rapport::custody::identity(&store).await?.lost {
            println!(
                "note: the store is held ({why}): the daemons plan and send nothing until `rapport store adopt`"
            );
        }
        store.close().await;
        Ok(0)
    })
}

/// What the planners would record at `at`, by the daemon's own planning (learned hour
/// and channel, an adoption of the store), plus what the ledger already holds that is
/// due by then; each with where it comes from.
async fn rows_at<S: Contacts + Ledger + Relationships + Coordination>(
    store: &S,
    cfg: &Config,
    at: DateTime<Utc>,
) -> anyhow::Result<Vec<(Touch, &'static str)>> {
    let mut wanted: Vec<rapport::domain::NewTouch> = Vec::new();
    for occ in cfg.rules.occasions.iter().filter(|o| o.enabled) {
        wanted.extend(planner::runner::would_plan(store, cfg, occ, at).await?);
    }
    let ids: Vec<TouchId> = wanted.iter().map(|t| t.id.clone()).collect();
    let mut known: std::collections::HashMap<TouchId, Touch> = store
        .get_touches(&ids)
        .await?
        .into_iter()
        .map(|t| (t.id.clone(), t))
        .collect();
    for t in store.due_touches(at, 100_000).await? {
        known.entry(t.id.clone()).or_insert(t);
    }
    let mut rows: Vec<(Touch, &'static str)> = Vec::new();
    for w in &wanted {
        match known.remove(&w.id) {
            Some(t) => rows.push((t, "in ledger")),
            None => rows.push((w.clone().recorded(at), "new")),
        }
    }
    rows.extend(known.into_values().map(|t| (t, "in ledger")));
    Ok(rows)
}

/// Each row's line, as `(occasion, line)`, and how many would go out, be held or
/// skipped, or are settled already. `rows` are in decision order.
fn decide_rows(
    cfg: &Config,
    contacts: &std::collections::HashMap<ContactId, rapport::domain::Contact>,
    records: &std::collections::HashMap<ContactId, rapport::store::PolicyRecord>,
    rows: &[(Touch, &'static str)],
    at: DateTime<Utc>,
) -> (Vec<(String, String)>, (u32, u32, u32)) {
    let (mut sends, mut held, mut settled) = (0, 0, 0);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(ContactId, History)> = None;
    for (t, origin) in rows {
        let Some(c) = contacts.get(&t.contact_id) else {
            continue;
        };
        if t.status == rapport::domain::TouchStatus::Planned
            && current.as_ref().is_none_or(|(id, _)| *id != c.id)
        {
            let record = records.get(&c.id).cloned().unwrap_or_default();
            current = Some((c.id.clone(), history_of(cfg, c, record, at)));
        }
        let line = if t.status != rapport::domain::TouchStatus::Planned {
            settled += 1;
            format!("{} ({})", t.status, t.reason.as_deref().unwrap_or("-"))
        } else {
            let when = t.next_attempt_at.max(at);
            let (_, h) = current.as_mut().expect("set above");
            let (goes, line) = dispatch(&cfg.rules, c, t, h, when);
            if goes {
                sends += 1;
            } else {
                held += 1;
            }
            line
        };
        out.push((
            t.occasion.clone(),
            format!("  {}  [{origin}]  {line}", t.id),
        ));
    }
    (out, (sends, held, settled))
}

fn print_by_occasion(mut out: Vec<(String, String)>) {
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut last = String::new();
    for (occasion, line) in out {
        if occasion != last {
            println!("{occasion}:");
            last = occasion;
        }
        println!("{line}");
    }
}

/// What the dispatcher would do with the planned touch `t` at `when`: its admission
/// ([`policy::admit_through`]: the touch may move to another channel or be suppressed,
/// then the policy decides). `true` when it would go out.
fn dispatch(
    rules: &Rules,
    c: &Contact,
    t: &Touch,
    h: &mut History,
    when: DateTime<Utc>,
) -> (bool, String) {
    let (t, moves, verdict) = policy::admit_through(rules, Some(c), t, h, when);
    let verdict = match verdict {
        Settled::Decided(v) => v,
        Settled::Suppressed { reason } => return (false, format!("suppressed: {reason}")),
    };
    let line = match (&verdict, moves.last()) {
        (Verdict::Send, None) => {
            format!("would go out by {} at {}", t.channel, fmt_ts(when))
        }
        (Verdict::Send, Some(why)) => {
            format!("would go out by {} at {} ({why})", t.channel, fmt_ts(when))
        }
        (v, None) => v.reason().unwrap_or_default(),
        (v, Some(why)) => format!("{} ({why})", v.reason().unwrap_or_default()),
    };
    (verdict == Verdict::Send, line)
}
