//! The channels' side of the Redis store: consent changes from providers, the daemon's
//! own settings (`<prefix>:setting:<name>`), and dead letters (`<prefix>:idx:failed`,
//! failed touch ids scored by when they failed).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::{RedisStore, q, script, ts};
use crate::{
    domain::{ContactId, Touch, TouchId},
    store::StoreError,
};

pub(super) static SET_CONSENT: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/set_consent.lua")));
pub(super) static REVIVE: LazyLock<Script> =
    LazyLock::new(|| script(include_str!("lua/revive.lua")));

impl RedisStore {
    fn setting_key(&self, name: &str) -> String {
        format!("{}:setting:{name}", self.prefix)
    }

    pub(super) fn failed_key(&self) -> String {
        format!("{}:idx:failed", self.prefix)
    }

    pub(super) async fn set_consent_in(
        &self,
        contact: &ContactId,
        channel: &str,
        consent: bool,
    ) -> Result<bool, StoreError> {
        let field = match channel {
            "email" => "email_consent",
            "sms" => "sms_consent",
            other => {
                return Err(StoreError::Query(
                    format!("no consent is kept for channel {other:?}").into(),
                ));
            }
        };
        let found: i64 = SET_CONSENT
            .prepare_invoke()
            .key(self.contact_key(contact.as_str()))
            .arg(&self.prefix)
            .arg(field)
            .arg(i64::from(consent))
            .arg(Utc::now().timestamp())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        Ok(found == 1)
    }

    pub(super) async fn setting_in(&self, name: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .clone()
            .get(self.setting_key(name))
            .await
            .map_err(q)
    }

    pub(super) async fn init_setting_in(
        &self,
        name: &str,
        value: &str,
    ) -> Result<String, StoreError> {
        let key = self.setting_key(name);
        let mut conn = self.conn.clone();
        let _: bool = conn.set_nx(&key, value).await.map_err(q)?;
        let now: Option<String> = conn.get(&key).await.map_err(q)?;
        now.ok_or_else(|| StoreError::Query(format!("setting {name} vanished").into()))
    }

    pub(super) async fn set_setting_in(&self, name: &str, value: &str) -> Result<(), StoreError> {
        self.conn
            .clone()
            .set::<_, _, ()>(self.setting_key(name), value)
            .await
            .map_err(q)
    }

    pub(super) async fn dead_letters_in(
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

    pub(super) async fn revive_in(
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
}
