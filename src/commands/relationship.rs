//! The relationship commands: `event add` and `contacts show` (budget and timeline).

use chrono::{DateTime, Utc};
use rapport::domain::Channel;
use rapport::store::Ledger;
use rapport::store::{Caps, Contacts, Coordination};
use rapport::{
    config::{Config, Trigger, format_duration},
    domain::{Contact, ContactId, Touch},
    exit, ingest,
    policy::{self, Limits, Slot, throttle},
    store::{PolicyRecord, StoreError},
};

use super::{fmt_ts, open_store};

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
    rapport::with_store!(store, |store| {
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
        print_event_report(cfg, kind, &event, &report);
        Ok(0)
    })
}

/// What recording the event did: new or known, and the touches it planned.
fn print_event_report(
    cfg: &Config,
    kind: &str,
    event: &rapport::domain::Event,
    report: &ingest::EventReport,
) {
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
            .rules
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
}

/// How far back a contact's history is read, as the dispatcher reads it.
pub(super) fn max_horizon(cfg: &Config) -> chrono::Duration {
    policy::lookback(Limits::widest_horizon(&cfg.rules))
}

pub(super) async fn show(cfg: &Config, id: &str) -> anyhow::Result<i32> {
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    rapport::with_store!(store, |store| {
        let id = ContactId::parse(id).map_err(|e| anyhow::anyhow!("contact id: {e}"))?;
        let Some(c) = store.get_contact(&id).await? else {
            anyhow::bail!("no contact with id {id}");
        };
        let now = Utc::now();
        let learned = super::learned::learned(&store, cfg, &c, now).await?;
        print_profile(cfg, &c, &learned);
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
        print_timeline(&store, &id, learned.timeline).await?;
        store.close().await;
        Ok(0)
    })
}

/// Who the contact is: names, addresses with their consent, zone, dates, attributes.
fn print_profile(cfg: &Config, c: &Contact, learned: &super::learned::LearnedView) {
    let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    println!("contact        {}", c.id);
    println!(
        "name           {} {}",
        opt(c.first_name.clone()),
        opt(c.last_name.clone())
    );
    println!("tier           {}", c.tier);
    // A suppressed address says so here, and why under "relationship".
    let consent = |channel: Channel, given: bool, none: &str| {
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
        consent(Channel::Email, c.email_consent, "no consent")
    );
    println!(
        "phone          {}{}",
        opt(c.phone.as_ref().map(|p| p.as_str().to_owned())),
        consent(Channel::Sms, c.sms_consent, "no SMS consent")
    );
    println!(
        "timezone       {}",
        c.timezone.map_or_else(
            || format!("{} (default)", cfg.rules.defaults.timezone),
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
}

/// Events, touches and what was learned, oldest first.
async fn print_timeline<S: Contacts + Ledger>(
    store: &S,
    id: &ContactId,
    learned: Vec<(DateTime<Utc>, String)>,
) -> anyhow::Result<()> {
    let touches = store.touches_for_contact(id).await?;
    let events = store.events_for_contact(id).await?;
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
    let responses = learned.iter().filter(|l| l.1.starts_with("reply")).count();
    lines.extend(learned);
    lines.sort_by_key(|l| l.0);
    println!(
        "\ntimeline ({} event(s), {} touch(es), {responses} response(s)):",
        events.len(),
        touches.len()
    );
    for (at, line) in lines {
        println!("  {}  {line}", fmt_ts(at));
    }
    Ok(())
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

/// When the contact was last touched and interacted with, and when each check-in is
/// due next.
fn print_cadence(cfg: &Config, c: &Contact, record: &PolicyRecord, now: DateTime<Utc>) {
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
    for o in cfg.rules.occasions.iter().filter(|o| o.enabled) {
        if let (Some(every), Some(last)) = (
            cfg.rules.check_in_every(o, &c.tier),
            record.last_interaction,
        ) {
            let due = last + chrono::Duration::from_std(every).unwrap_or_default();
            println!(
                "next {:<9} due from {} (every {} without an interaction)",
                o.name,
                fmt_ts(due),
                format_duration(every)
            );
        }
    }
}

/// The tier's limits and how much of each is used at `now`.
fn print_budget(cfg: &Config, c: &Contact, record: &PolicyRecord, now: DateTime<Utc>) {
    print_cadence(cfg, c, record, now);
    let limits = Limits::for_tier(&cfg.rules, &c.tier);
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
    let tier = cfg.rules.tier(&c.tier);
    for channel in Channel::ALL
        .into_iter()
        .filter(|ch| cfg.rules.has_channel(*ch) && tier.is_none_or(|t| t.allows_channel(*ch)))
    {
        let next = throttle::earliest(&limits, &record.slots, channel, now);
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
