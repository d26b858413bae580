//! SQLite: [`Caps`](crate::store::Caps): what the policy reads about each contact, and the
//! reservations against its caps.

use super::*;
use crate::domain::{Channel, ContactId, TouchId};
use crate::policy::Slot;
use crate::store::fields::{Fields, corrupt};
use crate::store::{PolicyRecord, Reservation, StoreError};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::HashMap;

impl crate::store::Caps for SqliteStore {
    async fn policy_records(
        &self,
        ids: &[ContactId],
        since: DateTime<Utc>,
        skip: &[TouchId],
    ) -> Result<HashMap<ContactId, PolicyRecord>, StoreError> {
        let json = contact_ids_json(ids);
        let since = since.timestamp();
        // One read transaction, so the three reads agree with each other.
        let mut tx = self.pool.begin().await.map_err(q)?;
        let mut out = HashMap::new();
        for r in sqlx::query(
            "SELECT id, policy_version, last_interaction_at FROM contacts \
             WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(&json)
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?
        {
            let id = ContactId::parse(&r.required_text("id")?).map_err(|e| corrupt("id", e))?;
            out.insert(
                id,
                PolicyRecord {
                    version: r.required_int("policy_version")? as u64,
                    last_interaction: r.instant("last_interaction_at")?,
                    ..PolicyRecord::default()
                },
            );
        }
        for r in sqlx::query(
            "SELECT id, contact_id, channel, slot_at FROM touches \
             WHERE contact_id IN (SELECT value FROM json_each(?1)) AND slot_at >= ?2 \
             ORDER BY slot_at, id",
        )
        .bind(&json)
        .bind(since)
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?
        {
            let contact = ContactId::parse(&r.required_text("contact_id")?)
                .map_err(|e| corrupt("contact_id", e))?;
            if let Some(p) = out.get_mut(&contact) {
                p.slots.push(Slot {
                    touch: TouchId::from_stored(r.required_text("id")?),
                    at: r.required_instant("slot_at")?,
                    channel: r
                        .parsed("channel", str::parse::<Channel>)?
                        .ok_or_else(|| corrupt("channel", "missing"))?,
                });
            }
        }
        for r in sqlx::query(
            "SELECT * FROM touches WHERE contact_id IN (SELECT value FROM json_each(?1)) \
             AND scheduled_at >= ?2 AND id NOT IN (SELECT value FROM json_each(?3)) \
             ORDER BY scheduled_at, id",
        )
        .bind(&json)
        .bind(since)
        .bind(ids_json(skip))
        .fetch_all(&mut *tx)
        .await
        .map_err(q)?
        {
            let t = rows::touch(&r)?;
            if let Some(p) = out.get_mut(&t.contact_id) {
                p.touches.push(t);
            }
        }
        tx.commit().await.map_err(q)?;
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
        // The first reservation of each contact in the call (almost always its only one)
        // is checked and taken in one statement for all of them: statement by statement
        // a batch would cost two round trips to SQLite's thread per touch. The others,
        // which name the versions after the first, then go one by one, in order.
        let mut firsts = std::collections::HashSet::new();
        let (first, rest): (Numbered<'_>, Numbered<'_>) = reservations
            .iter()
            .enumerate()
            .partition(|(_, r)| firsts.insert(&r.contact));
        let mut out = vec![false; reservations.len()];
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        reserve_firsts(&mut tx, &first, owner, &mut out).await?;
        // A contact's reservations are decided in a chain, each assuming the ones
        // before it were taken: once one is refused, the rest of that contact's are too
        // (another worker's reservation may have made a later version match).
        let refused: std::collections::HashSet<&ContactId> = first
            .iter()
            .filter(|(i, _)| !out[*i])
            .map(|(_, r)| &r.contact)
            .collect();
        reserve_rest(&mut tx, rest, refused, owner, &mut out).await?;
        tx.commit().await.map_err(q)?;
        Ok(out)
    }
}

/// Reservations with their positions in the call.
type Numbered<'a> = Vec<(usize, &'a Reservation)>;

/// Takes the places of the first reservation of each contact (`first`) in one statement,
/// and moves each contact whose place was taken to its next version. `out[i]`: whether
/// reservation `i` was taken.
async fn reserve_firsts(
    tx: &mut sqlx::SqliteConnection,
    first: &Numbered<'_>,
    owner: &str,
    out: &mut [bool],
) -> Result<(), StoreError> {
    let json: Vec<serde_json::Value> = first
        .iter()
        .map(|(_, r)| {
            serde_json::json!({"touch": r.touch.as_str(), "contact": r.contact.as_str(),
                "channel": r.channel, "at": r.at.timestamp(), "version": r.version})
        })
        .collect();
    let taken = sqlx::query(
        "UPDATE touches SET slot_at = j.at, channel = j.channel \
         FROM (SELECT value ->> 'touch' AS touch, value ->> 'contact' AS contact, \
               value ->> 'channel' AS channel, value ->> 'at' AS at, value ->> 'version' AS version \
               FROM json_each(?1)) AS j JOIN contacts AS c ON c.id = j.contact \
         WHERE touches.id = j.touch AND touches.contact_id = j.contact AND touches.status = 'sending' \
         AND touches.lease_owner = ?2 AND c.policy_version = j.version \
         RETURNING touches.id AS id, touches.contact_id AS contact",
    )
    .bind(serde_json::Value::Array(json).to_string())
    .bind(owner)
    .fetch_all(&mut *tx)
    .await
    .map_err(q)?;
    // (RETURNING sees only the updated table: map touch ids back to positions.)
    let position: HashMap<&str, usize> =
        first.iter().map(|(i, r)| (r.touch.as_str(), *i)).collect();
    let mut bumped = Vec::with_capacity(taken.len());
    for row in &taken {
        if let Some(i) = position.get(row.get::<&str, _>("id")) {
            out[*i] = true;
        }
        bumped.push(row.get::<String, _>("contact"));
    }
    sqlx::query(
        "UPDATE contacts SET policy_version = policy_version + 1 \
         WHERE id IN (SELECT value FROM json_each(?))",
    )
    .bind(serde_json::to_string(&bumped).unwrap_or_else(|_| "[]".into()))
    .execute(&mut *tx)
    .await
    .map_err(q)?;
    Ok(())
}

/// Takes the places of the other reservations (`rest`) one by one, in order, each at
/// its contact's version; none for a contact with one `refused` before it.
async fn reserve_rest<'a>(
    tx: &mut sqlx::SqliteConnection,
    rest: Numbered<'a>,
    mut refused: std::collections::HashSet<&'a ContactId>,
    owner: &str,
    out: &mut [bool],
) -> Result<(), StoreError> {
    for (i, r) in rest {
        if refused.contains(&r.contact) {
            continue;
        }
        let taken = sqlx::query(
            "UPDATE contacts SET policy_version = policy_version + 1 \
             WHERE id = ?1 AND policy_version = ?2 AND EXISTS (SELECT 1 FROM touches \
             WHERE id = ?3 AND contact_id = ?1 AND status = 'sending' AND lease_owner = ?4) \
             RETURNING id",
        )
        .bind(r.contact.as_str())
        .bind(r.version as i64)
        .bind(r.touch.as_str())
        .bind(owner)
        .fetch_optional(&mut *tx)
        .await
        .map_err(q)?
        .is_some();
        if taken {
            sqlx::query("UPDATE touches SET slot_at = ?, channel = ? WHERE id = ?")
                .bind(r.at.timestamp())
                .bind(r.channel.as_str())
                .bind(r.touch.as_str())
                .execute(&mut *tx)
                .await
                .map_err(q)?;
        } else {
            refused.insert(&r.contact);
        }
        out[i] = taken;
    }
    Ok(())
}
