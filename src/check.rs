//! What `rapport check` reports, and what `rapport run` refuses to start on: every
//! enabled occasion's template rendered for a sample contact of every tier, on each
//! channel the tier allows (strict mode, so a variable the sample lacks is a problem),
//! the DKIM key read as `run` will read it, and warnings about what would fall short at
//! start-up. One function for both, so a config `check` rejects never starts sending
//! notes that all fail.

use crate::domain::Channel;
use std::fmt;

use crate::{
    channels::{
        email::Dkim,
        sms::segments::{self, Encoding},
        webhook::parse_secret,
    },
    config::{Config, SmsConfig, SmsTransport, Trigger},
    render::{self, RenderError, Renderer},
};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// What was checked and passed.
    Ok(String),
    /// A problem: `rapport check` fails and `rapport run` does not start.
    Fail(String),
    /// Worth knowing; stops nothing.
    Warn(String),
}

/// As `rapport check` prints it: `ok    ...`, `FAIL  ...`, `warn  ...`.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok(s) => write!(f, "ok    {s}"),
            Self::Fail(s) => write!(f, "FAIL  {s}"),
            Self::Warn(s) => write!(f, "warn  {s}"),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    /// The problems, each naming what failed (`birthday / email / friend: ...`).
    pub fn problems(&self) -> impl Iterator<Item = &str> {
        self.findings.iter().filter_map(|f| match f {
            Finding::Fail(s) => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Checks `cfg` with the templates in its `templates_dir`, rendering samples as of
/// `year`. `Err`: templates that do not even load (each error names its file).
pub fn check(cfg: &Config, year: i32) -> Result<Report, Vec<RenderError>> {
    let renderer = Renderer::load(&cfg.templates_dir)?;
    let mut report = Report::default();
    report.findings.extend(templates(cfg, &renderer, year));
    // Read the DKIM key now, as `run` will: a missing or bad key is a problem.
    if let Some(key) = &cfg.email.dkim {
        report.findings.push(match Dkim::load(key) {
            Ok(_) => Finding::Ok(format!("channels.email.dkim: {}", key.key_file.display())),
            Err(e) => Finding::Fail(format!("channels.email.dkim: {e}")),
        });
    }
    report
        .findings
        .extend(channel_warnings(cfg).into_iter().map(Finding::Warn));
    Ok(report)
}

fn templates(cfg: &Config, renderer: &Renderer, year: i32) -> Vec<Finding> {
    let mut out = Vec::new();
    for occasion in cfg.rules.occasions.iter().filter(|o| o.enabled) {
        for tier in &cfg.rules.tiers {
            let contact = render::sample_contact(&tier.name);
            let mut ctx = render::context(&contact, &occasion.name, year, &cfg.brand_name);
            if let Trigger::Event { kind, .. } = &occasion.trigger {
                ctx = render::with_event(ctx, &render::sample_event(&contact, kind));
            }
            for channel in occasion
                .channels
                .iter()
                .copied()
                .filter(|c| tier.allows_channel(*c))
            {
                let what = format!("{} / {channel} / {}", occasion.name, tier.name);
                let file = renderer
                    .template_for(&occasion.name, channel, &tier.name)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "(none)".into());
                let rendered = match channel {
                    Channel::Email => renderer
                        .render_email(&occasion.name, &tier.name, &ctx)
                        .map(|_| None),
                    _ => renderer
                        .render_text(&occasion.name, channel, &tier.name, &ctx)
                        .map(|text| (channel == Channel::Sms).then(|| sms_note(&text)).flatten()),
                };
                match rendered {
                    Ok(note) => {
                        out.push(Finding::Ok(format!("{what}: {file}")));
                        out.extend(note.map(Finding::Warn));
                    }
                    Err(e) => out.push(Finding::Fail(format!("{what}: {e}"))),
                }
            }
        }
    }
    out
}

/// For an SMS longer than one segment, a warning saying how many it takes (carriers
/// bill, and phones show, each segment).
pub fn sms_note(text: &str) -> Option<String> {
    let s = segments::count(text);
    let (name, one) = match s.encoding {
        Encoding::Gsm7 => ("GSM-7", 160),
        Encoding::Ucs2 => ("UCS-2", 70),
    };
    (s.count > 1).then(|| {
        format!(
            "the sample is {} {name} characters: {} SMS segments (one holds {one}); shorten it or expect {}x the cost",
            s.units, s.count, s.count
        )
    })
}

/// What would make a channel fail or fall short at start-up: a secret variable not
/// set, marketing email without a one-click unsubscribe link.
fn channel_warnings(cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let unset = |name: &str| std::env::var(name).map_or(true, |v| v.is_empty());
    if let Some(SmsConfig {
        transport: SmsTransport::Twilio { auth_token_env, .. },
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
                    if let Err(e) = parse_secret(&v) {
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
        .rules
        .occasions
        .iter()
        .any(|o| o.enabled && !o.transactional && o.channels.contains(&Channel::Email));
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
