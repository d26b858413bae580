//! Redis: [`Relationships`](crate::store::Relationships): what each contact taught us, and its
//! responses.

use super::*;
use crate::domain::{ContactId, Touch};
use crate::store::fields::corrupt;
use crate::store::relationships::NOTES_KEPT;
use crate::store::{LearnOutcome, Relationship, ResponseRecord, Settle, StatKey, StoreError};
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use std::collections::HashMap;

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

impl crate::store::Relationships for RedisStore {
    async fn relationship(
        &self,
        id: &ContactId,
    ) -> Result<Option<crate::store::Relationship>, StoreError> {
        let found: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(self.rel_key(id))
            .await
            .map_err(q)?;
        decode_relationship(&found)
    }
    async fn relationships(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, crate::store::Relationship>, StoreError> {
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
    async fn learn(
        &self,
        l: &crate::store::Learn,
        now: DateTime<Utc>,
    ) -> Result<crate::store::LearnOutcome, StoreError> {
        let learn = l;
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
            Some("applied") => Ok(LearnOutcome::Applied),
            Some("conflict") => Ok(LearnOutcome::Conflict),
            Some("nocontact") => Ok(LearnOutcome::NoContact),
            Some("duplicate") => {
                let known = out.get(1).ok_or_else(|| corrupt("learn", "no record"))?;
                let known: ResponseRecord =
                    serde_json::from_str(known).map_err(|e| corrupt("response", e))?;
                Ok(LearnOutcome::Duplicate(Box::new(known)))
            }
            other => Err(corrupt("learn", format!("unexpected answer {other:?}"))),
        }
    }
    async fn responses_for_contact(
        &self,
        id: &ContactId,
    ) -> Result<Vec<crate::store::ResponseRecord>, StoreError> {
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
    async fn awaiting(
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
    async fn stats(
        &self,
    ) -> Result<Vec<(crate::store::StatKey, crate::store::StatField, u64)>, StoreError> {
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
}
