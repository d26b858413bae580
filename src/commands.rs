//! What each subcommand does. Returns the process exit code.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use rapport::{
    app::App,
    channels::{OutboundEmail, build_message},
    cli::{Cli, Command, ContactsCommand, EventCommand},
    config::{Config, Trigger, format_duration},
    domain::{Contact, ContactId, SystemClock, Touch, TouchId},
    exit, ingest, planner,
    policy::{self, History, Limits, Slot, Verdict, throttle},
    render::{self, Renderer},
    store::{AnyStore, PolicyRecord, Store, StoreError},
};
use tokio_util::sync::CancellationToken;

pub(crate) async fn run(cli: Cli) -> i32 {
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprint!("rapport: {e}");
            return exit::CONFIG;
        }
    };
    let result = match cli.command {
        Command::Run => return run_daemon(cfg).await,
        Command::Check => return check(&cfg),
        Command::Import { file } => import(&cfg, &file).await,
        Command::Preview {
            occasion,
            contact,
            channel,
        } => preview(&cfg, &occasion, &contact, &channel).await,
        Command::Contacts {
            command: ContactsCommand::Show { id },
        } => show(&cfg, &id).await,
        Command::Plan { at } => plan(&cfg, &at).await,
        Command::Event {
            command:
                EventCommand::Add {
                    contact,
                    kind,
                    id,
                    at,
                    data,
                },
        } => event_add(&cfg, &contact, &kind, &id, at.as_deref(), data.as_deref()).await,
        Command::Simulate {
            contacts,
            days,
            start,
            events,
            json,
        } => {
            simulate(
                &cfg,
                &contacts,
                days,
                start.as_deref(),
                events.as_deref(),
                json,
            )
            .await
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rapport: {e:#}");
            1
        }
    }
}

async fn open_store(cfg: &Config) -> Result<AnyStore, i32> {
    AnyStore::open(&cfg.storage).await.map_err(|e| {
        eprintln!("rapport: {e}");
        exit::UNAVAILABLE
    })
}

async fn run_daemon(cfg: Config) -> i32 {
    let app = match App::build(cfg, Arc::new(SystemClock)).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("rapport: {e}");
            return e.exit_code();
        }
    };
    let token = CancellationToken::new();
    if let Err(e) = rapport::shutdown::install(token.clone()) {
        eprintln!("rapport: cannot install signal handlers: {e}");
        return exit::SOFTWARE;
    }
    match app.run_until(token).await {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("rapport: {e:#}");
            exit::SOFTWARE
        }
    }
}

fn check(cfg: &Config) -> i32 {
    let renderer = match Renderer::load(&cfg.templates_dir) {
        Ok(r) => r,
        Err(errors) => {
            for e in errors {
                eprintln!("rapport: template {e}");
            }
            return exit::CONFIG;
        }
    };
    let mut failures = 0;
    for occasion in cfg.occasions.iter().filter(|o| o.enabled) {
        for tier in &cfg.tiers {
            let contact = render::sample_contact(&tier.name);
            let mut ctx =
                render::context(&contact, &occasion.name, Utc::now().year(), &cfg.brand_name);
            if let Trigger::Event { kind, .. } = &occasion.trigger {
                ctx = render::with_event(ctx, &render::sample_event(&contact, kind));
            }
            let file = renderer
                .template_for(&occasion.name, &occasion.channel, &tier.name)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "(none)".into());
            match renderer.render_email(&occasion.name, &tier.name, &ctx) {
                Ok(_) => println!(
                    "ok    {} / {} / {}: {file}",
                    occasion.name, occasion.channel, tier.name
                ),
                Err(e) => {
                    failures += 1;
                    println!(
                        "FAIL  {} / {} / {}: {e}",
                        occasion.name, occasion.channel, tier.name
                    );
                }
            }
        }
    }
    if failures > 0 {
        eprintln!("rapport: {failures} template render(s) failed");
        return exit::CONFIG;
    }
    println!("config and templates OK");
    0
}

async fn import(cfg: &Config, file: &std::path::Path) -> anyhow::Result<i32> {
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let report = ingest::import_file(&store, cfg, file).await?;
    for e in &report.errors {
        eprintln!("{}: {e}", file.display());
    }
    println!(
        "{} contact(s) imported, {} row(s) rejected",
        report.imported, report.rejected_rows
    );
    store.close().await;
    Ok(if report.rejected_rows > 0 {
        exit::DATAERR
    } else {
        0
    })
}

async fn preview(
    cfg: &Config,
    occasion: &str,
    contact: &str,
    channel: &str,
) -> anyhow::Result<i32> {
    if channel != "email" {
        anyhow::bail!("unknown channel {channel:?} (known: email)");
    }
    let Some(occ) = cfg.occasion(occasion) else {
        let known: Vec<_> = cfg.occasions.iter().map(|o| o.name.as_str()).collect();
        anyhow::bail!(
            "unknown occasion {occasion:?} (known: {})",
            known.join(", ")
        );
    };
    let renderer = Renderer::load(&cfg.templates_dir).map_err(|e| {
        anyhow::anyhow!(
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        )
    })?;
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let id = ContactId::parse(contact).map_err(|e| anyhow::anyhow!("contact id: {e}"))?;
    let Some(c) = store.get_contact(&id).await? else {
        anyhow::bail!("no contact with id {id}");
    };
    let year = Utc::now()
        .with_timezone(&c.zone(cfg.defaults.timezone))
        .year();
    let mut ctx = render::context(&c, &occ.name, year, &cfg.brand_name);
    let mut occurrence = year.to_string();
    if let Trigger::Event { kind, .. } = &occ.trigger {
        // The contact's latest event of that type, or a sample one.
        let events = store.events_for_contact(&c.id).await?;
        let event = events
            .into_iter()
            .rev()
            .find(|e| e.kind == *kind)
            .unwrap_or_else(|| render::sample_event(&c, kind));
        occurrence = event.id.to_string();
        ctx = render::with_event(ctx, &event);
    }
    let content = renderer.render_email(&occ.name, &c.tier, &ctx)?;
    let Some(to) = c.email.clone() else {
        anyhow::bail!("contact {id} has no email address");
    };
    let email = OutboundEmail {
        touch: TouchId::derive(&occ.name, &c.id, &occurrence),
        to,
        to_name: ctx["contact"]["full_name"].as_str().map(str::to_owned),
        content,
    };
    let message = build_message(&cfg.email, &email).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !c.email_consent {
        eprintln!("note: contact {id} has withdrawn email consent; nothing would be sent");
    }
    println!("{}", String::from_utf8_lossy(&message.formatted()));
    Ok(0)
}

fn fmt_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// An RFC 3339 instant from a flag, or a usage error naming the flag.
fn parse_instant(flag: &str, raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{flag} {raw:?} is not an RFC 3339 instant (e.g. 2026-07-14T08:00:00Z): {e}")
        })
}

async fn event_add(
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
    let horizon = Limits::for_tier(cfg, &c.tier).horizon();
    History::new(
        record.slots,
        &record.touches,
        planner::upcoming(cfg, c, now, horizon),
        record.last_interaction,
    )
}

/// The widest horizon any tier's limits look at.
fn max_horizon(cfg: &Config) -> chrono::Duration {
    let widest = cfg
        .tiers
        .iter()
        .map(|t| Limits::for_tier(cfg, &t.name).horizon())
        .max()
        .unwrap_or_default();
    policy::lookback(widest)
}

async fn show(cfg: &Config, id: &str) -> anyhow::Result<i32> {
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
    println!(
        "email          {}{}",
        opt(c.email.as_ref().map(|e| e.as_str().to_owned())),
        if c.email_consent { "" } else { " (no consent)" }
    );
    println!(
        "phone          {}",
        opt(c.phone.as_ref().map(|p| p.as_str().to_owned()))
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
    lines.sort_by_key(|l| l.0);
    println!(
        "\ntimeline ({} event(s), {} touch(es)):",
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
    for channel in cfg
        .tier(&c.tier)
        .and_then(|t| t.channels.clone())
        .unwrap_or_else(|| vec!["email".into()])
    {
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

async fn plan(cfg: &Config, at: &str) -> anyhow::Result<i32> {
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
    rows.sort_by(|(a, _), (b, _)| {
        (&a.contact_id, std::cmp::Reverse(a.priority), &a.id).cmp(&(
            &b.contact_id,
            std::cmp::Reverse(b.priority),
            &b.id,
        ))
    });
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
            let verdict = policy::evaluate(cfg, c, t, h, when);
            h.upcoming.retain(|u| u.touch != t.id);
            match verdict {
                Verdict::Send => {
                    sends += 1;
                    h.slots.push(Slot {
                        touch: t.id.clone(),
                        at: when,
                        channel: t.channel.clone(),
                    });
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

async fn simulate(
    cfg: &Config,
    contacts: &std::path::Path,
    days: u32,
    start: Option<&str>,
    events: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<i32> {
    let start = match start {
        None => Utc::now()
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc(),
        Some(raw) => match chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
            Ok(d) => d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc(),
            Err(_) => match parse_instant("--start", raw) {
                Ok(t) => t,
                Err(_) => {
                    eprintln!(
                        "rapport: --start {raw:?} is neither YYYY-MM-DD nor an RFC 3339 instant"
                    );
                    return Ok(exit::USAGE);
                }
            },
        },
    };
    if days == 0 || days > 3650 {
        eprintln!("rapport: --days must be between 1 and 3650");
        return Ok(exit::USAGE);
    }
    let (people, mut problems) = ingest::read_contacts(cfg, contacts)?;
    for e in &problems {
        eprintln!("{}: {e}", contacts.display());
    }
    let happenings = match events {
        None => Vec::new(),
        Some(path) => {
            let (good, bad) = ingest::read_events(path)?;
            for e in &bad {
                eprintln!("{}: {e}", path.display());
            }
            problems.extend(bad);
            good
        }
    };
    if !problems.is_empty() {
        eprintln!(
            "rapport: {} bad row(s); fix them to simulate the whole population",
            problems.len()
        );
        return Ok(exit::DATAERR);
    }
    let opts = rapport::simulate::SimOptions { start, days };
    let started = std::time::Instant::now();
    let report = rapport::simulate::run(cfg, &people, &happenings, &opts);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{report}");
        println!(
            "simulated {} contact(s) over {days} day(s) from {} in {:.1}s; nothing was sent or stored",
            people.len(),
            start.format("%Y-%m-%d"),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}
