//! SQLite: [`Queue`](crate::queue::Queue): due jobs handed to the workers, and the workers.

use super::*;

/// Queues jobs for `ids` (chunks of `batch_size`) at `run_at` inside the caller's transaction.
pub(super) async fn push_jobs(
    tx: &mut sqlx::SqliteConnection,
    ids: &[TouchId],
    run_at: DateTime<Utc>,
    batch_size: usize,
) -> Result<(), StoreError> {
    let mut tasks = Vec::new();
    for chunk in ids.chunks(batch_size.max(1)) {
        let bytes = DispatchJob::new(chunk.to_vec()).encode();
        tasks.push(
            TaskBuilder::new(bytes)
                .run_at_timestamp(not_before(run_at).max(0) as u64)
                .max_attempts(1)
                .build(),
        );
    }
    apalis_sqlite::queries::push_tasks(tx, DISPATCH_QUEUE, &tasks)
        .await
        .map_err(|e| StoreError::Query(Box::new(e)))
}

/// Moves aside queue rows apalis cannot decode: its fetch takes the next due row with
/// one `UPDATE ... RETURNING *`, and a row whose id is not a ULID (or whose counts are
/// not integers) fails that statement, which rolls back and picks the same row next time:
/// every fetch of every worker fails and nothing else is sent. Such rows are marked
/// `Killed` (apalis' dead state, kept for inspection) with the reason.
pub(super) async fn quarantine_jobs(
    tx: &mut sqlx::SqliteConnection,
    now: i64,
) -> Result<u64, StoreError> {
    let moved: Vec<String> = sqlx::query_scalar(
        "UPDATE Jobs SET status = 'Killed', done_at = ?2, lock_by = NULL, \
         last_result = json_object('Err', 'dead-lettered by rapport: undecodable queue row (' || \
           CASE WHEN length(id) != 26 OR upper(id) GLOB '*[^0-9ABCDEFGHJKMNPQRSTVWXYZ]*' \
                THEN 'its id is not a ULID' WHEN job IS NULL THEN 'no payload' \
                ELSE 'a count that is not an integer' END || ')') \
         WHERE job_type = ?1 AND status IN ('Pending', 'Queued', 'Running', 'Failed') AND ( \
           length(id) != 26 OR upper(id) GLOB '*[^0-9ABCDEFGHJKMNPQRSTVWXYZ]*' \
           OR job IS NULL OR typeof(attempts) != 'integer' OR typeof(run_at) != 'integer' \
           OR (max_attempts IS NOT NULL AND typeof(max_attempts) != 'integer') \
           OR (priority IS NOT NULL AND typeof(priority) != 'integer')) \
         RETURNING id",
    )
    .bind(DISPATCH_QUEUE)
    .bind(now)
    .fetch_all(&mut *tx)
    .await
    .map_err(q)?;
    for id in &moved {
        // The id is shown escaped: it is whatever bytes the row held.
        tracing::error!(job = ?id, "dead-lettered an undecodable queue row (reason in Jobs.last_result)");
    }
    Ok(moved.len() as u64)
}

impl crate::queue::Queue for SqliteStore {
    fn monitor<S: crate::store::Store>(
        &self,
        dispatcher: std::sync::Arc<crate::dispatch::Dispatcher<S>>,
        cfg: &crate::config::DispatchConfig,
        health: crate::queue::worker::QueueHealth,
    ) -> apalis::prelude::Monitor {
        crate::queue::worker::sqlite_monitor(self.pool().clone(), dispatcher, cfg, health)
    }
}
