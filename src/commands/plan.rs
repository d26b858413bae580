//! `rapport plan --at`: what the planners would record at an instant and what the
//! dispatcher would do with each touch (go out, be held, skipped), writing nothing.

use chrono::{DateTime, Utc};
use rapport::{
    config::{Config, Trigger},
    domain::{Contact, ContactId, Touch, TouchId},
    exit, planner,
    policy::{self, History, Limits, Verdict},
    store::{PolicyRecord, Store},
};

use super::{fmt_ts, open_store, parse_instant, relationship::max_horizon};

/// The policy's view of one contact at `now`, as the dispatcher builds it.
fn history_of(cfg: &Config, c: &Contact, record: PolicyRecord, now: DateTime<Utc>) -> History {
    History::new(
        record.slots,
        &record.touches,
        planner::upcoming(cfg, c, now, Limits::widest_horizon(cfg)),
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
    // What the planners would record at `at`...
    let days = planner::candidate_days(at);
    let mut wanted: Vec<rapport::domain::NewTouch> = Vec::new();
    for occ in cfg.occasions.iter().filter(|o| o.enabled) {
        match &occ.trigger {
            Trigger::Date(field) => {
                let contacts = store.contacts_on(*field, &days).await?;
                wanted.extend(planner::plan(cfg, occ, &contacts, at));
            }
            Trigger::Inactivity { .. } => {
                let Some(before) = planner::runner::idle_before(cfg, occ, at) else {
                    continue;
                };
                let mut after = None;
                loop {
                    let page = store.idle_contacts(before, after.as_ref(), 5000).await?;
                    let Some((last, seen)) = page.last() else {
                        break;
                    };
                    after = Some((*seen, last.id.clone()));
                    wanted.extend(
                        page.iter()
                            .filter_map(|(c, last)| planner::check_in(cfg, occ, c, *last, at)),
                    );
                }
            }
            Trigger::Event { .. } => {}
        }
    }
    // ... plus what the ledger already holds that is due by then.
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
    // Decide each touch as the dispatcher would at its time, contact by contact,
    // higher priority first, each send taking its place.
    let mut contact_ids: Vec<ContactId> = rows.iter().map(|(t, _)| t.contact_id.clone()).collect();
    contact_ids.sort();
    contact_ids.dedup();
    let contacts = store.get_contacts(&contact_ids).await?;
    let records = store
        .policy_records(&contact_ids, at - max_horizon(cfg), &[])
        .await?;
    rows.sort_by(|(a, _), (b, _)| policy::decision_order(a, b));
    let (mut sends, mut held, mut settled) = (0, 0, 0);
    let mut out: Vec<(String, String)> = Vec::new();
    let mut current: Option<(ContactId, History)> = None;
    for (t, origin) in &rows {
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
            match h.decide(cfg, c, t, when) {
                Verdict::Send => {
                    sends += 1;
                    format!("would go out at {}", fmt_ts(when))
                }
                v => {
                    held += 1;
                    v.reason().unwrap_or_default()
                }
            }
        };
        out.push((
            t.occasion.clone(),
            format!("  {}  [{origin}]  {line}", t.id),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    let mut last = String::new();
    for (occasion, line) in out {
        if occasion != last {
            println!("{occasion}:");
            last = occasion;
        }
        println!("{line}");
    }
    println!(
        "at {}: {sends} would go out, {held} held or skipped, {settled} already settled; nothing was written",
        fmt_ts(at)
    );
    store.close().await;
    Ok(0)
}
