//! What each subcommand does. Returns the process exit code.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use rapport::{
    app::App,
    channels::{OutboundEmail, build_message},
    cli::{Cli, Command, ContactsCommand},
    config::Config,
    domain::{Clock, ContactId, SystemClock, TouchId},
    exit, ingest, planner,
    render::{self, Renderer},
    store::{AnyStore, Store},
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
            let ctx = render::context(&contact, &occasion.name, Utc::now().year(), &cfg.brand_name);
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
    let ctx = render::context(&c, &occ.name, year, &cfg.brand_name);
    let content = renderer.render_email(&occ.name, &c.tier, &ctx)?;
    let Some(to) = c.email.clone() else {
        anyhow::bail!("contact {id} has no email address");
    };
    let email = OutboundEmail {
        touch: TouchId::derive(&occ.name, &c.id, &year.to_string()),
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

async fn show(cfg: &Config, id: &str) -> anyhow::Result<i32> {
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let id = ContactId::parse(id).map_err(|e| anyhow::anyhow!("contact id: {e}"))?;
    let Some(c) = store.get_contact(&id).await? else {
        anyhow::bail!("no contact with id {id}");
    };
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
    let touches = store.touches_for_contact(&id).await?;
    println!("\ntouches ({}):", touches.len());
    for t in touches {
        println!(
            "  {}  {:<10} attempts={} planned={} expires={}{}{}",
            t.id,
            t.status,
            t.attempts,
            fmt_ts(t.scheduled_at),
            fmt_ts(t.expires_at),
            t.sent_at
                .map(|s| format!(" sent={}", fmt_ts(s)))
                .unwrap_or_default(),
            t.reason
                .map(|r| format!(" reason=\"{r}\""))
                .unwrap_or_default(),
        );
    }
    Ok(0)
}

async fn plan(cfg: &Config, at: &str) -> anyhow::Result<i32> {
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|e| anyhow::anyhow!("--at {at:?} is not an RFC 3339 instant: {e}"))?
        .with_timezone(&Utc);
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let days = planner::candidate_days(at);
    let mut total = 0;
    for occ in cfg.occasions.iter().filter(|o| o.enabled) {
        let Some(field) = occ.date_field() else {
            continue;
        };
        let contacts = store.contacts_on(field, &days).await?;
        let touches = planner::plan(cfg, occ, &contacts, at);
        let ids: Vec<TouchId> = touches.iter().map(|t| t.id.clone()).collect();
        let existing: std::collections::HashMap<_, _> = store
            .get_touches(&ids)
            .await?
            .into_iter()
            .map(|t| (t.id.clone(), t.status))
            .collect();
        println!("{} ({} due at {}):", occ.name, touches.len(), fmt_ts(at));
        for t in &touches {
            let ledger = existing
                .get(&t.id)
                .map(|s| format!("  [in ledger: {s}]"))
                .unwrap_or_default();
            println!(
                "  {}  {:<8} send={} expires={}{}",
                t.id,
                t.status,
                fmt_ts(t.scheduled_at),
                fmt_ts(t.expires_at),
                ledger
            );
        }
        total += touches.len();
    }
    println!("{total} touch(es) would be planned; nothing was written");
    let _ = SystemClock.now();
    Ok(0)
}
