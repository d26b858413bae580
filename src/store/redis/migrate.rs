//! Upgrades of data an earlier rapport wrote: the schema version (`PREFIX:schema`) and
//! the backfills that bring each index up to it.

use super::*;

impl RedisStore {
    /// Brings data written by an earlier rapport up to date, once (`PREFIX:schema`).
    /// 2: every contact has an entry in `idx:seen` (its last interaction, which drives
    /// check-ins and tells the policy scripts the contact exists); contacts stored before
    /// get one at the time of the upgrade, as a new contact would.
    pub(super) async fn migrate(&self) -> Result<(), StoreError> {
        const SCHEMA: u32 = 4;
        let mut conn = self.conn.clone();
        let key = format!("{}:schema", self.prefix);
        let at: Option<u32> = conn.get(&key).await.map_err(q)?;
        if at.is_some_and(|v| v >= SCHEMA) {
            return Ok(());
        }
        let (seen, phones) = (at.is_none_or(|v| v < 2), at.is_none_or(|v| v < 4));
        if seen || phones {
            self.backfill_contacts(seen, phones).await?;
        }
        self.backfill_indexes().await?;
        conn.set::<_, _, ()>(&key, SCHEMA).await.map_err(q)
    }

    /// Schema 3: failed touches stored before the dead-letter index existed join it.
    /// Schema 4: so do sent touches the awaiting index (their response window).
    async fn backfill_indexes(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:{{c:*}}:touch:*", self.prefix))
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(q)?;
            if !keys.is_empty() {
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.cmd("HMGET")
                        .arg(k)
                        .arg("status")
                        .arg("updated_at")
                        .arg("sent_at")
                        .arg("responded_at");
                }
                type Found = (Option<String>, Option<i64>, Option<i64>, Option<i64>);
                let found: Vec<Found> = pipe.query_async(&mut conn).await.map_err(q)?;
                let mut add = redis::pipe();
                for (k, (status, at, sent, responded)) in keys.iter().zip(found) {
                    let Some((_, id)) = k.split_once(":touch:") else {
                        continue;
                    };
                    match status.as_deref() {
                        Some("failed") => {
                            add.zadd(self.failed_key(), id, at.unwrap_or(0));
                        }
                        Some("sent") if responded.is_none() => {
                            add.zadd(
                                format!("{}:idx:awaiting", self.prefix),
                                id,
                                sent.or(at).unwrap_or(0),
                            );
                        }
                        _ => {}
                    }
                }
                add.query_async::<()>(&mut conn).await.map_err(q)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Contacts stored before an index existed join it, in one pass over them:
    /// schema 2, the check-in clock (started at the upgrade, as for a new contact);
    /// schema 4, the phone index (inbound SMS finds its sender through it).
    async fn backfill_contacts(&self, seen: bool, phones: bool) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let now = Utc::now().timestamp();
        let mut cursor = 0u64;
        loop {
            let (next, ids): (u64, Vec<String>) = redis::cmd("SSCAN")
                .arg(format!("{}:idx:contacts", self.prefix))
                .arg(cursor)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(q)?;
            let mut pipe = redis::pipe();
            if seen && !ids.is_empty() {
                let mut cmd = redis::cmd("ZADD");
                cmd.arg(format!("{}:idx:seen", self.prefix)).arg("NX");
                for id in &ids {
                    cmd.arg(now).arg(id);
                }
                pipe.add_command(cmd);
            }
            if phones && !ids.is_empty() {
                let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
                for c in self.contacts(&refs).await? {
                    if let Some(p) = &c.phone {
                        let key = format!("{}:idx:phone:{}", self.prefix, p.as_str());
                        pipe.sadd(key, c.id.as_str());
                    }
                }
            }
            if !pipe.is_empty() {
                pipe.query_async::<()>(&mut conn).await.map_err(q)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}
