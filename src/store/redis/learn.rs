//! The learning side of the Redis store. Per contact: `{c:<id>}:rel` (a hash: version,
//! state, notes) and `{c:<id>}:responses` (response id -> record). Global:
//! `idx:awaiting` (sent touches without a response, scored by when they were sent),
//! `stats:learn` (the learner's counters), `suppressed` (address hash -> reason),
//! `idx:phone:<E.164>` (the contacts with that number) and
//! `idem:<key>` (answers kept for Idempotency-Key, with their own expiry).

use std::{collections::HashMap, sync::LazyLock, time::Duration};

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};

use super::{RedisStore, q, script};
use crate::{
    domain::{ContactId, Touch},
    store::{
        Idempotency, KeptAnswer, Learn, Learned, Relationship, ResponseRecord, Settle, StatField,
        StatKey, StoreError, Suppression,
        fields::corrupt,
        relationship::{NOTES_KEPT, suppressed_hashes},
    },
};

pub(super) static LEARN: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/learn.lua")));
pub(super) static ERASE: LazyLock<Script> = LazyLock::new(|| script(include_str!("lua/erase.lua")));

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

impl RedisStore {
    fn rel_key(&self, id: &ContactId) -> String {
        format!("{}:{{c:{id}}}:rel", self.prefix)
    }

    fn idem_key(&self, key: &str) -> String {
        format!("{}:idem:{key}", self.prefix)
    }

    pub(super) async fn relationship_in(
        &self,
        id: &ContactId,
    ) -> Result<Option<Relationship>, StoreError> {
        let found: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(self.rel_key(id))
            .await
            .map_err(q)?;
        decode_relationship(&found)
    }

    pub(super) async fn relationships_in(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, Relationship>, StoreError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(1000) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.hgetall(self.rel_key(id));
            }
            let found: Vec<HashMap<String, String>> =
                pipe.query_async(&mut self.conn.clone()).await.map_err(q)?;
            for (id, fields) in chunk.iter().zip(found) {
                if let Some(rel) = decode_relationship(&fields)? {
                    out.insert(id.clone(), rel);
                }
            }
        }
        Ok(out)
    }

    pub(super) async fn learn_in(
        &self,
        learn: &Learn,
        now: DateTime<Utc>,
    ) -> Result<Learned, StoreError> {
        let hashes = match &learn.suppress {
            Some(s) => self.hashes_of(&learn.contact, s).await?,
            None => Vec::new(),
        };
        let state = learn
            .state
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| corrupt("relationship state", e))?;
        let response = learn
            .response
            .as_ref()
            .map(|r| {
                serde_json::to_string(r)
                    .map(|record| serde_json::json!({"id": r.id, "record": record}))
            })
            .transpose()
            .map_err(|e| corrupt("response", e))?;
        let change = serde_json::json!({
            "state": state,
            "notes": learn.notes,
            "tier": learn.tier,
            "consent": learn.consent.iter().map(|(c, v)| serde_json::json!([c, i64::from(*v)])).collect::<Vec<_>>(),
            "suppress": learn.suppress,
            "hashes": hashes,
            "response": response,
            "settle": learn.settle.as_ref().map(|(t, s)| serde_json::json!([t.as_str(), match s {
                Settle::Responded => "responded",
                Settle::Ignored => "ignored",
            }])),
            "interaction": learn.interaction.map(|t| t.timestamp()),
            "stats": learn.stats.iter().map(|d| d.key.encode(d.field)).collect::<Vec<_>>(),
        });
        let out: Vec<String> = LEARN
            .prepare_invoke()
            .arg(&self.prefix)
            .arg(now.timestamp())
            .arg(learn.contact.as_str())
            .arg(learn.version)
            .arg(change.to_string())
            .arg(NOTES_KEPT)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        match out.first().map(String::as_str) {
            Some("applied") => Ok(Learned::Applied),
            Some("conflict") => Ok(Learned::Conflict),
            Some("nocontact") => Ok(Learned::NoContact),
            Some("duplicate") => {
                let known = out.get(1).ok_or_else(|| corrupt("learn", "no record"))?;
                let known: ResponseRecord =
                    serde_json::from_str(known).map_err(|e| corrupt("response", e))?;
                Ok(Learned::Duplicate(Box::new(known)))
            }
            other => Err(corrupt("learn", format!("unexpected answer {other:?}"))),
        }
    }

    async fn hashes_of(&self, id: &ContactId, s: &Suppression) -> Result<Vec<String>, StoreError> {
        Ok(match self.contacts(&[id.as_str()]).await?.pop() {
            Some(c) => suppressed_hashes(&self.pepper, &c, s),
            None => Vec::new(),
        })
    }

    pub(super) async fn responses_in(
        &self,
        id: &ContactId,
    ) -> Result<Vec<ResponseRecord>, StoreError> {
        let found: Vec<String> = self
            .conn
            .clone()
            .hvals(format!("{}:{{c:{id}}}:responses", self.prefix))
            .await
            .map_err(q)?;
        let mut out = found
            .iter()
            .map(|r| serde_json::from_str(r).map_err(|e| corrupt("response", e)))
            .collect::<Result<Vec<ResponseRecord>, _>>()?;
        out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        Ok(out)
    }

    pub(super) async fn awaiting_in(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(format!("{}:idx:awaiting", self.prefix))
            .arg("-inf")
            .arg(before.timestamp())
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(0)
            .arg(limit)
            .query_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        self.touches(ids).await
    }

    pub(super) async fn stats_in(&self) -> Result<Vec<(StatKey, StatField, u64)>, StoreError> {
        let found: HashMap<String, i64> = self
            .conn
            .clone()
            .hgetall(format!("{}:stats:learn", self.prefix))
            .await
            .map_err(q)?;
        let mut out: Vec<_> = found
            .into_iter()
            .filter_map(|(name, n)| {
                let (key, field) = StatKey::decode(&name)?;
                Some((key, field, n.max(0) as u64))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    pub(super) async fn erase_in(
        &self,
        id: &ContactId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let hashes = self.hashes_of(id, &Suppression::all("erased")).await?;
        let done: i64 = ERASE
            .prepare_invoke()
            .arg(&self.prefix)
            .arg(now.timestamp())
            .arg(id.as_str())
            .arg(hashes)
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(q)?;
        Ok(done == 1)
    }

    pub(super) async fn begin_key_in(
        &self,
        key: &str,
        fingerprint: &str,
    ) -> Result<Idempotency, StoreError> {
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

    pub(super) async fn keep_answer_in(
        &self,
        key: &str,
        answer: &KeptAnswer,
        ttl: Duration,
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

    pub(super) async fn forget_key_in(&self, key: &str) -> Result<(), StoreError> {
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

/// A relationship hash as `HGETALL` returns it (`None`: there is none).
fn decode_relationship(
    found: &HashMap<String, String>,
) -> Result<Option<Relationship>, StoreError> {
    if found.is_empty() {
        return Ok(None);
    }
    let version = found
        .get("version")
        .map(|v| {
            v.parse::<u64>()
                .map_err(|e| corrupt("relationship version", e))
        })
        .transpose()?
        .unwrap_or(0);
    let state = match found.get("state") {
        Some(s) => serde_json::from_str(s).map_err(|e| corrupt("relationship state", e))?,
        None => Default::default(),
    };
    let notes = match found.get("notes") {
        Some(s) => serde_json::from_str(s).map_err(|e| corrupt("relationship notes", e))?,
        None => Vec::new(),
    };
    Ok(Some(Relationship {
        version,
        state,
        notes,
    }))
}
