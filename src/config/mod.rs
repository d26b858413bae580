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
use std::path::{Path, PathBuf};

pub use channels::{
    DkimAlgorithm, DkimKey, EmailConfig, EmailTransport, Rate, SmsConfig, SmsTransport, TlsMode,
    WebhookConfig,
};
pub use dispatch::{DispatchConfig, SEND_MARGIN};
pub use duration::format_duration;
pub(crate) use duration::parse_duration;
pub use error::{ConfigError, ConfigIssue};
use layers::Layered;
pub use relationship::{Cap, DateField, Defaults, Occasion, OnThrottle, Rules, Tier, Trigger};
pub use storage::{StorageBackend, StorageConfig, redact_url};

/// The commented default, compiled in so the binary runs from any directory.
pub const DEFAULT_TOML: &str = include_str!("../../config/rapport.toml");

/// Where the default layer comes from: `config/rapport.toml` in the working directory
/// when there is one (ops edit it in place), else the copy compiled into the binary.
pub const DEFAULT_PATH: &str = "config/rapport.toml";

#[derive(Debug, Clone)]
pub struct Config {
    pub storage: StorageConfig,
    /// What the policy and the planner decide by.
    pub rules: Rules,
    pub brand_name: String,
    pub templates_dir: PathBuf,
    pub email: EmailConfig,
    pub dispatch: DispatchConfig,
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

    /// The provider rate limit of `channel`, if one is set.
    pub fn rate(&self, channel: Channel) -> Option<Rate> {
        match channel {
            Channel::Email => self.email.rate,
            Channel::Sms => self.sms.as_ref().and_then(|s| s.rate),
            Channel::Webhook => self.webhook.as_ref().and_then(|w| w.rate),
        }
    }
}
