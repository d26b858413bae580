//! Redis: [`Ledger`](crate::store::Ledger): planning, claims and leases, outcomes, reconciling,
//! dead letters.

use super::*;
use crate::domain::{ContactId, Touch, TouchId, TouchStatus, UnknownStatus};
use crate::store::StoreError;
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use std::collections::HashMap;

impl crate::store::Ledger for RedisStore {
    async fn plan_touches(
        &self,
        touches: &[NewTouch],
        batch_size: usize,
        now: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        let mut inserted = Vec::new();
        for chunk in touches.chunks(1000) {
            let mut inv = PLAN.prepare_invoke();
            inv.arg(&self.prefix).arg(ts(now)).arg(self.fence());
            for t in chunk {
                inv.key(self.touch_key(&t.id))
                    .key(format!("{}:{{c:{}}}:touches", self.prefix, t.contact_id));
                inv.arg(t.id.as_str())
                    .arg(t.channel.as_str())
                    .arg(t.priority)
                    .arg(t.status.as_str())
                    .arg(ts(t.scheduled_at))
                    .arg(ts(t.expires_at))
                    .arg(t.reason.as_deref().unwrap_or(""));
            }
            let new: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
            let mut new: std::collections::HashSet<String> = new.into_iter().collect();
            // The ledger rows are written; a crash before the jobs are queued leaves them
            // `planned` with no job, which the reconciler finds and re-queues.
            let mut due: std::collections::BTreeMap<i64, Vec<TouchId>> = Default::default();
            for t in chunk {
                if new.remove(t.id.as_str()) {
                    inserted.push(t.id.clone());
                    if t.status == TouchStatus::Planned {
                        due.entry(not_before(t.scheduled_at))
                            .or_default()
                            .push(t.id.clone());
                    }
                }
            }
            for (at, ids) in due {
                let at = DateTime::from_timestamp(at, 0).unwrap_or(now);
                self.push_jobs(&ids, at, batch_size).await?;
            }
        }
        Ok(inserted)
    }
    async fn get_touches(&self, ids: &[TouchId]) -> Result<Vec<Touch>, StoreError> {
        let mut ids: Vec<String> = ids.iter().map(|i| i.as_str().to_owned()).collect();
        ids.sort();
        ids.dedup();
        self.touches(ids).await
    }
    async fn touches_for_contact(&self, id: &ContactId) -> Result<Vec<Touch>, StoreError> {
        let index = format!("{}:{{c:{id}}}:touches", self.prefix);
        let ids: Vec<String> = self.conn.clone().zrange(index, 0, -1).await.map_err(q)?;
        self.touches(ids).await
    }
    async fn due_touches(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        // idx:wake holds exactly the planned touches, scored by when they are due.
        let ids: Vec<String> = self
            .conn
            .clone()
            .zrangebyscore_limit(
                format!("{}:idx:wake", self.prefix),
                "-inf",
                ts(before),
                0,
                limit as isize,
            )
            .await
            .map_err(q)?;
        let mut found = self.touches(ids).await?;
        found.retain(|t| t.status == TouchStatus::Planned);
        found.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
        Ok(found)
    }
    async fn claim(
        &self,
        ids: &[TouchId],
        owner: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Claimed, StoreError> {
        let mut inv = CLAIM.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(ts(now))
            .arg(owner)
            .arg(ts(lease_until))
            .arg(self.fence());
        for id in ids {
            inv.key(self.touch_key(id)).arg(id.as_str());
        }
        let seen = self.epoch_before();
        let (claimed, expired, epoch): (Vec<ClaimedRow>, Vec<String>, u64) =
            inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
        self.saw_epoch(seen, epoch);
        Ok(Claimed {
            touches: claimed
                .into_iter()
                .map(|(id, list, attempts)| {
                    touch_from(id, list).map(|t| Touch {
                        status: TouchStatus::Sending,
                        attempts,
                        updated_at: DateTime::from_timestamp(ts(now), 0).unwrap_or(now),
                        ..t
                    })
                })
                .collect::<Result<_, _>>()?,
            expired: expired.into_iter().map(TouchId::from_stored).collect(),
        })
    }
    async fn extend_lease(
        &self,
        ids: &[TouchId],
        owner: &str,
        until: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        let mut inv = EXTEND.prepare_invoke();
        inv.arg(&self.prefix).arg(owner).arg(ts(until));
        for id in ids {
            inv.arg(id.as_str());
        }
        let held: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
        Ok(held.into_iter().map(TouchId::from_stored).collect())
    }
    async fn record(
        &self,
        outcomes: &[Outcome],
        owner: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut inv = RECORD.prepare_invoke();
        inv.arg(&self.prefix).arg(ts(now)).arg(owner);
        for o in outcomes {
            let (status, reason, next) = outcome_args(o, now);
            let channel = match o {
                Outcome::Fallback { channel, .. } => channel.as_str(),
                _ => "",
            };
            inv.key(self.touch_key(o.id()));
            inv.arg(o.id().as_str())
                .arg(status)
                .arg(reason)
                .arg(next.map(|n| n.to_string()).unwrap_or_default())
                .arg(crate::store::counts(o))
                .arg(channel);
        }
        let seen = self.epoch_before();
        let (requeue, applied, epoch): (Vec<(String, i64)>, u64, u64) =
            inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
        self.saw_epoch(seen, epoch);
        // A retry goes back as its own job, at its own time.
        for (id, at) in requeue {
            let at = DateTime::from_timestamp(at, 0).unwrap_or(now);
            self.push_jobs(&[TouchId::from_stored(id)], at, 1).await?;
        }
        Ok(applied)
    }
    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        let mut inv = RELEASE_LEASE.prepare_invoke();
        inv.arg(&self.prefix).arg(owner);
        inv.invoke_async::<()>(&mut self.conn.clone())
            .await
            .map_err(q)
    }
    async fn reconcile(
        &self,
        now: DateTime<Utc>,
        stale_before: DateTime<Utc>,
        batch_size: usize,
    ) -> Result<Reconciled, StoreError> {
        let mut total = Reconciled::default();
        loop {
            let mut inv = RECONCILE.prepare_invoke();
            inv.arg(&self.prefix)
                .arg(ts(now))
                .arg(ts(stale_before))
                .arg(RECONCILE_STEP);
            let (expired, requeue, more): (u64, Vec<String>, u8) =
                inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
            let requeue: Vec<TouchId> = requeue.into_iter().map(TouchId::from_stored).collect();
            self.push_jobs(&requeue, now, batch_size).await?;
            total.expired += expired;
            total.requeued += requeue.len() as u64;
            if more == 0 {
                break;
            }
        }
        self.prune_done_jobs().await?;
        total.dead_jobs = self.quarantine_jobs().await?;
        Ok(total)
    }
    async fn status_counts(&self) -> Result<HashMap<TouchStatus, u64>, StoreError> {
        let found: HashMap<String, i64> = self
            .conn
            .clone()
            .hgetall(format!("{}:stats:status", self.prefix))
            .await
            .map_err(q)?;
        let mut out = HashMap::new();
        for (s, n) in found {
            if n > 0 {
                out.insert(
                    s.parse()
                        .map_err(|e: UnknownStatus| StoreError::Corrupt(e.to_string()))?,
                    n as u64,
                );
            }
        }
        Ok(out)
    }
    async fn dead_letters(
        &self,
        after: Option<&(DateTime<Utc>, TouchId)>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let from = after.map_or(i64::MIN, |(at, _)| ts(*at));
        let mut ids = Vec::with_capacity(limit);
        let mut offset = 0isize;
        // Members with one score sort by id, as the keyset does: skip those at or
        // before `after`, page on until `limit` are found.
        'pages: loop {
            let page: Vec<(String, f64)> = redis::cmd("ZRANGE")
                .arg(self.failed_key())
                .arg(from)
                .arg("+inf")
                .arg("BYSCORE")
                .arg("LIMIT")
                .arg(offset)
                .arg(limit.max(1) + 1)
                .arg("WITHSCORES")
                .query_async(&mut conn)
                .await
                .map_err(q)?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as isize;
            for (id, score) in page {
                let skip = after.is_some_and(|(at, last)| {
                    score as i64 == ts(*at) && id.as_str() <= last.as_str()
                });
                if !skip {
                    ids.push(id);
                    if ids.len() == limit {
                        break 'pages;
                    }
                }
            }
        }
        self.touches(ids).await
    }
    async fn revive(
        &self,
        ids: &[TouchId],
        now: DateTime<Utc>,
    ) -> Result<Vec<TouchId>, StoreError> {
        let mut revived = Vec::new();
        for chunk in ids.chunks(500) {
            let mut inv = REVIVE.prepare_invoke();
            inv.arg(&self.prefix).arg(ts(now));
            for id in chunk {
                inv.key(self.touch_key(id)).arg(id.as_str());
            }
            let done: Vec<String> = inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
            revived.extend(done.into_iter().map(TouchId::from_stored));
        }
        self.push_jobs(&revived, now, 1).await?;
        Ok(revived)
    }
    async fn settle_due(&self, before: DateTime<Utc>, reason: &str) -> Result<u64, StoreError> {
        let mut total = 0;
        loop {
            let mut inv = SETTLE_DUE.prepare_invoke();
            inv.arg(&self.prefix)
                .arg(ts(before))
                .arg(reason)
                .arg(Utc::now().timestamp())
                .arg(RECONCILE_STEP);
            let (n, more): (u64, u8) = inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
            total += n;
            if more == 0 {
                return Ok(total);
            }
        }
    }
}
