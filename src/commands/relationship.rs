//! The relationship commands: `event add`, `contacts show` (budget and timeline) and
//! `plan --at` (what would go out, what is held and why).

use chrono::{DateTime, Utc};
use rapport::{
    config::{Config, Trigger, format_duration},
    domain::{Contact, ContactId, Touch, TouchId},
    exit, ingest, planner,
    policy::{self, History, Limits, Slot, Verdict, throttle},
    store::{PolicyRecord, Store, StoreError},
};

use super::{fmt_ts, open_store, parse_instant};

pub(super) async fn event_add(
    cfg: &Config,
    contact: &str,
    kind: &str,
    id: &str,
    at: Option<&str>,
    data: Option<&str>,
) -> anyhow::Result<i32> {
    let now = Utc::now();
    let data = match data
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("rapport: --data is not valid JSON: {e}");
            return Ok(exit::USAGE);
        }
    };
    let event = match ingest::parse_event(contact, kind, id, at, data, now) {
        Ok(e) => e,
        Err((field, message)) => {
            let flag = if field == "contact" { "contact" } else { field };
            eprintln!("rapport: --{flag}: {message}");
            return Ok(exit::USAGE);
        }
    };
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let report = match ingest::record_event(&store, cfg, &event, now).await {
        Ok(r) => r,
        Err(StoreError::UnknownContact(id)) => {
            eprintln!("rapport: no contact with id {id}; import it first");
            store.close().await;
            return Ok(exit::DATAERR);
        }
        Err(e) => return Err(e.into()),
    };
    store.close().await;
    if report.new {
        println!(
            "event {} ({kind}) recorded for {}",
            event.id, event.contact_id
        );
    } else {
        println!(
            "event {} was already recorded for {}; nothing changed",
            event.id, event.contact_id
        );
    }
    if report.touches.is_empty() {
        let triggered = cfg
            .occasions
            .iter()
            .any(|o| matches!(&o.trigger, Trigger::Event { kind: k, .. } if k == kind));
        if !triggered {
            println!(
                "no enabled occasion is triggered by {kind:?} events (it still counts as an interaction)"
            );
        }
    }
    for t in &report.touches {
        let state = if report.planned.contains(&t.id) {
            "planned"
        } else {
            "already planned"
        };
        match t.status {
            rapport::domain::TouchStatus::Planned => {
                println!("{}: {state}, to go out at {}", t.id, fmt_ts(t.scheduled_at))
            }
            _ => println!(
                "{}: {} ({})",
                t.id,
                t.status,
                t.reason.as_deref().unwrap_or("")
            ),
        }
    }
    Ok(0)
}

/// The policy's view of one contact at `now`, as the dispatcher builds it.
fn history_of(cfg: &Config, c: &Contact, record: PolicyRecord, now: DateTime<Utc>) -> History {
    History::new(
        record.slots,
        &record.touches,
        planner::upcoming(cfg, c, now, Limits::widest_horizon(cfg)),
        record.last_interaction,
    )
}

/// How far back a contact's history is read, as the dispatcher reads it.
fn max_horizon(cfg: &Config) -> chrono::Duration {
    policy::lookback(Limits::widest_horizon(cfg))
}

pub(super) async fn show(cfg: &Config, id: &str) -> anyhow::Result<i32> {
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let id = ContactId::parse(id).map_err(|e| anyhow::anyhow!("contact id: {e}"))?;
    let Some(c) = store.get_contact(&id).await? else {
        anyhow::bail!("no contact with id {id}");
    };
    let now = Utc::now();
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("contact        {}", c.id);
    println!(
        "name           {} {}",
        opt(c.first_name.clone()),
        opt(c.last_name.clone())
    );
    println!("tier           {}", c.tier);
    let learned = super::learned::learned(&store, cfg, &c, now).await?;
    // A suppressed address says so here, and why under "relationship".
    let consent = |channel: &str, given: bool, none: &str| {
        if learned.suppressed.iter().any(|(ch, _)| *ch == channel) {
            " (suppressed)".to_owned()
        } else if given {
            String::new()
        } else {
            format!(" ({none})")
        }
    };
    println!(
        "email          {}{}",
        opt(c.email.as_ref().map(|e| e.as_str().to_owned())),
        consent("email", c.email_consent, "no consent")
    );
    println!(
        "phone          {}{}",
        opt(c.phone.as_ref().map(|p| p.as_str().to_owned())),
        consent("sms", c.sms_consent, "no SMS consent")
    );
    println!(
        "timezone       {}",
        c.timezone.map_or_else(
            || format!("{} (default)", cfg.defaults.timezone),
            |t| t.name().to_owned()
        )
    );
    println!("locale         {}", opt(c.locale.clone()));
    println!("birthday       {}", opt(c.birthday.map(|b| b.to_field())));
    println!(
        "customer since {}",
        opt(c.customer_since.map(|d| d.to_string()))
    );
    if !c.attributes.is_empty() {
        println!(
            "attributes     {}",
            serde_json::Value::Object(c.attributes.clone())
        );
    }
    let record = store
        .policy_records(std::slice::from_ref(&id), now - max_horizon(cfg), &[])
        .await?
        .remove(&id)
        .unwrap_or_default();
    print_budget(cfg, &c, &record, now);
    println!("\nrelationship:");
    for (channel, why) in &learned.suppressed {
        println!("  {channel} suppressed: {why}");
    }
    for line in &learned.summary {
        println!("  {line}");
    }

    let touches = store.touches_for_contact(&id).await?;
    let events = store.events_for_contact(&id).await?;
    let mut lines: Vec<(DateTime<Utc>, String)> = Vec::new();
    for e in &events {
        let data = if e.data.is_empty() {
            String::new()
        } else {
            format!(" {}", serde_json::Value::Object(e.data.clone()))
        };
        lines.push((e.at, format!("event  {} {}{data}", e.kind, e.id)));
    }
    for t in &touches {
        let when = t.sent_at.unwrap_or(if t.status.is_final() {
            t.updated_at
        } else {
            t.next_attempt_at
        });
        lines.push((when, touch_line(t)));
    }
    let responses = learned
        .timeline
        .iter()
        .filter(|l| l.1.starts_with("reply"))
        .count();
    lines.extend(learned.timeline);
    lines.sort_by_key(|l| l.0);
    println!(
        "\ntimeline ({} event(s), {} touch(es), {responses} response(s)):",
        events.len(),
        touches.len()
    );
    for (at, line) in lines {
        println!("  {}  {line}", fmt_ts(at));
    }
    store.close().await;
    Ok(0)
}

fn touch_line(t: &Touch) -> String {
    format!(
        "touch  {}  {:<9} {} attempts={} planned={} expires={}{}",
        t.id,
        t.status,
        t.channel,
        t.attempts,
        fmt_ts(t.scheduled_at),
        fmt_ts(t.expires_at),
        t.reason
            .as_ref()
            .map(|r| format!(" reason=\"{r}\""))
            .unwrap_or_default(),
    )
}

/// The tier's limits and how much of each is used at `now`.
fn print_budget(cfg: &Config, c: &Contact, record: &PolicyRecord, now: DateTime<Utc>) {
    let limits = Limits::for_tier(cfg, &c.tier);
    println!(
        "last touched   {}",
        record
            .slots
            .iter()
            .map(|s| s.at)
            .filter(|at| *at <= now)
            .max()
            .map_or_else(|| "never".into(), fmt_ts)
    );
    if let Some(last) = record.last_interaction {
        println!("last interaction {}", fmt_ts(last));
    }
    for o in cfg.occasions.iter().filter(|o| o.enabled) {
        if let (Some(every), Some(last)) = (cfg.check_in_every(o, &c.tier), record.last_interaction)
        {
            let due = last + chrono::Duration::from_std(every).unwrap_or_default();
            println!(
                "next {:<9} due from {} (every {} without an interaction)",
                o.name,
                fmt_ts(due),
                format_duration(every)
            );
        }
    }
    println!("\nbudget (tier {}, at {}):", c.tier, fmt_ts(now));
    if limits.is_unlimited() {
        println!("  no caps and no minimum gap");
        return;
    }
    let past: Vec<&Slot> = record.slots.iter().filter(|s| s.at <= now).collect();
    for (scope, cap) in &limits.caps {
        let per = chrono::Duration::from_std(cap.per).unwrap_or_default();
        let used = past
            .iter()
            .filter(|s| s.at > now - per)
            .filter(|s| match scope {
                throttle::Scope::Channel(ch) => s.channel == *ch,
                _ => true,
            })
            .count();
        let left = (cap.count as usize).saturating_sub(used);
        println!(
            "  {:<34} {used} used, {left} left",
            format!("{scope} {cap}")
        );
    }
    if !limits.min_gap.is_zero() {
        let gap = chrono::Duration::from_std(limits.min_gap).unwrap_or_default();
        match past.iter().map(|s| s.at).max() {
            Some(last) if last + gap > now => println!(
                "  {:<34} next touch from {}",
                format!("min_gap {}", format_duration(limits.min_gap)),
                fmt_ts(last + gap)
            ),
            _ => println!(
                "  {:<34} clear",
                format!("min_gap {}", format_duration(limits.min_gap))
            ),
        }
    }
    // The channels this contact could be reached on: allowed by the tier, configured.
    let tier = cfg.tier(&c.tier);
    for channel in rapport::config::CHANNELS
        .iter()
        .filter(|ch| cfg.has_channel(ch) && tier.is_none_or(|t| t.allows_channel(ch)))
    {
        let channel = channel.to_string();
        let next = throttle::earliest(&limits, &record.slots, &channel, now);
        println!(
            "  next place on {channel}: {}",
            if next <= now {
                "now".into()
            } else {
                fmt_ts(next)
            }
        );
    }
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
