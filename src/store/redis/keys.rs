//! Redis: [`RequestKeys`](crate::store::RequestKeys): `Idempotency-Key`s of API requests.

use super::*;
use crate::store::fields::corrupt;
use crate::store::{Idempotency, KeptAnswer, StoreError};
use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use std::sync::LazyLock;
use std::time::Duration;

/// How long a key taken by a request still being answered holds.
const IN_PROGRESS: Duration = Duration::from_secs(300);

#[derive(serde::Serialize, serde::Deserialize)]
struct Kept {
    fingerprint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    body: Option<String>,
}

impl crate::store::RequestKeys for RedisStore {
    async fn begin_key(
        &self,
        key: &str,
        fingerprint: &str,
        _ttl: Duration,
        _now: DateTime<Utc>,
    ) -> Result<crate::store::Idempotency, StoreError> {
        let k = self.idem_key(key);
        let mine = serde_json::to_string(&Kept {
            fingerprint: fingerprint.to_owned(),
            status: None,
            body: None,
        })
        .map_err(|e| corrupt("idempotency", e))?;
        let mut conn = self.conn.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&k)
            .arg(&mine)
            .arg("NX")
            .arg("EX")
            .arg(IN_PROGRESS.as_secs())
            .query_async(&mut conn)
            .await
            .map_err(q)?;
        if taken.is_some() {
            return Ok(Idempotency::Began);
        }
        let Some(raw): Option<String> = conn.get(&k).await.map_err(q)? else {
            // It expired between the two commands: as good as in progress; the client
            // retries.
            return Ok(Idempotency::InProgress {
                fingerprint: fingerprint.to_owned(),
            });
        };
        let kept: Kept = serde_json::from_str(&raw).map_err(|e| corrupt("idempotency", e))?;
        Ok(match (kept.status, kept.body) {
            (Some(status), Some(body)) => Idempotency::Done(KeptAnswer {
                fingerprint: kept.fingerprint,
                status,
                body,
            }),
            _ => Idempotency::InProgress {
                fingerprint: kept.fingerprint,
            },
        })
    }
    async fn keep_answer(
        &self,
        key: &str,
        answer: &crate::store::KeptAnswer,
        ttl: Duration,
        _now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let kept = serde_json::to_string(&Kept {
            fingerprint: answer.fingerprint.clone(),
            status: Some(answer.status),
            body: Some(answer.body.clone()),
        })
        .map_err(|e| corrupt("idempotency", e))?;
        self.conn
            .clone()
            .set_ex::<_, _, ()>(self.idem_key(key), kept, ttl.as_secs().max(1))
            .await
            .map_err(q)
    }
    async fn forget_key(&self, key: &str) -> Result<(), StoreError> {
        // Only a key still in progress: an answer kept is never forgotten early.
        static FORGET: LazyLock<Script> = LazyLock::new(|| {
            Script::new(
                "local v = redis.call('GET', KEYS[1]) if v and not cjson.decode(v)['status'] then \
                 return redis.call('DEL', KEYS[1]) end return 0",
            )
        });
        let _: i64 = FORGET
            .prepare_invoke()
            .key(self.idem_key(key))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        Ok(())
    }
}
