//! What each subcommand does. Returns the process exit code.

use rapport::domain::Channel;
use rapport::store::{Contacts, Coordination};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Utc};
use rapport::{
    app::App,
    channels::{OutboundEmail, build_message},
    cli::{Cli, Command, ContactsCommand, EventCommand, Role},
    config::{Config, Trigger},
    domain::{ContactId, SystemClock, TouchId},
    exit, ingest,
    render::{self, Renderer},
    store::AnyStore,
};
use tokio_util::sync::CancellationToken;

mod dead_letters;
mod learned;
mod plan;
mod relationship;
mod simulate;
mod store;

use plan::plan;
use relationship::{event_add, show};

pub(crate) async fn run(cli: Cli) -> i32 {
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprint!("rapport: {e}");
            return exit::CONFIG;
        }
    };
    let result = match cli.command {
        Command::Run { role } => return run_daemon(cfg, role).await,
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
        Command::Response { command } => learned::response(&cfg, command).await,
        Command::Plan { at } => plan(&cfg, &at).await,
        Command::DeadLetters { command } => dead_letters::run(&cfg, command).await,
        Command::Store { command } => store::run(&cfg, command).await,
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
        Command::Simulate(args) => simulate::run(&cfg, &args),
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

async fn run_daemon(cfg: Config, role: Role) -> i32 {
    // What `rapport check` rejects would fail every send it touches: refuse to start,
    // naming each problem, before anything is planned or sent.
    let report = match rapport::check::check(&cfg, Utc::now().year()) {
        Ok(r) => r,
        Err(errors) => return templates_unloadable(&errors),
    };
    let problems: Vec<&str> = report.problems().collect();
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("rapport: {p}");
        }
        eprintln!(
            "rapport: not starting: {} check(s) failed (`rapport check` lists everything it checks)",
            problems.len()
        );
        return exit::CONFIG;
    }
    // Installed before the store is opened: a SIGTERM while starting (a deploy that
    // changes its mind) is a clean stop too, not a kill.
    let token = CancellationToken::new();
    if let Err(e) = rapport::shutdown::install(token.clone(), cfg.dispatch.drain_timeout) {
        eprintln!("rapport: cannot install signal handlers: {e}");
        return exit::SOFTWARE;
    }
    let store = match open_store(&cfg).await {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let AnyStore::Redis(redis) = &store {
        redis.warn_about_settings().await;
    }
    rapport::with_store!(store, |store| {
        let app = match App::build(cfg, store, Arc::new(SystemClock)).await {
            Ok(app) => app,
            Err(e) => {
                eprintln!("rapport: {e}");
                return e.exit_code();
            }
        };
        // Before anything runs: an address in use is a start-up failure, not a daemon
        // that plans and sends without its API.
        let listener = match app.bind_api(role).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("rapport: {e}");
                app.store.close().await;
                return e.exit_code();
            }
        };
        match app.run(role, listener, token).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("rapport: {e:#}");
                exit::SOFTWARE
            }
        }
    })
}

fn check(cfg: &Config) -> i32 {
    let report = match rapport::check::check(cfg, Utc::now().year()) {
        Ok(r) => r,
        Err(errors) => return templates_unloadable(&errors),
    };
    for finding in &report.findings {
        println!("{finding}");
    }
    let failures = report.problems().count();
    if failures > 0 {
        eprintln!("rapport: {failures} check(s) failed");
        return exit::CONFIG;
    }
    println!("config and templates OK");
    0
}

/// Templates that do not load, one line each naming its file.
fn templates_unloadable(errors: &[render::RenderError]) -> i32 {
    for e in errors {
        eprintln!("rapport: template {e}");
    }
    exit::CONFIG
}

async fn import(cfg: &Config, file: &std::path::Path) -> anyhow::Result<i32> {
    let store = match open_store(cfg).await {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    rapport::with_store!(store, |store| {
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
    })
}

async fn preview(
    cfg: &Config,
    occasion: &str,
    contact: &str,
    channel: &str,
) -> anyhow::Result<i32> {
    let channel: Channel = channel.parse()?;
    let Some(occ) = cfg.rules.occasion(occasion) else {
        let known: Vec<_> = cfg
            .rules
            .occasions
            .iter()
            .map(|o| o.name.as_str())
            .collect();
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
    rapport::with_store!(store, |store| {
        let id = ContactId::parse(contact).map_err(|e| anyhow::anyhow!("contact id: {e}"))?;
        let Some(c) = store.get_contact(&id).await? else {
            anyhow::bail!("no contact with id {id}");
        };
        let year = Utc::now()
            .with_timezone(&c.zone(cfg.rules.defaults.timezone))
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
        match channel {
            Channel::Email => preview_email(cfg, &renderer, &c, occ, &occurrence, &ctx)?,
            Channel::Sms | Channel::Webhook => {
                preview_text(&renderer, &c, &occ.name, channel, &ctx)?;
            }
        }
        Ok(0)
    })
}

/// An SMS (with its recipient and segment count) or a webhook's text, as rendered.
fn preview_text(
    renderer: &Renderer,
    c: &rapport::domain::Contact,
    occasion: &str,
    channel: Channel,
    ctx: &serde_json::Value,
) -> anyhow::Result<()> {
    let text = renderer.render_text(occasion, channel, &c.tier, ctx)?;
    if channel != Channel::Sms {
        println!("{text}");
        return Ok(());
    }
    let id = &c.id;
    let Some(to) = &c.phone else {
        anyhow::bail!("contact {id} has no phone number");
    };
    if !c.sms_consent {
        eprintln!("note: contact {id} has withdrawn SMS consent; nothing would be sent");
    }
    let note = rapport::check::sms_note(&text).map_or_else(String::new, |n| {
        rapport::check::Finding::Warn(n).to_string()
    });
    println!("To: {}\n{note}\n\n{text}", to.as_str());
    Ok(())
}

/// The whole email as it would be sent (unsigned: a preview shows the content, and
/// signing would need the key).
fn preview_email(
    cfg: &Config,
    renderer: &Renderer,
    c: &rapport::domain::Contact,
    occ: &rapport::config::Occasion,
    occurrence: &str,
    ctx: &serde_json::Value,
) -> anyhow::Result<()> {
    let id = &c.id;
    let content = renderer.render_email(&occ.name, &c.tier, ctx)?;
    let Some(to) = c.email.clone() else {
        anyhow::bail!("contact {id} has no email address");
    };
    let email = OutboundEmail {
        touch: TouchId::derive(&occ.name, &c.id, occurrence),
        to,
        to_name: ctx["contact"]["full_name"].as_str().map(str::to_owned),
        content,
        unsubscribe: None,
    };
    let message = build_message(&cfg.email, None, &email).map_err(|e| anyhow::anyhow!("{e}"))?;
    if !c.email_consent {
        eprintln!("note: contact {id} has withdrawn email consent; nothing would be sent");
    }
    println!("{}", String::from_utf8_lossy(&message.formatted()));
    Ok(())
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
