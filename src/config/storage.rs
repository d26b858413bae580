//! `[storage]`: which backend keeps the ledger, and how its URL may be shown.

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
