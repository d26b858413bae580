//! SQLite: [`Relationships`](crate::store::Relationships): what each contact taught us, and its
//! responses.

use super::*;
use crate::domain::{Channel, Contact, ContactId, Touch, TouchId};
use crate::store::fields::corrupt;
use crate::store::relationships::{NOTES_KEPT, suppressed_hashes};
use crate::store::{
    Learn, LearnOutcome, Relationship, ResponseRecord, Settle, StatKey, StoreError, Suppression,
};
use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

/// Applies `learn` inside the caller's transaction; anything but
/// [`LearnOutcome::Applied`] is rolled back by the caller.
async fn apply(
    tx: &mut SqliteConnection,
    store: &SqliteStore,
    learn: &Learn,
    now: DateTime<Utc>,
) -> Result<LearnOutcome, StoreError> {
    let id = learn.contact.as_str();
    let now_s = now.timestamp();
    let Some(contact) = sqlx::query("SELECT * FROM contacts WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(q)?
    else {
        return Ok(LearnOutcome::NoContact);
    };
    let contact = rows::contact(&contact)?;
    let (version, state, notes) = stored_relationship(tx, id).await?;
    if version != learn.version {
        return Ok(LearnOutcome::Conflict);
    }
    if let Some(r) = &learn.response {
        if let Some(known) = add_response(tx, id, r).await? {
            return Ok(LearnOutcome::Duplicate(Box::new(known)));
        }
    }
    if let Some((touch, settle)) = &learn.settle {
        if !settle_touch(tx, id, touch, settle, now_s).await? {
            return Ok(LearnOutcome::Conflict);
        }
    }
    update_contact(tx, id, learn, now_s).await?;
    if let Some(s) = &learn.suppress {
        suppress(tx, store, &contact, s, now_s).await?;
        withdraw_suppressed_consent(tx, id, s, now_s).await?;
    }
    if let Some(at) = learn.interaction {
        sqlx::query(
            "UPDATE contacts SET last_interaction_at = MAX(COALESCE(last_interaction_at, 0), ?2) \
             WHERE id = ?1",
        )
        .bind(id)
        .bind(at.timestamp().min(now_s))
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    }
    for d in &learn.stats {
        sqlx::query(
            "INSERT INTO stats (name, value) VALUES (?1, 1) \
             ON CONFLICT(name) DO UPDATE SET value = value + 1",
        )
        .bind(d.key.encode(d.field))
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    }
    save_relationship(tx, id, version + 1, learn, state, &notes).await?;
    Ok(LearnOutcome::Applied)
}

/// Writes the contact's relationship row at `version`: the learned state (else the
/// stored `state`), and the stored `notes` with the learned ones appended.
async fn save_relationship(
    tx: &mut SqliteConnection,
    id: &str,
    version: u64,
    learn: &Learn,
    state: String,
    notes: &str,
) -> Result<(), StoreError> {
    let state = match &learn.state {
        Some(s) => serde_json::to_string(s).map_err(|e| corrupt("relationship state", e))?,
        None => state,
    };
    let notes = merged_notes(notes, &learn.notes)?;
    sqlx::query(
        "INSERT INTO relationships (contact_id, version, state, notes) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(contact_id) DO UPDATE SET version = excluded.version, state = excluded.state, \
         notes = excluded.notes",
    )
    .bind(id)
    .bind(version as i64)
    .bind(state)
    .bind(notes)
    .execute(&mut *tx)
    .await
    .map_err(q)?;
    Ok(())
}

/// The contact's relationship row as stored (version, state, notes), or that of a
/// contact with none yet.
async fn stored_relationship(
    tx: &mut SqliteConnection,
    id: &str,
) -> Result<(u64, String, String), StoreError> {
    let current =
        sqlx::query("SELECT version, state, notes FROM relationships WHERE contact_id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q)?;
    Ok(match &current {
        Some(r) => (
            r.get::<i64, _>("version") as u64,
            r.get::<String, _>("state"),
            r.get::<String, _>("notes"),
        ),
        None => (0, "{}".to_owned(), "[]".to_owned()),
    })
}

/// Stores the response `r`; if one with its id is stored already, returns that one
/// instead (and stores nothing).
async fn add_response(
    tx: &mut SqliteConnection,
    id: &str,
    r: &ResponseRecord,
) -> Result<Option<ResponseRecord>, StoreError> {
    let record = serde_json::to_string(r).map_err(|e| corrupt("response", e))?;
    let added = sqlx::query(
        "INSERT INTO responses (contact_id, id, at, record) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&r.id)
    .bind(r.at.timestamp())
    .bind(record)
    .execute(&mut *tx)
    .await
    .map_err(q)?;
    if added.rows_affected() > 0 {
        return Ok(None);
    }
    let known: String =
        sqlx::query_scalar("SELECT record FROM responses WHERE contact_id = ?1 AND id = ?2")
            .bind(id)
            .bind(&r.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(q)?;
    let known = serde_json::from_str(&known).map_err(|e| corrupt("response", e))?;
    Ok(Some(known))
}

/// Marks the contact's sent `touch` responded or ignored; false if it is not in a
/// state to be (not the contact's, not sent, or settled already).
async fn settle_touch(
    tx: &mut SqliteConnection,
    id: &str,
    touch: &TouchId,
    settle: &Settle,
    now_s: i64,
) -> Result<bool, StoreError> {
    let sql = match settle {
        Settle::Responded => {
            "UPDATE touches SET responded_at = ?3, status = 'sent', updated_at = ?3 \
             WHERE id = ?1 AND contact_id = ?2 AND responded_at IS NULL AND status IN ('sent', 'ignored')"
        }
        Settle::Ignored => {
            "UPDATE touches SET status = 'ignored', updated_at = ?3 \
             WHERE id = ?1 AND contact_id = ?2 AND responded_at IS NULL AND status = 'sent'"
        }
    };
    let done = sqlx::query(sql)
        .bind(touch.as_str())
        .bind(id)
        .bind(now_s)
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    Ok(done.rows_affected() > 0)
}

/// The contact's new tier and consent, as learned.
async fn update_contact(
    tx: &mut SqliteConnection,
    id: &str,
    learn: &Learn,
    now_s: i64,
) -> Result<(), StoreError> {
    if let Some(tier) = &learn.tier {
        sqlx::query("UPDATE contacts SET tier = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(id)
            .bind(tier)
            .bind(now_s)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
    }
    for (channel, consent) in &learn.consent {
        let sql = match channel {
            Channel::Email => {
                "UPDATE contacts SET email_consent = ?2, updated_at = ?3 WHERE id = ?1"
            }
            Channel::Sms => "UPDATE contacts SET sms_consent = ?2, updated_at = ?3 WHERE id = ?1",
            Channel::Webhook => continue,
        };
        sqlx::query(sql)
            .bind(id)
            .bind(i64::from(*consent))
            .bind(now_s)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
    }
    Ok(())
}

/// Withdraws the contact's consent on every channel the suppression `s` covers.
async fn withdraw_suppressed_consent(
    tx: &mut SqliteConnection,
    id: &str,
    s: &Suppression,
    now_s: i64,
) -> Result<(), StoreError> {
    for (channel, sql) in [
        (
            Channel::Email,
            "UPDATE contacts SET email_consent = 0, updated_at = ?2 WHERE id = ?1",
        ),
        (
            Channel::Sms,
            "UPDATE contacts SET sms_consent = 0, updated_at = ?2 WHERE id = ?1",
        ),
    ] {
        if s.covers(channel) {
            sqlx::query(sql)
                .bind(id)
                .bind(now_s)
                .execute(&mut *tx)
                .await
                .map_err(q)?;
        }
    }
    Ok(())
}

/// The stored notes with `new` appended, the oldest dropped past [`NOTES_KEPT`].
pub(crate) fn merged_notes(stored: &str, new: &[crate::store::Note]) -> Result<String, StoreError> {
    let mut notes: Vec<crate::store::Note> =
        serde_json::from_str(stored).map_err(|e| corrupt("relationship notes", e))?;
    notes.extend(new.iter().cloned());
    let excess = notes.len().saturating_sub(NOTES_KEPT);
    notes.drain(..excess);
    serde_json::to_string(&notes).map_err(|e| corrupt("relationship notes", e))
}

pub(super) async fn suppress(
    tx: &mut SqliteConnection,
    store: &SqliteStore,
    contact: &Contact,
    s: &Suppression,
    now_s: i64,
) -> Result<(), StoreError> {
    let reason = &s.reason;
    for hash in suppressed_hashes(&store.pepper, contact, s) {
        sqlx::query("INSERT INTO suppressions (hash, reason, at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING")
            .bind(hash)
            .bind(reason)
            .bind(now_s)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
    }
    Ok(())
}

impl crate::store::Relationships for SqliteStore {
    async fn relationship(
        &self,
        id: &ContactId,
    ) -> Result<Option<crate::store::Relationship>, StoreError> {
        let row =
            sqlx::query("SELECT version, state, notes FROM relationships WHERE contact_id = ?")
                .bind(id.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(q)?;
        row.map(|r| {
            Ok(Relationship {
                version: r.get::<i64, _>("version") as u64,
                state: serde_json::from_str(&r.get::<String, _>("state"))
                    .map_err(|e| corrupt("relationship state", e))?,
                notes: serde_json::from_str(&r.get::<String, _>("notes"))
                    .map_err(|e| corrupt("relationship notes", e))?,
            })
        })
        .transpose()
    }
    async fn relationships(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, crate::store::Relationship>, StoreError> {
        let rows = sqlx::query(
            "SELECT contact_id, version, state, notes FROM relationships \
             WHERE contact_id IN (SELECT value FROM json_each(?))",
        )
        .bind(super::contact_ids_json(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        rows.iter()
            .map(|r| {
                let id = ContactId::parse(&r.get::<String, _>("contact_id"))
                    .map_err(|e| corrupt("relationship contact", e))?;
                Ok((
                    id,
                    Relationship {
                        version: r.get::<i64, _>("version") as u64,
                        state: serde_json::from_str(&r.get::<String, _>("state"))
                            .map_err(|e| corrupt("relationship state", e))?,
                        notes: serde_json::from_str(&r.get::<String, _>("notes"))
                            .map_err(|e| corrupt("relationship notes", e))?,
                    },
                ))
            })
            .collect()
    }
    async fn learn(
        &self,
        l: &crate::store::Learn,
        now: DateTime<Utc>,
    ) -> Result<crate::store::LearnOutcome, StoreError> {
        let learn = l;
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        let outcome = apply(&mut tx, self, learn, now).await?;
        if outcome == LearnOutcome::Applied {
            tx.commit().await.map_err(q)?;
        } else {
            tx.rollback().await.map_err(q)?;
        }
        Ok(outcome)
    }
    async fn responses_for_contact(
        &self,
        id: &ContactId,
    ) -> Result<Vec<crate::store::ResponseRecord>, StoreError> {
        let found: Vec<String> =
            sqlx::query_scalar("SELECT record FROM responses WHERE contact_id = ? ORDER BY at, id")
                .bind(id.as_str())
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
        found
            .iter()
            .map(|r| serde_json::from_str(r).map_err(|e| corrupt("response", e)))
            .collect()
    }
    async fn awaiting(
        &self,
        before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Touch>, StoreError> {
        let found = sqlx::query(
            "SELECT * FROM touches WHERE status = 'sent' AND responded_at IS NULL AND sent_at <= ?1 \
             ORDER BY sent_at, id LIMIT ?2",
        )
        .bind(before.timestamp())
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        found.iter().map(rows::touch).collect()
    }
    async fn stats(
        &self,
    ) -> Result<Vec<(crate::store::StatKey, crate::store::StatField, u64)>, StoreError> {
        let found = sqlx::query("SELECT name, value FROM stats")
            .fetch_all(&self.pool)
            .await
            .map_err(q)?;
        let mut out: Vec<_> = found
            .iter()
            .filter_map(|r| {
                let (key, field) = StatKey::decode(&r.get::<String, _>("name"))?;
                Some((key, field, r.get::<i64, _>("value").max(0) as u64))
            })
            .collect();
        out.sort();
        Ok(out)
    }
}
