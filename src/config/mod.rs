//! Configuration: `raw` (serde shape) -> `validate` (every problem at once, with the
//! file and key path) -> [`Config`]. Connecting to anything happens later, in `app`.
//! The validated settings live by section: `relationship` (tiers, occasions, caps),
//! `channels`, `storage`, `dispatch`; `error` is how problems are reported.

mod channels;
mod dispatch;
mod duration;
mod error;
mod layers;
mod raw;
mod relationship;
mod storage;
mod validate;

use crate::domain::Channel;
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use chrono_tz::Tz;

pub use channels::{
    DkimAlgorithm, DkimKey, EmailConfig, EmailTransport, Rate, SmsConfig, SmsTransport, TlsMode,
    WebhookConfig,
};
pub use dispatch::{DispatchConfig, SEND_MARGIN};
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigIssue};
pub use layers::Layered;
pub use relationship::{Cap, DateField, Occasion, OnThrottle, Tier, Trigger};
pub use storage::{StorageBackend, StorageConfig, redact_url};

use crate::domain::SendWindow;

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
pub struct Defaults {
    pub timezone: Tz,
    pub send_window: SendWindow,
    pub tier: String,
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
    pub fn rate(&self, channel: Channel) -> Option<Rate> {
        match channel {
            Channel::Email => self.email.rate,
            Channel::Sms => self.sms.as_ref().and_then(|s| s.rate),
            Channel::Webhook => self.webhook.as_ref().and_then(|w| w.rate),
        }
    }

    /// Whether `channel` is configured at all (email always is).
    pub fn has_channel(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => true,
            Channel::Sms => self.sms.is_some(),
            Channel::Webhook => self.webhook.is_some(),
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
