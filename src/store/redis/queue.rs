//! Redis: [`Queue`](crate::queue::Queue): due jobs handed to the workers, and the workers.

use super::*;

impl RedisStore {
    /// Moves queue jobs apalis cannot decode out of its way (see `quarantine.lua`), with
    /// their ids logged. Returns how many.
    pub(super) async fn quarantine_jobs(&self) -> Result<u64, StoreError> {
        let moved: Vec<String> = QUARANTINE
            .key(self.queue.active_jobs_list())
            .key(self.queue.workers_set())
            .key(self.queue.job_data_hash())
            .key(self.queue.dead_jobs_set())
            .key(format!("{}:queue:quarantine", self.prefix))
            .arg(&self.prefix)
            .arg(self.queue.inflight_jobs_set())
            .arg(self.queue.job_meta_hash())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        for id in &moved {
            tracing::error!(job = %id, "dead-lettered an undecodable queue job (reason in PREFIX:queue:quarantine)");
        }
        Ok(moved.len() as u64)
    }

    /// apalis keeps the payload of every finished job; rapport's ledger already holds
    /// what matters, so finished jobs are dropped (dead ones stay, as dead letters).
    /// Never apalis' `vacuum()`: it also deletes jobs waiting for a retry.
    pub(super) async fn prune_done_jobs(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        loop {
            let ids: Vec<String> = redis::cmd("SPOP")
                .arg(self.queue.done_jobs_set())
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(q)?;
            if ids.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            pipe.hdel(self.queue.job_data_hash(), &ids).ignore();
            for id in &ids {
                pipe.del(format!("{}:{id}", self.queue.job_meta_hash()))
                    .ignore();
            }
            pipe.query_async::<()>(&mut conn).await.map_err(q)?;
            if ids.len() < 1000 {
                return Ok(());
            }
        }
    }
}

impl crate::queue::Queue for RedisStore {
    async fn pump(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inv = RELEASE.prepare_invoke();
        inv.key(self.delayed_key())
            .key(self.releasing_key())
            .key(self.queue.scheduled_jobs_set())
            .key(self.queue.active_jobs_list())
            .arg(&self.prefix)
            .arg(ts(now))
            .arg(RELEASE_STEP)
            .arg(RELEASE_BACKLOG);
        let members: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
        if members.is_empty() {
            return Ok(0);
        }
        let tasks: Vec<_> = members
            .iter()
            .map(|m| {
                let (key, payload) = m.split_once(' ').unwrap_or((m.as_str(), ""));
                TaskBuilder::new(payload.as_bytes().to_vec())
                    .idempotency_key(key)
                    .max_attempts(1)
                    .build()
            })
            .collect();
        let mut conn = self.conn.clone();
        apalis_redis::queries::push_tasks(&mut conn, &self.queue, &tasks)
            .await
            .map_err(|e| StoreError::Query(Box::new(e)))?;
        conn.zrem::<_, _, ()>(self.releasing_key(), &members)
            .await
            .map_err(q)?;
        Ok(members.len() as u64)
    }
    fn monitor<S: crate::store::Store>(
        &self,
        dispatcher: std::sync::Arc<crate::dispatch::Dispatcher<S>>,
        cfg: &crate::config::DispatchConfig,
        health: crate::queue::worker::QueueHealth,
    ) -> apalis::prelude::Monitor {
        crate::queue::worker::redis_monitor(
            self.connection(),
            self.queue().clone(),
            dispatcher,
            cfg,
            health,
        )
    }
}
