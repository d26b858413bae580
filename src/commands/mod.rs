//! What each subcommand does. Returns the process exit code.

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
    store::{AnyStore, Store},
};
use tokio_util::sync::CancellationToken;

mod dead_letters;
mod learned;
mod relationship;
mod simulate;
mod store;

use relationship::{event_add, plan, show};

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
    let app = match App::build(cfg, Arc::new(SystemClock)).await {
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
    let token = CancellationToken::new();
    if let Err(e) = rapport::shutdown::install(token.clone(), app.cfg.dispatch.drain_timeout) {
        eprintln!("rapport: cannot install signal handlers: {e}");
        return exit::SOFTWARE;
    }
    match app.run(role, listener, token).await {
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
            for channel in occasion.channels.iter().filter(|c| tier.allows_channel(c)) {
                let file = renderer
                    .template_for(&occasion.name, channel, &tier.name)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(none)".into());
                let rendered = match channel.as_str() {
                    "email" => renderer
                        .render_email(&occasion.name, &tier.name, &ctx)
                        .map(|_| String::new()),
                    _ => renderer
                        .render_text(&occasion.name, channel, &tier.name, &ctx)
                        .map(|text| sms_note(channel, &text)),
                };
                match rendered {
                    Ok(note) => println!(
                        "ok    {} / {channel} / {}: {file}{note}",
                        occasion.name, tier.name
                    ),
                    Err(e) => {
                        failures += 1;
                        println!("FAIL  {} / {channel} / {}: {e}", occasion.name, tier.name);
                    }
                }
            }
        }
    }
    // Read the DKIM key now, as `run` will: a missing or bad key fails the check.
    if let Some(key) = &cfg.email.dkim {
        match rapport::channels::email::Dkim::load(key) {
            Ok(_) => println!("ok    channels.email.dkim: {}", key.key_file.display()),
            Err(e) => {
                failures += 1;
                println!("FAIL  channels.email.dkim: {e}");
            }
        }
    }
    for warning in channel_warnings(cfg) {
        println!("warn  {warning}");
    }
    if failures > 0 {
        eprintln!("rapport: {failures} check(s) failed");
        return exit::CONFIG;
    }
    println!("config and templates OK");
    0
}

/// What would make a channel fail or fall short at start-up: a secret variable not
/// set, marketing email without a one-click unsubscribe link.
fn channel_warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let unset = |name: &str| std::env::var(name).map_or(true, |v| v.is_empty());
    if let Some(rapport::config::SmsConfig {
        transport: rapport::config::SmsTransport::Twilio { auth_token_env, .. },
        ..
    }) = &cfg.sms
    {
        if unset(auth_token_env) {
            out.push(format!("channels.sms: the auth token variable {auth_token_env} is not set here; `rapport run` will refuse to start"));
        }
    }
    if let Some(w) = &cfg.webhook {
        for name in std::iter::once(&w.secret_env).chain(&w.previous_secret_env) {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => {
                    if let Err(e) = rapport::channels::webhook::parse_secret(&v) {
                        out.push(format!("channels.webhook: {name}: {e}"));
                    }
                }
                _ => out.push(format!("channels.webhook: the secret variable {name} is not set here; `rapport run` will refuse to start")),
            }
        }
    }
    if let Some(name) = &cfg.api.signing_secret_env {
        match std::env::var(name) {
            Ok(v) if v.len() >= 16 => {}
            Ok(v) if !v.is_empty() => out.push(format!(
                "api: the signing secret in {name} is {} bytes; `rapport run` needs at least 16",
                v.len()
            )),
            _ => out.push(format!("api: the signing secret variable {name} is not set here; `rapport run` will refuse to start")),
        }
    }
    let marketing = cfg
        .occasions
        .iter()
        .any(|o| o.enabled && !o.transactional && o.channels.iter().any(|c| c == "email"));
    if marketing && cfg.api.public_url.is_none() {
        out.push(
            "api.public_url is not set: marketing email goes out without a one-click unsubscribe link (RFC 8058; Gmail and Yahoo require it of bulk senders)".into(),
        );
    }
    if let Some(url) = &cfg.api.public_url {
        out.push(format!(
            "api.public_url: {url}/u/... (one-click unsubscribe), {url}/c/... (click tracking) and {url}/v1/twilio/... (SMS replies and delivery reports) must route to this daemon's HTTP API (api.listen)"
        ));
    }
    if marketing && cfg.api.public_url.is_some() && cfg.email.dkim.is_none() {
        out.push(
            "channels.email.dkim is not set: one-click unsubscribe needs a DKIM signature covering List-Unsubscribe and List-Unsubscribe-Post; make sure your relay signs them".into(),
        );
    }
    out
}

/// For an SMS sample longer than one segment, a warning saying how many it takes
/// (carriers bill, and phones show, each segment).
fn sms_note(channel: &str, text: &str) -> String {
    use rapport::channels::sms::segments::{self, Encoding};
    if channel != "sms" {
        return String::new();
    }
    let s = segments::count(text);
    let (name, one) = match s.encoding {
        Encoding::Gsm7 => ("GSM-7", 160),
        Encoding::Ucs2 => ("UCS-2", 70),
    };
    if s.count <= 1 {
        return String::new();
    }
    format!(
        "\nwarn  the sample is {} {name} characters: {} SMS segments (one holds {one}); shorten it or expect {}x the cost",
        s.units, s.count, s.count
    )
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
    if !rapport::config::CHANNELS.contains(&channel) {
        anyhow::bail!(
            "unknown channel {channel:?} (known: {})",
            rapport::config::CHANNELS.join(", ")
        );
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
    if channel != "email" {
        let text = renderer.render_text(&occ.name, channel, &c.tier, &ctx)?;
        if channel == "sms" {
            let Some(to) = &c.phone else {
                anyhow::bail!("contact {id} has no phone number");
            };
            if !c.sms_consent {
                eprintln!("note: contact {id} has withdrawn SMS consent; nothing would be sent");
            }
            println!(
                "To: {}\n{}\n\n{text}",
                to.as_str(),
                sms_note("sms", &text).trim()
            );
        } else {
            println!("{text}");
        }
        return Ok(0);
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
        unsubscribe: None,
    };
    // Unsigned: a preview shows the content, and signing would need the key.
    let message = build_message(&cfg.email, None, &email).map_err(|e| anyhow::anyhow!("{e}"))?;
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
