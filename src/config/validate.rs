//! Raw config -> [`Config`], collecting every problem instead of stopping at the first.

use std::{path::PathBuf, str::FromStr, time::Duration};

use super::{
    CHANNELS, Cap, Config, ConfigError, ConfigIssue, DateField, Defaults, DispatchConfig,
    EmailConfig, EmailTransport, Layered, Occasion, OnThrottle, StorageBackend, StorageConfig,
    Tier, TlsMode, Trigger, parse_duration,
    raw::{RawCap, RawConfig, RawDispatch, RawEmail, RawOccasion, RawTier},
};
use crate::domain::{EmailAddress, SendWindow, contact::parse_timezone};

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
        if !self.list.iter().any(|i| i.path == path) {
            self.push(path, format!("missing: {example}"));
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
    if let Some(EmailConfig {
        transport: EmailTransport::Smtp { timeout, .. },
        ..
    }) = &email
    {
        // A lease shorter than one send would let another worker take over a touch
        // that is still being sent.
        if dispatch.lease <= *timeout * 2 {
            issues.push(
                "dispatch.lease",
                format!(
                    "must be longer than twice channels.email.timeout ({}s)",
                    timeout.as_secs()
                ),
            );
        }
        // A send that may outlast the drain would be cut off at every shutdown.
        if *timeout >= dispatch.drain_timeout {
            issues.push(
                "channels.email.timeout",
                format!(
                    "must be shorter than dispatch.drain_timeout ({}s)",
                    dispatch.drain_timeout.as_secs()
                ),
            );
        }
    }

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

/// A path as serde_path_to_error prints it (`tiers.friend.caps[0].count`), as table
/// keys and array indexes.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for seg in path.split('.') {
        let (key, mut rest) = seg.split_once('[').map_or((seg, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some((n, after)) = rest.split_once(']') {
            if let Ok(i) = n.parse() {
                out.push(Step::Index(i));
            }
            rest = after.trim_start_matches('[');
        }
    }
    out
}

fn remove_path(doc: &mut toml::Value, path: &str) -> bool {
    let steps = steps(path);
    let Some((last, parents)) = steps.split_last() else {
        return false;
    };
    let mut cursor = doc;
    for step in parents {
        let next = match step {
            Step::Key(k) => cursor.get_mut(*k),
            Step::Index(i) => cursor.get_mut(*i),
        };
        match next {
            Some(n) => cursor = n,
            None => return false,
        }
    }
    match last {
        Step::Key(k) => cursor.as_table_mut().and_then(|t| t.remove(*k)).is_some(),
        Step::Index(i) => match cursor.as_array_mut() {
            Some(a) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        },
    }
}

/// serde_ignored prints an array element as `caps.?.0`... or `caps.0`; shown as
/// `caps[0]`, the form every other message uses.
fn ignored_path(raw: &str) -> String {
    let mut out = String::new();
    for seg in raw.split('.').filter(|s| *s != "?") {
        if seg.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
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

fn tier(issues: &mut Issues<'_>, name: &str, t: &RawTier) -> Tier {
    let p = |k: &str| format!("tiers.{name}.{k}");
    let channels = t
        .channels
        .as_ref()
        .map(|c| issues.channel_list(&p("channels"), c));
    if channels.as_ref().is_some_and(Vec::is_empty) {
        issues.push(&p("channels"), "must name at least one channel");
    }
    let mut channel_caps = Vec::new();
    for (channel, caps) in t.channel_caps.iter().flatten() {
        let at = p(&format!("channel_caps.{channel}"));
        if !CHANNELS.contains(&channel.as_str()) {
            issues.push(
                &at,
                format!(
                    "unknown channel {channel:?} (known: {})",
                    CHANNELS.join(", ")
                ),
            );
            continue;
        }
        channel_caps.push((channel.clone(), issues.caps(&at, Some(caps))));
    }
    let check_in_every = t
        .check_in_every
        .as_deref()
        .and_then(|raw| match parse_duration(raw) {
            Ok(d) if d.as_secs() >= 3600 => Some(d),
            Ok(_) => {
                issues.push(&p("check_in_every"), "must be at least 1h");
                None
            }
            Err(e) => {
                issues.push(&p("check_in_every"), e);
                None
            }
        });
    Tier {
        name: name.to_owned(),
        description: t.description.clone(),
        send_window: issues.window(&p("send_window"), t.send_window.as_deref()),
        caps: issues.caps(&p("caps"), t.caps.as_ref()),
        min_gap: issues.duration(&p("min_gap"), t.min_gap.as_deref(), Duration::ZERO),
        channels,
        channel_caps,
        check_in_every,
    }
}

fn trigger(issues: &mut Issues<'_>, name: &str, o: &RawOccasion) -> Option<Trigger> {
    let p = |k: &str| format!("occasions.{name}.{k}");
    let example = "e.g. trigger = { date = \"birthday\" }, { event = \"purchase\", delay = \"2h\" } or { inactivity = \"tier\" }";
    let Some(t) = o.trigger.as_ref() else {
        issues.push(&p("trigger"), format!("missing: {example}"));
        return None;
    };
    let kinds = [t.date.is_some(), t.event.is_some(), t.inactivity.is_some()];
    if kinds.iter().filter(|k| **k).count() != 1 {
        issues.push(
            &p("trigger"),
            format!("needs exactly one of date, event, inactivity: {example}"),
        );
        return None;
    }
    if t.delay.is_some() && t.event.is_none() {
        issues.push(&p("trigger.delay"), "only event triggers take a delay");
    }
    if let Some(date) = t.date.as_deref() {
        return match date {
            "birthday" => Some(Trigger::Date(DateField::Birthday)),
            "customer_since" => Some(Trigger::Date(DateField::CustomerSince)),
            other => {
                issues.push(
                    &p("trigger.date"),
                    format!("unknown date field {other:?} (known: birthday, customer_since)"),
                );
                None
            }
        };
    }
    if let Some(kind) = t.event.as_deref() {
        if !valid_name(kind) {
            issues.push(
                &p("trigger.event"),
                "event types use lower-case letters, digits and _",
            );
            return None;
        }
        let delay = issues.duration(&p("trigger.delay"), t.delay.as_deref(), Duration::ZERO);
        return Some(Trigger::Event {
            kind: kind.to_owned(),
            delay,
        });
    }
    match t.inactivity.as_deref() {
        Some("tier") => Some(Trigger::Inactivity { every: None }),
        Some(raw) => match parse_duration(raw) {
            Ok(d) if d.as_secs() >= 3600 => Some(Trigger::Inactivity { every: Some(d) }),
            Ok(_) => {
                issues.push(&p("trigger.inactivity"), "must be at least 1h");
                None
            }
            Err(e) => {
                issues.push(
                    &p("trigger.inactivity"),
                    format!("\"tier\" (each tier's check_in_every) or a duration: {e}"),
                );
                None
            }
        },
        None => None,
    }
}

fn occasion(issues: &mut Issues<'_>, name: &str, o: &RawOccasion) -> Option<Occasion> {
    let p = |k: &str| format!("occasions.{name}.{k}");
    if !valid_name(name) {
        issues.push(
            &format!("occasions.{name}"),
            "occasion names use lower-case letters, digits and _",
        );
    }
    let trigger = trigger(issues, name, o);
    let is_event = matches!(trigger, Some(Trigger::Event { .. }));
    let schedule = match o.schedule.as_deref() {
        None if is_event => None,
        None if matches!(trigger, Some(Trigger::Inactivity { .. })) => {
            Some(cron::Schedule::from_str("0 0 * * * *").expect("valid literal"))
        }
        None => {
            issues.push(
                &p("schedule"),
                "missing: a cron expression with a seconds field, e.g. \"0 */15 * * * *\"",
            );
            None
        }
        Some(_) if is_event => {
            issues.push(
                &p("schedule"),
                "event-triggered occasions are planned when the event arrives; remove schedule",
            );
            None
        }
        Some(s) => match cron::Schedule::from_str(s) {
            Ok(sch) => Some(sch),
            Err(e) => {
                let why = e.to_string();
                let why = why.lines().next().unwrap_or("").trim().to_owned();
                issues.push(
                    &p("schedule"),
                    format!(
                        "{s:?} is not a cron expression (sec min hour day month weekday): {why}"
                    ),
                );
                None
            }
        },
    };
    let default_expiry = if is_event { 3 } else { 1 };
    let expires = issues.duration(
        &p("expires"),
        o.expires.as_deref(),
        Duration::from_secs(default_expiry * 86_400),
    );
    if expires.is_zero() {
        issues.push(&p("expires"), "must be longer than 0s");
    }
    let send_window = issues.window(&p("send_window"), o.send_window.as_deref());
    let channel = o.channel.clone().unwrap_or_else(|| "email".into());
    if channel != "email" {
        issues.push(
            &p("channel"),
            format!("unknown channel {channel:?} (known: email)"),
        );
    }
    let on_throttle = match o.on_throttle.as_deref() {
        None | Some("defer") => OnThrottle::Defer,
        Some("skip") => OnThrottle::Skip,
        Some(other) => {
            issues.push(
                &p("on_throttle"),
                format!("unknown value {other:?} (known: defer, skip)"),
            );
            OnThrottle::Defer
        }
    };
    let trigger = trigger?;
    if schedule.is_none() && !is_event {
        return None;
    }
    Some(Occasion {
        name: name.to_owned(),
        enabled: o.enabled.unwrap_or(true),
        trigger,
        schedule,
        on_throttle,
        priority: o.priority.unwrap_or(50),
        expires,
        send_window,
        channel,
    })
}

fn email(issues: &mut Issues<'_>, raw: Option<&RawEmail>) -> Option<EmailConfig> {
    let Some(raw) = raw else {
        issues.push(
            "channels.email",
            "missing: the email channel must be configured",
        );
        return None;
    };
    let (from_name, from) = match raw.from.as_deref() {
        None => {
            issues.push(
                "channels.email.from",
                "missing: e.g. \"Acme <hello@acme.example>\"",
            );
            (None, None)
        }
        Some(f) => match parse_mailbox(f) {
            Ok((n, a)) => (n, Some(a)),
            Err(e) => {
                issues.push("channels.email.from", e);
                (None, None)
            }
        },
    };
    let timeout = issues.duration(
        "channels.email.timeout",
        raw.timeout.as_deref(),
        Duration::from_secs(15),
    );
    let pool_size = issues.positive("channels.email.pool_size", raw.pool_size, 16);
    let transport = match raw.transport.as_deref().unwrap_or("outbox") {
        "outbox" => EmailTransport::Outbox {
            dir: PathBuf::from(
                raw.outbox_dir
                    .clone()
                    .unwrap_or_else(|| "data/outbox".into()),
            ),
        },
        "smtp" => {
            let tls = match raw.tls.as_deref().unwrap_or("starttls") {
                "none" => TlsMode::None,
                "starttls" => TlsMode::StartTls,
                "tls" => TlsMode::Tls,
                other => {
                    issues.push(
                        "channels.email.tls",
                        format!("unknown TLS mode {other:?} (known: none, starttls, tls)"),
                    );
                    TlsMode::StartTls
                }
            };
            let (host, port) = match raw.url.as_deref().map(parse_smtp_url) {
                Some(Ok(hp)) => hp,
                Some(Err(e)) => {
                    issues.push("channels.email.url", e);
                    (String::new(), 0)
                }
                None => {
                    issues.push(
                        "channels.email.url",
                        "missing: smtp://HOST:PORT is required when transport = \"smtp\"",
                    );
                    (String::new(), 0)
                }
            };
            EmailTransport::Smtp {
                host,
                port,
                tls,
                username_env: raw.username_env.clone(),
                password_env: raw.password_env.clone(),
                pool_size,
                timeout,
            }
        }
        other => {
            issues.push(
                "channels.email.transport",
                format!("unknown transport {other:?} (known: outbox, smtp)"),
            );
            return None;
        }
    };
    Some(EmailConfig {
        transport,
        from_name,
        from: from?,
    })
}

/// `Name <addr@host>` or a bare address.
fn parse_mailbox(s: &str) -> Result<(Option<String>, EmailAddress), String> {
    let s = s.trim();
    let (name, addr) = match (s.find('<'), s.ends_with('>')) {
        (Some(i), true) => (
            Some(s[..i].trim().trim_matches('"').to_owned()),
            &s[i + 1..s.len() - 1],
        ),
        _ => (None, s),
    };
    let addr = EmailAddress::parse(addr).map_err(|e| format!("{s:?}: {e}"))?;
    Ok((name.filter(|n| !n.is_empty()), addr))
}

/// `smtp://host[:port]`; the port defaults to 25.
fn parse_smtp_url(s: &str) -> Result<(String, u16), String> {
    // Never echo what precedes an `@`: it may be a password.
    let shown = match s.rsplit_once('@') {
        Some((_, host)) => format!("smtp://***@{host}"),
        None => s.to_owned(),
    };
    let bad = || format!("{shown:?} is not an SMTP URL (expected smtp://HOST:PORT)");
    let rest = s
        .strip_prefix("smtp://")
        .or_else(|| s.strip_prefix("smtps://"))
        .ok_or_else(bad)?;
    let rest = rest.trim_end_matches('/');
    if rest.contains('@') || rest.contains('/') {
        return Err(format!(
            "{shown:?}: put credentials in username_env / password_env, not in the URL"
        ));
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
            (h, p.parse::<u16>().map_err(|_| bad())?)
        }
        _ => (rest, 25),
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned(),
        port,
    ))
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
        lease: issues.duration("dispatch.lease", d.lease.as_deref(), secs(120)),
        reconcile_every: issues.duration(
            "dispatch.reconcile_every",
            d.reconcile_every.as_deref(),
            secs(30),
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
        let folder = dir.join(&o.name);
        let base = folder.join(format!("{}.hbs", o.channel));
        let mut variants = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for e in entries.flatten() {
                let file = e.file_name().to_string_lossy().into_owned();
                let Some(stem) = file.strip_suffix(".hbs") else {
                    continue;
                };
                if let Some((channel, tier)) = stem.split_once('.') {
                    if channel == o.channel {
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
        let all_tiers_covered = tiers.iter().all(|t| variants.contains(&t.name));
        if !base.is_file() && !all_tiers_covered {
            issues.push(
                &format!("occasions.{}", o.name),
                format!(
                    "missing template {} (or a {}.<tier>.hbs for every tier)",
                    base.display(),
                    o.channel
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls() {
        assert_eq!(
            parse_smtp_url("smtp://127.0.0.1:2525"),
            Ok(("127.0.0.1".into(), 2525))
        );
        assert_eq!(
            parse_smtp_url("smtp://mail.example.com"),
            Ok(("mail.example.com".into(), 25))
        );
        assert_eq!(parse_smtp_url("smtp://[::1]:25"), Ok(("::1".into(), 25)));
        let e = parse_smtp_url("smtp://user:Hunter2@host:25").unwrap_err();
        assert!(!e.contains("Hunter2") && e.contains("username_env"), "{e}");
        assert!(parse_smtp_url("http://x").is_err());
    }

    #[test]
    fn mailboxes() {
        let (n, a) = parse_mailbox("Acme Team <hello@acme.example>").unwrap();
        assert_eq!(
            (n.as_deref(), a.as_str()),
            (Some("Acme Team"), "hello@acme.example")
        );
        assert!(parse_mailbox("Acme <nope>").is_err());
    }
}
