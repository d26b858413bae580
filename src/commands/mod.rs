//! What each subcommand does. Returns the process exit code.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use rapport::{
    app::App,
    channels::{OutboundEmail, build_message},
    cli::{Cli, Command, ContactsCommand, EventCommand},
    config::{Config, Trigger},
    domain::{ContactId, SystemClock, TouchId},
    exit, ingest,
    render::{self, Renderer},
    store::{AnyStore, Store},
};
use tokio_util::sync::CancellationToken;

mod relationship;

use relationship::{event_add, plan, show, simulate};

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

pub(super) async fn open_store(cfg: &Config) -> Result<AnyStore, i32> {
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

pub(super) fn fmt_ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// An RFC 3339 instant from a flag, or a usage error naming the flag.
pub(super) fn parse_instant(flag: &str, raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{flag} {raw:?} is not an RFC 3339 instant (e.g. 2026-07-14T08:00:00Z): {e}")
        })
}
