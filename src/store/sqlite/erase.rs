//! Erasure on SQLite: the contact's rows go, its addresses stay only as suppression
//! hashes, and afterwards none of its values can be read back from the files.
//!
//! Deleting a row does not remove its bytes: SQLite leaves them in the page's free space
//! or on the freelist, and the WAL still holds every page image written since the last
//! checkpoint. `secure_delete` (set on every connection in [`SqliteStore::open`]) zeroes
//! what a delete frees in the database file; the truncating checkpoint after the delete
//! copies those zeroed pages into the file and empties the WAL.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{BUSY_TIMEOUT, SqliteStore, q, relationships::suppress, rows};
use crate::{
    domain::ContactId,
    store::{StoreError, Suppression},
};

/// A checkpoint waits this long for other connections (another `rapport` process
/// reading the file) to leave the WAL, per try; short, because the pool's one
/// connection serves the send path meanwhile.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(100);
/// Tries, with a pause of [`CHECKPOINT_WAIT`] between them: about two seconds in all.
const CHECKPOINT_TRIES: u32 = 10;

pub(super) async fn erase_contact(
    store: &SqliteStore,
    id: &ContactId,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
    let Some(row) = sqlx::query("SELECT * FROM contacts WHERE id = ?")
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(q)?
    else {
        return Ok(false);
    };
    let contact = rows::contact(&row)?;
    let erased = Suppression::all("erased");
    suppress(&mut tx, store, &contact, &erased, now.timestamp()).await?;
    for sql in [
        "DELETE FROM touches WHERE contact_id = ?",
        "DELETE FROM events WHERE contact_id = ?",
        "DELETE FROM responses WHERE contact_id = ?",
        "DELETE FROM relationships WHERE contact_id = ?",
        "DELETE FROM contacts WHERE id = ?",
        // A kept `Idempotency-Key` answer about the contact repeats what it was sent
        // (an event's data, a batch line's error quoting a field). Dropping it means a
        // retry with that key is carried out again, as it would be without a key.
        "DELETE FROM idempotency WHERE body IS NOT NULL AND json_valid(body) \
         AND EXISTS (SELECT 1 FROM json_tree(idempotency.body) \
                     WHERE key IN ('contact', 'id') AND atom = ?1)",
    ] {
        sqlx::query(sql)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await
            .map_err(q)?;
    }
    tx.commit().await.map_err(q)?;
    if !checkpoint(store).await {
        // The rows are gone; their bytes leave the WAL at a later checkpoint.
        tracing::warn!(
            contact = id.as_str(),
            "erased, but the WAL could not be checkpointed (another connection kept reading); \
             the erased values stay in the -wal file until a later checkpoint"
        );
    }
    Ok(true)
}

/// Copies the WAL into the database file and truncates it, retrying while another
/// connection reads from it. `false`: it could not complete.
async fn checkpoint(store: &SqliteStore) -> bool {
    for attempt in 0..CHECKPOINT_TRIES {
        if attempt > 0 {
            tokio::time::sleep(CHECKPOINT_WAIT).await;
        }
        match try_checkpoint(store).await {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint after an erasure failed");
                return false;
            }
        }
    }
    false
}

async fn try_checkpoint(store: &SqliteStore) -> Result<bool, StoreError> {
    let mut conn = store.pool.acquire().await.map_err(q)?;
    // TRUNCATE waits on the busy handler for readers to leave the WAL; with the
    // pool's 30 s timeout it would hold the only connection that long.
    let timeout =
        |d: Duration| sqlx::AssertSqlSafe(format!("PRAGMA busy_timeout = {}", d.as_millis()));
    sqlx::query(timeout(CHECKPOINT_WAIT))
        .execute(&mut *conn)
        .await
        .map_err(q)?;
    let done = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .fetch_one(&mut *conn)
        .await;
    let restored = sqlx::query(timeout(BUSY_TIMEOUT)).execute(&mut *conn).await;
    if restored.is_err() {
        // A connection left with the short timeout would fail writes under contention.
        conn.close_on_drop();
    }
    // (busy, frames in the WAL, frames checkpointed): busy = 1 when readers kept it
    // from finishing.
    let row = done.map_err(q)?;
    Ok(row.try_get::<i64, _>(0).map_err(q)? == 0)
}
