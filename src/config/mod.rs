//! Configuration: `raw` (serde shape) -> `validate` (every problem at once, with the
//! file and key path) -> [`Config`]. Connecting to anything happens later, in `app`.

mod duration;
mod layers;
mod raw;
mod validate;

use std::{
    fmt,
    path::{Path, PathBuf},
    time::Duration,
};

use chrono_tz::Tz;

pub use duration::{format_duration, parse_duration};
pub use layers::Layered;

use crate::domain::{EmailAddress, SendWindow};

/// The commented default, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/rapport.toml");

/// Where the default layer comes from: `config/rapport.toml` in the working directory
/// when there is one (ops edit it in place), else the copy compiled into the binary.
pub const DEFAULT_PATH: &str = "config/rapport.toml";

#[derive(Debug, Clone)]
pub struct Config {
    pub storage: StorageConfig,
    pub defaults: Defaults,
    pub brand_name: String,
    pub templates_dir: PathBuf,
    /// Closest relationship first.
    pub tiers: Vec<Tier>,
    pub occasions: Vec<Occasion>,
    pub email: EmailConfig,
    pub dispatch: DispatchConfig,
    /// Caps on every contact whatever its tier (`[policy] caps`).
    pub contact_caps: Vec<Cap>,
    /// `None`: no SMS channel configured.
    pub sms: Option<SmsConfig>,
    /// `None`: no webhook endpoint configured.
    pub webhook: Option<WebhookConfig>,
    pub api: ApiConfig,
    pub learning: LearningSettings,
}

/// `[learning]`.
#[derive(Debug, Clone)]
pub struct LearningSettings {
    /// `false`: responses are recorded and act on consent (an unsubscribe, a STOP, a
    /// complaint always does), but nothing else is learned: channel, hour, cadence and
    /// tier stay as configured.
    pub enabled: bool,
    pub model: crate::learning::LearningConfig,
}

/// `[api]`: how the outside world reaches this daemon.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Where the HTTP API listens (`None`: `listen = ""`, no API in this process).
    pub listen: Option<std::net::SocketAddr>,
    /// The environment variable holding the bearer tokens (comma-separated; several so
    /// they can be rotated).
    pub tokens_env: String,
    /// The largest request body accepted, in bytes (413 beyond).
    pub max_body: usize,
    /// The https base URL of the public endpoints (one-click unsubscribe links, Twilio
    /// status callbacks), without a trailing slash.
    pub public_url: Option<String>,
    /// The environment variable holding the key that signs unsubscribe tokens; `None`:
    /// a random key generated once and kept in the store.
    pub signing_secret_env: Option<String>,
}

#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub transport: SmsTransport,
    pub rate: Option<Rate>,
}

#[derive(Debug, Clone)]
pub enum SmsTransport {
    /// Each SMS becomes a file in `dir`.
    Outbox { dir: PathBuf },
    /// A Twilio-compatible Messages API.
    Twilio {
        base_url: String,
        account_sid: String,
        /// The name of the environment variable holding the auth token.
        auth_token_env: String,
        sender: crate::channels::sms::SmsSender,
        timeout: Duration,
        allow_private: bool,
    },
}

/// `[channels.webhook]`: the one endpoint webhook touches are posted to.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    pub url: String,
    /// Environment variables holding `whsec_` secrets: the current one, and the
    /// previous one while receivers rotate (both signatures are sent).
    pub secret_env: String,
    pub previous_secret_env: Option<String>,
    pub timeout: Duration,
    /// The wait before each retry (Standard Webhooks' schedule by default); once it is
    /// used up, or `max_age` after the touch was due, the touch fails.
    pub retry_schedule: Vec<Duration>,
    pub max_age: Duration,
    pub rate: Option<Rate>,
    pub allow_private: bool,
}

/// At most `count` touches in any window of length `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cap {
    pub count: u32,
    pub per: Duration,
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {}", self.count, format_duration(self.per))
    }
}

/// The channels rapport knows (a tier's `channels`, `channel_caps`).
pub const CHANNELS: [&str; 3] = ["email", "sms", "webhook"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageBackend {
    Sqlite,
    Redis,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub backend: StorageBackend,
    pub url: String,
    /// Redis only: every key starts with `<prefix>:`, so several deployments (or tests)
    /// can share one Redis.
    pub prefix: String,
}

impl StorageConfig {
    /// The URL as it may be shown: a password in it is replaced by `***`.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }
}

/// `scheme://user:secret@host` -> `scheme://user:***@host`; anything else unchanged.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{path}")
            } else {
                format!("{scheme}://***@{host}{path}")
            }
        }
        None => url.to_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct Defaults {
    pub timezone: Tz,
    pub send_window: SendWindow,
    pub tier: String,
}

#[derive(Debug, Clone)]
pub struct Tier {
    pub name: String,
    pub description: Option<String>,
    pub send_window: Option<SendWindow>,
    /// Caps on all touches to one contact of this tier, whatever the channel.
    pub caps: Vec<Cap>,
    /// The least time between any two touches to one contact.
    pub min_gap: Duration,
    /// Channels its contacts may be reached on (`None`: any).
    pub channels: Option<Vec<String>>,
    /// Caps per channel, on top of `caps`.
    pub channel_caps: Vec<(String, Vec<Cap>)>,
    /// A check-in is due when the last interaction is this long ago (`None`: never).
    pub check_in_every: Option<Duration>,
}

impl Tier {
    pub fn allows_channel(&self, channel: &str) -> bool {
        self.channels
            .as_ref()
            .is_none_or(|c| c.iter().any(|x| x == channel))
    }
}

/// Which contact date a yearly occasion follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateField {
    Birthday,
    CustomerSince,
}

impl DateField {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Birthday => "birthday",
            Self::CustomerSince => "customer_since",
        }
    }
}

/// What makes an occasion due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// Yearly, on the contact's local date (`trigger = { date = "birthday" }`).
    Date(DateField),
    /// `delay` after each event of `kind` (`trigger = { event = "purchase", delay = "2h" }`),
    /// once per event id.
    Event { kind: String, delay: Duration },
    /// When the last interaction is longer ago than the cadence: the tier's
    /// `check_in_every`, or `every` when the occasion sets its own
    /// (`trigger = { inactivity = "tier" }` or `{ inactivity = "45d" }`).
    Inactivity { every: Option<Duration> },
}

/// What a touch does when the caps, the minimum gap or a higher-priority touch stop it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnThrottle {
    /// Wait for the earliest instant the caps allow (if before its expiry).
    Defer,
    /// Give up on this occurrence, recording why.
    Skip,
}

#[derive(Debug, Clone)]
pub struct Occasion {
    pub name: String,
    pub enabled: bool,
    pub trigger: Trigger,
    /// When its planner runs; `None` for event-triggered occasions (planned when the
    /// event arrives).
    pub schedule: Option<cron::Schedule>,
    pub priority: u32,
    /// How long the touch stays sendable: after the start of the contact's local day
    /// (dates, check-ins), or after the touch is due (events).
    pub expires: Duration,
    pub send_window: Option<SendWindow>,
    /// The channels to try, in order: a touch goes out on the first one its tier allows,
    /// its contact has an address and consent for; a permanent failure moves it on.
    pub channels: Vec<String>,
    /// Transactional mail carries no `List-Unsubscribe`; everything else does.
    pub transactional: bool,
    pub on_throttle: OnThrottle,
}

impl Occasion {
    /// The date field of a yearly occasion.
    pub fn date_field(&self) -> Option<DateField> {
        match self.trigger {
            Trigger::Date(f) => Some(f),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    None,
    StartTls,
    Tls,
}

#[derive(Clone)]
pub enum EmailTransport {
    /// Each message becomes a `.eml` file in `dir`: the embedded default.
    Outbox { dir: PathBuf },
    Smtp {
        host: String,
        port: u16,
        tls: TlsMode,
        /// Names of environment variables, never the secrets themselves.
        username_env: Option<String>,
        password_env: Option<String>,
        pool_size: u32,
        timeout: Duration,
    },
}

impl fmt::Debug for EmailTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outbox { dir } => write!(f, "Outbox({})", dir.display()),
            Self::Smtp {
                host, port, tls, ..
            } => write!(f, "Smtp({host}:{port}, {tls:?})"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EmailConfig {
    pub transport: EmailTransport,
    pub from_name: Option<String>,
    pub from: EmailAddress,
    /// A mailto target for `List-Unsubscribe`, beside the https one.
    pub list_unsubscribe_mailto: Option<EmailAddress>,
    /// Sign outgoing mail with DKIM.
    pub dkim: Option<DkimKey>,
    /// The provider's rate limit.
    pub rate: Option<Rate>,
    /// Links in email bodies go through `PUBLIC_URL/c/TOKEN`, which records a click
    /// and redirects (needs `api.public_url`).
    pub track_clicks: bool,
}

/// A DKIM signing key: `[channels.email.dkim]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkimKey {
    pub selector: String,
    pub domain: String,
    /// PEM: an RSA private key (PKCS#1 or PKCS#8), or an ed25519 key (base64).
    pub key_file: PathBuf,
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

/// A provider rate limit: `count` messages per `per` (`rate = "50/s"`), spaced evenly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.count, format_duration(self.per))
    }
}

impl Rate {
    /// The time between two messages.
    pub fn interval(&self) -> Duration {
        self.per / self.count.max(1)
    }
}

/// A send starts only if its claim's lease outlasts the provider call (the channel's
/// timeout) by at least this much: room for two hosts' clocks to disagree and for the
/// outcome to be recorded.
pub const SEND_MARGIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct DispatchConfig {
    pub workers: u32,
    pub batch_size: u32,
    pub concurrency: u32,
    pub max_attempts: u32,
    pub max_age: Duration,
    pub backoff: Duration,
    pub backoff_max: Duration,
    /// How long a claim holds its touches without renewal. Renewed every quarter lease
    /// while the batch works; what a dead process held is taken over once it lapses.
    pub lease: Duration,
    pub reconcile_every: Duration,
    pub drain_timeout: Duration,
    pub poll_interval: Duration,
}

impl DispatchConfig {
    /// The shortest lease under which a send taking up to `timeout` still starts between
    /// two renewals (every quarter lease): three quarters of it must hold the call and
    /// [`SEND_MARGIN`]. Whole seconds, rounded up.
    pub fn min_lease(timeout: Duration) -> Duration {
        let need = (timeout + SEND_MARGIN).as_millis() * 4;
        Duration::from_secs(need.div_ceil(3 * 1000) as u64)
    }
}

/// One problem with the configuration: where it came from, which key, what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub source: String,
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.source, self.path, self.message)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "invalid configuration ({} problem(s)):",
            self.issues.len()
        )?;
        for i in &self.issues {
            writeln!(f, "  {i}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn single(source: &str, path: &str, message: impl Into<String>) -> Self {
        Self {
            issues: vec![ConfigIssue {
                source: source.to_owned(),
                path: path.to_owned(),
                message: message.into(),
            }],
        }
    }
}

impl Config {
    /// Loads the layers from the process environment and validates them.
    pub fn load(extra: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with(Path::new(DEFAULT_PATH), extra, std::env::vars())
    }

    /// Loads with an explicit default path and environment (tests).
    pub fn load_with(
        default_path: &Path,
        extra: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut layered = Layered::default();
        let fail = |e: String| ConfigError::single("config", "(file)", e);
        if default_path.is_file() {
            layered.merge_file(default_path).map_err(fail)?;
        } else {
            layered
                .merge_toml(DEFAULT_TOML, "built-in config/rapport.toml")
                .map_err(fail)?;
        }
        if let Some(p) = extra {
            layered.merge_file(p).map_err(fail)?;
        }
        layered.merge_env(env).map_err(fail)?;
        validate::validate(&layered)
    }

    pub fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.name == name)
    }

    pub fn occasion(&self, name: &str) -> Option<&Occasion> {
        self.occasions.iter().find(|o| o.name == name)
    }

    /// The check-in cadence of `occasion` for a contact of `tier` (`None`: the occasion
    /// is not an inactivity one, or the tier has no cadence).
    pub fn check_in_every(&self, occasion: &Occasion, tier: &str) -> Option<Duration> {
        match occasion.trigger {
            Trigger::Inactivity { every: Some(e) } => Some(e),
            Trigger::Inactivity { every: None } => self.tier(tier).and_then(|t| t.check_in_every),
            _ => None,
        }
    }

    /// The provider rate limit of `channel`, if one is set.
    pub fn rate(&self, channel: &str) -> Option<Rate> {
        match channel {
            "email" => self.email.rate,
            "sms" => self.sms.as_ref().and_then(|s| s.rate),
            "webhook" => self.webhook.as_ref().and_then(|w| w.rate),
            _ => None,
        }
    }

    /// Whether `channel` is configured at all (email always is).
    pub fn has_channel(&self, channel: &str) -> bool {
        match channel {
            "email" => true,
            "sms" => self.sms.is_some(),
            "webhook" => self.webhook.is_some(),
            _ => false,
        }
    }

    /// The send window for a touch: the occasion's own, else the tier's, else the default.
    pub fn send_window(&self, occasion: &Occasion, tier: &str) -> SendWindow {
        occasion
            .send_window
            .or_else(|| self.tier(tier).and_then(|t| t.send_window))
            .unwrap_or(self.defaults.send_window)
    }
}
