//! The relationship policy's side of the Redis store: events, idle contacts, policy
//! records and reservations (the scripts are in `lua/`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use redis::AsyncCommands;

use super::{ADD_EVENT, POLICY_RECORDS, RESERVE, RedisStore, q, touch_from, ts};
use crate::{
    domain::{Contact, ContactId, Event, EventId, Touch, TouchId, TouchStatus},
    policy::Slot,
    store::{PolicyRecord, Reservation, StoreError, fields::corrupt},
};

pub(super) async fn due_touches(
    store: &RedisStore,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Touch>, StoreError> {
    // idx:wake holds exactly the planned touches, scored by when they are due.
    let ids: Vec<String> = store
        .conn
        .clone()
        .zrangebyscore_limit(
            format!("{}:idx:wake", store.prefix),
            "-inf",
            ts(before),
            0,
            limit as isize,
        )
        .await
        .map_err(q)?;
    let mut found = store.touches(ids).await?;
    found.retain(|t| t.status == TouchStatus::Planned);
    found.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
    Ok(found)
}

pub(super) async fn add_event(
    store: &RedisStore,
    e: &Event,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let json = serde_json::json!({
        "id": e.id.as_str(), "kind": e.kind, "at": ts(e.at),
        "data": serde_json::Value::Object(e.data.clone()), "recorded_at": ts(now),
    });
    let mut inv = ADD_EVENT.prepare_invoke();
    inv.arg(&store.prefix)
        .arg(ts(now))
        .arg(e.contact_id.as_str())
        .arg(e.id.as_str())
        .arg(ts(e.at))
        .arg(json.to_string());
    match inv
        .invoke_async::<i64>(&mut store.conn.clone())
        .await
        .map_err(q)?
    {
        -1 => Err(StoreError::UnknownContact(e.contact_id.clone())),
        n => Ok(n == 1),
    }
}

pub(super) async fn events_for_contact(
    store: &RedisStore,
    id: &ContactId,
) -> Result<Vec<Event>, StoreError> {
    #[derive(serde::Deserialize)]
    struct Stored {
        id: String,
        kind: String,
        at: i64,
        data: serde_json::Map<String, serde_json::Value>,
    }
    let raw: HashMap<String, String> = store
        .conn
        .clone()
        .hgetall(format!("{}:{{c:{id}}}:events", store.prefix))
        .await
        .map_err(q)?;
    let mut out = raw
        .into_values()
        .map(|json| {
            let s: Stored = serde_json::from_str(&json).map_err(|e| corrupt("event", e))?;
            Ok(Event {
                contact_id: id.clone(),
                id: EventId::parse(&s.id).map_err(|e| corrupt("event id", e))?,
                kind: s.kind,
                at: DateTime::from_timestamp(s.at, 0)
                    .ok_or_else(|| corrupt("event at", "out of range"))?,
                data: s.data,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    out.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
    Ok(out)
}

pub(super) async fn idle_contacts(
    store: &RedisStore,
    before: DateTime<Utc>,
    after: Option<&(DateTime<Utc>, ContactId)>,
    limit: usize,
) -> Result<Vec<(Contact, DateTime<Utc>)>, StoreError> {
    let key = format!("{}:idx:seen", store.prefix);
    let mut conn = store.conn.clone();
    // By rank: the page after the previous one's last contact (Redis orders equal
    // scores by member, as (time, id)). If that contact has moved or gone since,
    // start at its old time again: contacts tied with it may be read twice (planning
    // is insert-if-absent), never skipped.
    let start: isize = match after {
        None => 0,
        Some((at, id)) => {
            let score: Option<f64> = conn.zscore(&key, id.as_str()).await.map_err(q)?;
            let rank: Option<isize> = match score {
                Some(s) if s as i64 == ts(*at) => conn.zrank(&key, id.as_str()).await.map_err(q)?,
                _ => None,
            };
            match rank {
                Some(r) => r + 1,
                None => conn
                    .zcount(&key, "-inf", format!("({}", ts(*at)))
                    .await
                    .map_err(q)?,
            }
        }
    };
    let found: Vec<(String, f64)> = conn
        .zrange_withscores(&key, start, start + limit as isize - 1)
        .await
        .map_err(q)?;
    let found: Vec<(String, f64)> = found
        .into_iter()
        .take_while(|(_, score)| *score as i64 <= ts(before))
        .collect();
    let seen: HashMap<&str, f64> = found.iter().map(|(id, s)| (id.as_str(), *s)).collect();
    let ids: Vec<&str> = found.iter().map(|(id, _)| id.as_str()).collect();
    let contacts = store.contacts(&ids).await?;
    contacts
        .into_iter()
        .map(|c| {
            let at = seen.get(c.id.as_str()).copied().unwrap_or_default() as i64;
            let at = DateTime::from_timestamp(at, 0)
                .ok_or_else(|| corrupt("last interaction", "out of range"))?;
            Ok((c, at))
        })
        .collect()
}

pub(super) async fn policy_records(
    store: &RedisStore,
    ids: &[ContactId],
    since: DateTime<Utc>,
    skip: &[TouchId],
) -> Result<HashMap<ContactId, PolicyRecord>, StoreError> {
    type Row = (String, u64, String, Vec<String>, Vec<(String, Vec<String>)>);
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut inv = POLICY_RECORDS.prepare_invoke();
        inv.arg(&store.prefix).arg(ts(since)).arg(skip.len());
        for id in skip {
            inv.arg(id.as_str());
        }
        for id in chunk {
            inv.arg(id.as_str());
        }
        let rows: Vec<Row> = inv.invoke_async(&mut store.conn.clone()).await.map_err(q)?;
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
                    channel: channel.to_owned(),
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

pub(super) async fn reserve(
    store: &RedisStore,
    reservations: &[Reservation],
    owner: &str,
) -> Result<Vec<bool>, StoreError> {
    if reservations.is_empty() {
        return Ok(Vec::new());
    }
    let mut inv = RESERVE.prepare_invoke();
    inv.arg(&store.prefix).arg(owner);
    for r in reservations {
        inv.arg(r.touch.as_str())
            .arg(r.contact.as_str())
            .arg(&r.channel)
            .arg(ts(r.at))
            .arg(r.version);
    }
    let taken: Vec<u8> = inv.invoke_async(&mut store.conn.clone()).await.map_err(q)?;
    Ok(taken.into_iter().map(|t| t == 1).collect())
}
