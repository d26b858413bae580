//! `[storage]`: the backend, its URL and the Redis key prefix.

use super::Issues;
use crate::config::{StorageBackend, StorageConfig, raw::RawConfig, redact_url};

pub(super) fn storage(issues: &mut Issues<'_>, raw: &RawConfig) -> StorageConfig {
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
    let shown = redact_url(&url);
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
