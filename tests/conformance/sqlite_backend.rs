//! The SQLite instantiation: a fresh database file per test, and the queue read straight
//! from apalis' `Jobs` table.

use std::sync::Arc;

use chrono::DateTime;
use rapport::{
    domain::TouchId,
    queue::{DISPATCH_QUEUE, DispatchJob},
    store::SqliteStore,
};
use sqlx::Row;
use tempfile::TempDir;

use crate::{Backend, QueuedJob};

/// A store in its own temp dir; the dir lives as long as the returned guard.
pub(crate) async fn open() -> (Arc<SqliteStore>, TempDir) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let url = format!("sqlite://{}/t.db", dir.path().display());
    let store = SqliteStore::open(&url)
        .await
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    (Arc::new(store), dir)
}

impl Backend for SqliteStore {
    async fn queued(&self) -> Vec<QueuedJob> {
        let rows = sqlx::query("SELECT job, run_at FROM Jobs WHERE job_type = ? ORDER BY rowid")
            .bind(DISPATCH_QUEUE)
            .fetch_all(self.pool())
            .await
            .expect("read the Jobs table");
        rows.iter()
            .map(|r| {
                let bytes: Vec<u8> = r.get("job");
                let job = DispatchJob::decode_bytes(&bytes).expect("job payload is a DispatchJob");
                QueuedJob {
                    touches: job.touches().to_vec(),
                    run_at: DateTime::from_timestamp(r.get("run_at"), 0).expect("run_at"),
                }
            })
            .collect()
    }

    async fn lease_owner(&self, id: &TouchId) -> Option<String> {
        sqlx::query_scalar("SELECT lease_owner FROM touches WHERE id = ?")
            .bind(id.as_str())
            .fetch_one(self.pool())
            .await
            .unwrap_or_else(|e| panic!("touch {id}: {e}"))
    }

    async fn push_raw_job(&self, bytes: Vec<u8>) {
        // As an old row would sit there: due since the epoch, so it is fetched first.
        sqlx::query(
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, metadata) \
             VALUES (?1, ?2, ?3, 'Pending', 0, 1, 0, 0, '{}')",
        )
        .bind(bytes)
        .bind(ulid::Ulid::new().to_string())
        .bind(DISPATCH_QUEUE)
        .execute(self.pool())
        .await
        .expect("insert a raw job");
    }

    async fn dead_jobs(&self) -> usize {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM Jobs WHERE job_type = ? AND status = 'Killed'",
        )
        .bind(DISPATCH_QUEUE)
        .fetch_one(self.pool())
        .await
        .expect("count dead jobs");
        n as usize
    }

    async fn dump(&self) -> String {
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
                .fetch_all(self.pool())
                .await
                .expect("list tables");
        let mut out = String::new();
        for table in tables {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM \"{table}\"")))
                .fetch_all(self.pool())
                .await
                .expect("read a table");
            for row in rows {
                out.push_str(&table);
                for i in 0..row.len() {
                    let text = row
                        .try_get::<Option<String>, _>(i)
                        .ok()
                        .flatten()
                        .or_else(|| {
                            row.try_get::<Option<Vec<u8>>, _>(i)
                                .ok()
                                .flatten()
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                        })
                        .or_else(|| {
                            row.try_get::<Option<i64>, _>(i)
                                .ok()
                                .flatten()
                                .map(|n| n.to_string())
                        })
                        .unwrap_or_default();
                    out.push(' ');
                    out.push_str(&text);
                }
                out.push('\n');
            }
        }
        out
    }
}
