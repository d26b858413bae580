//! The embedded backend: contacts, the touch ledger and the apalis queue in one SQLite
//! file, so planning a touch and queueing its job commit in the same transaction.

mod caps;
mod contacts;
mod coordination;
mod erase;
mod keys;
mod ledger;
mod queue;
mod relationships;
mod rows;

use queue::{push_jobs, quarantine_jobs};

use std::{collections::HashMap, str::FromStr, time::Duration};

use apalis_core::task::builder::TaskBuilder;
use chrono::{DateTime, Utc};
use sqlx::{
    SqlitePool,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::{Claimed, ContactUpsert, Coordination, Outcome, Reconciled, StoreError};
use crate::{
    config::DateField,
    domain::{ContactId, MonthDay, NewTouch, TouchId, TouchStatus, time::not_before},
    queue::{DISPATCH_QUEUE, DispatchJob},
};

/// How long a statement waits for the file's lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn q(e: sqlx::Error) -> StoreError {
    StoreError::Query(Box::new(e))
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Named locks ([`Store::try_lock`]): one process owns an SQLite file, so they live
    /// in memory: name -> (token, held until).
    locks: std::sync::Arc<std::sync::Mutex<HashMap<String, (String, std::time::Instant)>>>,
    /// Provider rate limits ([`Store::rate_reserve`]), in memory for the same reason.
    rates: std::sync::Arc<crate::ratelimit::LocalLimiter>,
    /// The key suppression hashes are made with (a setting, generated once).
    pepper: std::sync::Arc<[u8]>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database, sets the durability pragmas on every
    /// pooled connection and runs both migration sets.
    ///
    /// Why not apalis' `SqliteStorage::setup()`: it sets `synchronous = OFF` (on whichever
    /// connection runs it), which can lose or corrupt data on power loss.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let unavailable = |message: String| StoreError::Unavailable {
            url: url.to_owned(),
            message,
        };
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        if path != ":memory:" {
            if let Some(parent) = std::path::Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent)
                    .map_err(|e| unavailable(format!("cannot create {}: {e}", parent.display())))?;
            }
        }
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .pragma("temp_store", "MEMORY")
            // Erasure: what a delete frees is zeroed, so an erased contact's values
            // cannot be read back from the file (see `erase.rs`).
            .pragma("secure_delete", "ON");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(opts)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        apalis_sqlite::SqliteStorage::migrations()
            .run(&pool)
            .await
            .map_err(|e| unavailable(format!("queue migrations: {e}")))?;
        let mut ours = sqlx::migrate!("src/store/sqlite/migrations");
        ours.dangerous_set_table_name("_rapport_migrations");
        ours.run(&pool)
            .await
            .map_err(|e| unavailable(format!("migrations: {e}")))?;
        let mut store = Self {
            pool,
            locks: Default::default(),
            rates: Default::default(),
            pepper: std::sync::Arc::from(&[][..]),
        };
        let pepper = Coordination::init_setting(
            &store,
            crate::store::relationships::PEPPER_SETTING,
            &crate::store::relationships::new_pepper(),
        )
        .await?;
        store.pepper = std::sync::Arc::from(pepper.as_bytes());
        Ok(store)
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Ids as a JSON array, for `json_each(?)`: one bound value however many ids.
fn json_list<'a>(ids: impl Iterator<Item = &'a str>) -> String {
    serde_json::to_string(&ids.collect::<Vec<_>>()).unwrap_or_else(|_| "[]".into())
}

pub(super) fn ids_json(ids: &[TouchId]) -> String {
    json_list(ids.iter().map(TouchId::as_str))
}

pub(super) fn contact_ids_json(ids: &[ContactId]) -> String {
    json_list(ids.iter().map(ContactId::as_str))
}
