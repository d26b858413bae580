//! The config file's shape, as serde sees it. Everything is optional here: defaults and
//! checks live in `validate`, which reports every problem at once. Unknown keys are
//! collected by `serde_ignored` rather than `deny_unknown_fields`, which would stop at
//! the first one.

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawConfig {
    pub storage: RawStorage,
    pub defaults: RawDefaults,
    pub brand: RawBrand,
    pub templates: RawTemplates,
    pub tiers: IndexMap<String, RawTier>,
    pub occasions: IndexMap<String, RawOccasion>,
    pub channels: RawChannels,
    pub dispatch: RawDispatch,
    pub policy: RawPolicy,
    pub api: RawApi,
    pub learning: RawLearning,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawLearning {
    pub enabled: Option<bool>,
    pub response_window: Option<String>,
    pub half_life: Option<String>,
    pub weights: Option<IndexMap<String, f64>>,
    pub fatigue_after: Option<u32>,
    pub sunset_after: Option<u32>,
    pub max_backoff: Option<u32>,
    pub min_hour_observations: Option<u32>,
    pub hold: Option<String>,
    pub rules: Option<Vec<RawRule>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawRule {
    pub from: Option<String>,
    pub to: Option<String>,
    pub responses: Option<u32>,
    pub within: Option<String>,
    pub silent_for: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawApi {
    pub listen: Option<String>,
    pub tokens_env: Option<String>,
    pub max_body: Option<String>,
    pub public_url: Option<String>,
    pub signing_secret_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawPolicy {
    pub caps: Option<Vec<RawCap>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawCap {
    pub count: Option<u32>,
    pub per: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawStorage {
    pub backend: Option<String>,
    pub url: Option<String>,
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawDefaults {
    pub timezone: Option<String>,
    pub send_window: Option<String>,
    pub tier: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawBrand {
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawTemplates {
    pub dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawTier {
    pub description: Option<String>,
    pub send_window: Option<String>,
    pub caps: Option<Vec<RawCap>>,
    pub min_gap: Option<String>,
    pub channels: Option<Vec<String>>,
    pub channel_caps: Option<IndexMap<String, Vec<RawCap>>>,
    pub check_in_every: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawOccasion {
    pub enabled: Option<bool>,
    pub trigger: Option<RawTrigger>,
    pub schedule: Option<String>,
    pub priority: Option<u32>,
    pub expires: Option<String>,
    pub send_window: Option<String>,
    pub channel: Option<String>,
    pub channels: Option<Vec<String>>,
    pub transactional: Option<bool>,
    pub on_throttle: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawTrigger {
    pub date: Option<String>,
    pub event: Option<String>,
    pub delay: Option<String>,
    pub inactivity: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawChannels {
    pub email: Option<RawEmail>,
    pub sms: Option<RawSms>,
    pub webhook: Option<RawWebhook>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawSms {
    pub transport: Option<String>,
    pub outbox_dir: Option<String>,
    pub base_url: Option<String>,
    pub account_sid: Option<String>,
    pub auth_token_env: Option<String>,
    pub from: Option<String>,
    pub messaging_service_sid: Option<String>,
    pub timeout: Option<String>,
    pub rate: Option<String>,
    pub allow_private: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawWebhook {
    pub url: Option<String>,
    pub secret_env: Option<String>,
    pub previous_secret_env: Option<String>,
    pub timeout: Option<String>,
    pub retry_schedule: Option<Vec<String>>,
    pub max_age: Option<String>,
    pub rate: Option<String>,
    pub allow_private: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawDkim {
    pub selector: Option<String>,
    pub domain: Option<String>,
    pub key_file: Option<String>,
    pub algorithm: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawEmail {
    pub transport: Option<String>,
    pub from: Option<String>,
    pub outbox_dir: Option<String>,
    pub url: Option<String>,
    pub tls: Option<String>,
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    pub pool_size: Option<u32>,
    pub timeout: Option<String>,
    pub rate: Option<String>,
    pub list_unsubscribe_mailto: Option<String>,
    pub track_clicks: Option<bool>,
    pub dkim: Option<RawDkim>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct RawDispatch {
    pub workers: Option<u32>,
    pub batch_size: Option<u32>,
    pub concurrency: Option<u32>,
    pub max_attempts: Option<u32>,
    pub max_age: Option<String>,
    pub backoff: Option<String>,
    pub backoff_max: Option<String>,
    pub lease: Option<String>,
    pub reconcile_every: Option<String>,
    pub drain_timeout: Option<String>,
    pub poll_interval: Option<String>,
}
