//! Raw config -> [`Config`], collecting every problem instead of stopping at the first.
//! Tiers and occasions are checked in `relationship`, the email channel in `email`.

use std::{path::PathBuf, str::FromStr, time::Duration};

use super::{
    CHANNELS, Cap, Config, ConfigError, ConfigIssue, Defaults, DispatchConfig, EmailConfig,
    EmailTransport, Layered, Occasion, StorageBackend, StorageConfig, Tier, Trigger,
    parse_duration,
    raw::{RawCap, RawConfig, RawDispatch},
};
use crate::domain::{SendWindow, contact::parse_timezone};

mod channels;
mod email;
mod learning;
mod paths;
mod relationship;

use email::email;
use paths::{ignored_path, remove_path};
use relationship::{occasion, tier};

struct Issues<'a> {
    layered: &'a Layered,
    list: Vec<ConfigIssue>,
}

impl Issues<'_> {
    fn push(&mut self, path: &str, message: impl Into<String>) {
        self.list.push(ConfigIssue {
            source: self.layered.source_of(path).to_owned(),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    /// `path` is missing, unless a value there was already reported (and removed) as
    /// being of the wrong type.
    fn missing(&mut self, path: &str, example: &str) {
        self.missing_for(path, path, example);
    }

    /// `path` is missing, required by the key at `cause` (`transport = "twilio"` needs
    /// an account SID): the problem is filed under the file that set `cause`.
    fn missing_for(&mut self, path: &str, cause: &str, example: &str) {
        if !self.list.iter().any(|i| i.path == path) {
            self.list.push(ConfigIssue {
                source: self.layered.source_of(cause).to_owned(),
                path: path.to_owned(),
                message: format!("missing: {example}"),
            });
        }
    }

    fn duration(&mut self, path: &str, raw: Option<&str>, default: Duration) -> Duration {
        match raw.map(parse_duration) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(e)) => {
                self.push(path, e);
                default
            }
        }
    }

    fn window(&mut self, path: &str, raw: Option<&str>) -> Option<SendWindow> {
        match raw.map(SendWindow::from_str) {
            None => None,
            Some(Ok(w)) => Some(w),
            Some(Err(e)) => {
                self.push(path, e);
                None
            }
        }
    }

    /// A list of `{count, per}` caps; each must allow at least one touch in a window
    /// longer than zero.
    fn caps(&mut self, path: &str, raw: Option<&Vec<RawCap>>) -> Vec<Cap> {
        let mut out = Vec::new();
        for (i, c) in raw.into_iter().flatten().enumerate() {
            let at = format!("{path}[{i}]");
            let count = match c.count {
                None => {
                    self.missing(&format!("{at}.count"), "e.g. { count = 1, per = \"7d\" }");
                    continue;
                }
                Some(0) => {
                    self.push(&format!("{at}.count"), "must be at least 1 (to send nothing, disable the occasion or leave the channel out)");
                    continue;
                }
                Some(n) => n,
            };
            let Some(per) = c.per.as_deref() else {
                self.missing(&format!("{at}.per"), "e.g. { count = 1, per = \"7d\" }");
                continue;
            };
            match parse_duration(per) {
                Ok(d) if d.as_secs() >= 1 => out.push(Cap { count, per: d }),
                Ok(_) => self.push(&format!("{at}.per"), "must be at least 1s"),
                Err(e) => self.push(&format!("{at}.per"), e),
            }
        }
        out
    }

    fn channel_list(&mut self, path: &str, raw: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in raw.iter().enumerate() {
            if CHANNELS.contains(&c.as_str()) {
                out.push(c.clone());
            } else {
                self.push(
                    &format!("{path}[{i}]"),
                    format!("unknown channel {c:?} (known: {})", CHANNELS.join(", ")),
                );
            }
        }
        out
    }

    fn positive(&mut self, path: &str, v: Option<u32>, default: u32) -> u32 {
        match v {
            Some(0) => {
                self.push(path, "must be at least 1");
                default
            }
            Some(n) => n,
            None => default,
        }
    }
}

pub(super) fn validate(layered: &Layered) -> Result<Config, ConfigError> {
    let mut issues = Issues {
        layered,
        list: Vec::new(),
    };
    let raw = deserialize(layered, &mut issues);

    let storage = storage(&mut issues, &raw);
    let timezone = match raw.defaults.timezone.as_deref().map(parse_timezone) {
        None => chrono_tz::UTC,
        Some(Ok(tz)) => tz,
        Some(Err(e)) => {
            issues.push("defaults.timezone", e.0);
            chrono_tz::UTC
        }
    };
    let send_window = issues
        .window("defaults.send_window", raw.defaults.send_window.as_deref())
        .unwrap_or("09:00-18:00".parse().expect("valid literal"));

    let mut tiers = Vec::new();
    for (name, t) in &raw.tiers {
        if !valid_name(name) {
            issues.push(
                &format!("tiers.{name}"),
                "tier names use lower-case letters, digits and _",
            );
        }
        tiers.push(tier(&mut issues, name, t));
    }
    if tiers.is_empty() {
        issues.push(
            "tiers",
            "at least one tier is required (e.g. [tiers.family])",
        );
    }
    let default_tier = raw
        .defaults
        .tier
        .clone()
        .or_else(|| tiers.last().map(|t| t.name.clone()))
        .unwrap_or_default();
    if !tiers.is_empty() && !tiers.iter().any(|t| t.name == default_tier) {
        issues.push(
            "defaults.tier",
            format!("unknown tier {default_tier:?} (known: {})", names(&tiers)),
        );
    }

    let email = email(&mut issues, raw.channels.email.as_ref());
    let sms = channels::sms(&mut issues, raw.channels.sms.as_ref());
    let webhook = channels::webhook(&mut issues, raw.channels.webhook.as_ref());
    let api = channels::api(&mut issues, &raw.api);
    if email.as_ref().is_some_and(|e| e.track_clicks) && api.public_url.is_none() {
        issues.push(
            "channels.email.track_clicks",
            "needs api.public_url (the https base the tracked links point at)",
        );
    }
    let learning = learning::learning(&mut issues, &raw.learning, &tiers);
    let templates_dir = PathBuf::from(
        raw.templates
            .dir
            .clone()
            .unwrap_or_else(|| "templates".into()),
    );
    let mut occasions = Vec::new();
    for (name, o) in &raw.occasions {
        if let Some(occ) = occasion(&mut issues, name, o) {
            occasions.push(occ);
        }
    }
    for o in &occasions {
        let configured = |c: &str| match c {
            "sms" => raw.channels.sms.is_some(),
            "webhook" => raw.channels.webhook.is_some(),
            _ => true,
        };
        for c in o.channels.iter().filter(|c| !configured(c)) {
            issues.push(
                &format!("occasions.{}.channels", o.name),
                format!("channel {c:?} is not configured (add a [channels.{c}] section)"),
            );
        }
    }
    check_templates(&mut issues, &templates_dir, &occasions, &tiers);
    let dispatch = dispatch(&mut issues, &raw.dispatch);
    let contact_caps = issues.caps("policy.caps", raw.policy.caps.as_ref());
    for o in occasions.iter().filter(|o| o.enabled) {
        if matches!(o.trigger, Trigger::Inactivity { every: None })
            && !tiers.iter().any(|t| t.check_in_every.is_some())
        {
            issues.push(
                &format!("occasions.{}.trigger.inactivity", o.name),
                "\"tier\" takes the cadence from each tier's check_in_every, but no tier sets one",
            );
        }
    }
    check_timeouts(
        &mut issues,
        &dispatch,
        &channel_timeouts(&email, &sms, &webhook),
    );

    if !issues.list.is_empty() {
        return Err(ConfigError {
            issues: issues.list,
        });
    }
    Ok(Config {
        storage,
        defaults: Defaults {
            timezone,
            send_window,
            tier: default_tier,
        },
        brand_name: raw.brand.name.clone().unwrap_or_else(|| "Rapport".into()),
        templates_dir,
        tiers,
        occasions,
        email: email.expect("no issues means email parsed"),
        dispatch,
        contact_caps,
        sms,
        webhook,
        api,
        learning,
    })
}

/// Serde stops at the first value of the wrong type. To still report every problem, a
/// leaf that fails is recorded, removed, and the document deserialized again, until it
/// goes through; the later checks then run on what is left.
fn deserialize(layered: &Layered, issues: &mut Issues<'_>) -> RawConfig {
    let mut doc = toml::Value::Table(layered.doc.clone());
    let mut unknown = Vec::new();
    for _ in 0..64 {
        unknown.clear();
        let attempt = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
            doc.clone(),
            &mut |path| unknown.push(ignored_path(&path.to_string())),
        ));
        match attempt {
            Ok(raw) => {
                for u in &unknown {
                    issues.push(u, "unknown key");
                }
                return raw;
            }
            Err(e) => {
                let path = e.path().to_string();
                issues.push(&path, e.into_inner().message().to_owned());
                if !remove_path(&mut doc, &path) {
                    break;
                }
            }
        }
    }
    for u in &unknown {
        issues.push(u, "unknown key");
    }
    RawConfig::default()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn names(tiers: &[Tier]) -> String {
    tiers
        .iter()
        .map(|t| t.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn storage(issues: &mut Issues<'_>, raw: &RawConfig) -> StorageConfig {
    let backend = match raw.storage.backend.as_deref().unwrap_or("sqlite") {
        "sqlite" => StorageBackend::Sqlite,
        "redis" => StorageBackend::Redis,
        other => {
            issues.push(
                "storage.backend",
                format!("unknown backend {other:?} (expected \"sqlite\" or \"redis\")"),
            );
            StorageBackend::Sqlite
        }
    };
    let url = raw.storage.url.clone().unwrap_or_else(|| match backend {
        StorageBackend::Sqlite => "sqlite://data/rapport.db".into(),
        StorageBackend::Redis => "redis://127.0.0.1:6379".into(),
    });
    let shown = crate::config::redact_url(&url);
    match backend {
        StorageBackend::Sqlite if !url.starts_with("sqlite:") => issues.push(
            "storage.url",
            format!("{shown:?} is not a sqlite URL (expected sqlite://PATH)"),
        ),
        StorageBackend::Redis
            if !(url.starts_with("redis://")
                || url.starts_with("rediss://")
                || url.starts_with("redis+unix://")
                || url.starts_with("unix://")) =>
        {
            issues.push(
                "storage.url",
                format!("{shown:?} is not a redis URL (expected redis://HOST:PORT[/DB])"),
            )
        }
        _ => {}
    }
    let prefix = raw
        .storage
        .prefix
        .clone()
        .unwrap_or_else(|| "rapport".into());
    if prefix.is_empty()
        || !prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        issues.push(
            "storage.prefix",
            format!("{prefix:?}: use letters, digits, '_', '-' or '.'"),
        );
    }
    StorageConfig {
        backend,
        url,
        prefix,
    }
}

/// Each channel's timeout (the longest one provider call may take), with its key.
fn channel_timeouts(
    email: &Option<EmailConfig>,
    sms: &Option<crate::config::SmsConfig>,
    webhook: &Option<crate::config::WebhookConfig>,
) -> Vec<(&'static str, Duration)> {
    let mut out = Vec::new();
    if let Some(EmailConfig {
        transport: EmailTransport::Smtp { timeout, .. },
        ..
    }) = email
    {
        out.push(("channels.email.timeout", *timeout));
    }
    if let Some(crate::config::SmsConfig {
        transport: crate::config::SmsTransport::Twilio { timeout, .. },
        ..
    }) = sms
    {
        out.push(("channels.sms.timeout", *timeout));
    }
    if let Some(w) = webhook {
        out.push(("channels.webhook.timeout", w.timeout));
    }
    out
}

/// A send must fit in what is left of a lease between renewals (else it would never
/// start), and in the drain (else every shutdown would cut it off).
fn check_timeouts(
    issues: &mut Issues<'_>,
    dispatch: &DispatchConfig,
    timeouts: &[(&'static str, Duration)],
) {
    if let Some((key, timeout)) = timeouts.iter().max_by_key(|(_, t)| *t) {
        let min = DispatchConfig::min_lease(*timeout);
        if dispatch.lease < min {
            issues.push(
                "dispatch.lease",
                format!(
                    "must be at least {}s: a send starts only with {key} ({}s) plus {}s of its lease left, and leases are renewed every quarter lease",
                    min.as_secs(),
                    timeout.as_secs_f64(),
                    crate::config::SEND_MARGIN.as_secs()
                ),
            );
        }
    }
    for (key, timeout) in timeouts {
        if *timeout >= dispatch.drain_timeout {
            issues.push(
                key,
                format!(
                    "must be shorter than dispatch.drain_timeout ({}s)",
                    dispatch.drain_timeout.as_secs()
                ),
            );
        }
    }
}

fn dispatch(issues: &mut Issues<'_>, d: &RawDispatch) -> DispatchConfig {
    let secs = Duration::from_secs;
    let out = DispatchConfig {
        workers: issues.positive("dispatch.workers", d.workers, 2),
        batch_size: issues.positive("dispatch.batch_size", d.batch_size, 100),
        concurrency: issues.positive("dispatch.concurrency", d.concurrency, 32),
        max_attempts: issues.positive("dispatch.max_attempts", d.max_attempts, 6),
        max_age: issues.duration("dispatch.max_age", d.max_age.as_deref(), secs(6 * 3600)),
        backoff: issues.duration("dispatch.backoff", d.backoff.as_deref(), secs(30)),
        backoff_max: issues.duration("dispatch.backoff_max", d.backoff_max.as_deref(), secs(3600)),
        // Short, and kept alive by renewal: a process killed with -9 holds its touches
        // for at most this long, and the reconciler takes them over within
        // `reconcile_every` after (35 s with these defaults, then they are sent).
        lease: issues.duration("dispatch.lease", d.lease.as_deref(), secs(30)),
        reconcile_every: issues.duration(
            "dispatch.reconcile_every",
            d.reconcile_every.as_deref(),
            secs(5),
        ),
        drain_timeout: issues.duration(
            "dispatch.drain_timeout",
            d.drain_timeout.as_deref(),
            secs(20),
        ),
        poll_interval: issues.duration(
            "dispatch.poll_interval",
            d.poll_interval.as_deref(),
            Duration::from_millis(500),
        ),
    };
    if out.backoff.is_zero() {
        issues.push("dispatch.backoff", "must be longer than 0s");
    }
    if out.poll_interval.is_zero() {
        issues.push("dispatch.poll_interval", "must be longer than 0s");
    }
    out
}

/// Every enabled occasion needs `templates/<occasion>/<channel>.hbs`, or a variant for
/// every tier; a variant naming an unknown tier is a typo worth reporting.
fn check_templates(
    issues: &mut Issues<'_>,
    dir: &std::path::Path,
    occasions: &[Occasion],
    tiers: &[Tier],
) {
    for o in occasions.iter().filter(|o| o.enabled) {
        for channel in &o.channels {
            check_channel_templates(issues, dir, o, channel, tiers);
        }
    }
}

/// `<occasion>/<channel>.hbs`, or a tier variant for every tier that allows the channel.
fn check_channel_templates(
    issues: &mut Issues<'_>,
    dir: &std::path::Path,
    o: &Occasion,
    wanted: &str,
    tiers: &[Tier],
) {
    {
        let folder = dir.join(&o.name);
        let base = folder.join(format!("{wanted}.hbs"));
        let mut variants = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(stem) = file.strip_suffix(".hbs") else {
                    continue;
                };
                if let Some((channel, tier)) = stem.split_once('.') {
                    if channel == wanted {
                        if tiers.iter().any(|t| t.name == tier) {
                            variants.push(tier.to_owned());
                        } else {
                            issues.push(
                                &format!("occasions.{}", o.name),
                                format!(
                                    "template {} names unknown tier {tier:?} (known: {})",
                                    folder.join(&file).display(),
                                    names(tiers)
                                ),
                            );
                        }
                    }
                }
            }
        }
        let all_tiers_covered = tiers
            .iter()
            .filter(|t| t.allows_channel(wanted))
            .all(|t| variants.contains(&t.name));
        if !base.is_file() && !all_tiers_covered {
            issues.push(
                &format!("occasions.{}", o.name),
                format!(
                    "missing template {} (or a {wanted}.<tier>.hbs for every tier that allows {wanted})",
                    base.display(),
                ),
            );
        }
    }
}
