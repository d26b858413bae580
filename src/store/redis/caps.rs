//! Redis: [`Caps`](crate::store::Caps): what the policy reads about each contact, and the
//! reservations against its caps.

use super::*;
use crate::domain::{ContactId, TouchId};
use crate::policy::Slot;
use crate::store::fields::corrupt;
use crate::store::{PolicyRecord, Reservation, StoreError};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

impl crate::store::Caps for RedisStore {
    async fn policy_records(
        &self,
        ids: &[ContactId],
        since: DateTime<Utc>,
        skip: &[TouchId],
    ) -> Result<HashMap<ContactId, PolicyRecord>, StoreError> {
        type Row = (String, u64, String, Vec<String>, Vec<(String, Vec<String>)>);
        let mut out = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let mut inv = POLICY_RECORDS.prepare_invoke();
            inv.arg(&self.prefix).arg(ts(since)).arg(skip.len());
            for id in skip {
                inv.arg(id.as_str());
            }
            for id in chunk {
                inv.arg(id.as_str());
            }
            let rows: Vec<Row> = inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
            for (id, version, seen, slots, touches) in rows {
                let id = ContactId::parse(&id).map_err(|e| corrupt("contact id", e))?;
                let mut record = PolicyRecord {
                    version,
                    last_interaction: seen
                        .parse::<f64>()
                        .ok()
                        .and_then(|s| DateTime::from_timestamp(s as i64, 0)),
                    ..PolicyRecord::default()
                };
                for pair in slots.chunks(2) {
                    let [member, score] = pair else { break };
                    let (touch, channel) = member
                        .split_once(' ')
                        .ok_or_else(|| corrupt("slot", member))?;
                    let at = score.parse::<f64>().map_err(|e| corrupt("slot", e))? as i64;
                    record.slots.push(Slot {
                        touch: TouchId::from_stored(touch.to_owned()),
                        at: DateTime::from_timestamp(at, 0)
                            .ok_or_else(|| corrupt("slot", "out of range"))?,
                        channel: channel.parse().map_err(|e| corrupt("slot", e))?,
                    });
                }
                for (tid, hash) in touches {
                    if !hash.is_empty() {
                        record.touches.push(touch_from(tid, hash)?);
                    }
                }
                out.insert(id, record);
            }
        }
        Ok(out)
    }
    async fn reserve(
        &self,
        reservations: &[Reservation],
        owner: &str,
    ) -> Result<Vec<bool>, StoreError> {
        if reservations.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = RESERVE.prepare_invoke();
        inv.arg(&self.prefix).arg(owner);
        for r in reservations {
            inv.arg(r.touch.as_str())
                .arg(r.contact.as_str())
                .arg(r.channel.as_str())
                .arg(ts(r.at))
                .arg(r.version);
        }
        let taken: Vec<u8> = inv.invoke_async(&mut self.conn.clone()).await.map_err(q)?;
        Ok(taken.into_iter().map(|t| t == 1).collect())
    }
}
