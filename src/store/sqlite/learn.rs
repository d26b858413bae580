//! The learning side of the SQLite store: responses, relationships, the statistics,
//! suppression records, and kept answers for `Idempotency-Key`.

use chrono::{DateTime, Utc};
use sqlx::{Row, SqliteConnection};

use super::{SqliteStore, q, rows};
use crate::{
    domain::{Contact, ContactId, Touch},
    store::{
        Idempotency, KeptAnswer, Learn, Learned, Relationship, ResponseRecord, Settle, StatField,
        StatKey, StoreError, Suppression,
        fields::corrupt,
        relationship::{NOTES_KEPT, suppressed_hashes},
    },
};

/// How long a key taken by a request still being answered holds (a process that died
/// mid-request must not block the key for the whole retention time).
const IN_PROGRESS_SECS: i64 = 300;

pub(super) async fn relationship(
    store: &SqliteStore,
    id: &ContactId,
) -> Result<Option<Relationship>, StoreError> {
    let row = sqlx::query("SELECT version, state, notes FROM relationships WHERE contact_id = ?")
        .bind(id.as_str())
        .fetch_optional(&store.pool)
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

pub(super) async fn relationships(
    store: &SqliteStore,
    ids: &[ContactId],
) -> Result<std::collections::HashMap<ContactId, Relationship>, StoreError> {
    let rows = sqlx::query(
        "SELECT contact_id, version, state, notes FROM relationships \
         WHERE contact_id IN (SELECT value FROM json_each(?))",
    )
    .bind(super::contact_ids_json(ids))
    .fetch_all(&store.pool)
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

pub(super) async fn learn(
    store: &SqliteStore,
    learn: &Learn,
    now: DateTime<Utc>,
) -> Result<Learned, StoreError> {
    let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
    let outcome = apply(&mut tx, store, learn, now).await?;
    if outcome == Learned::Applied {
        tx.commit().await.map_err(q)?;
    } else {
        tx.rollback().await.map_err(q)?;
    }
    Ok(outcome)
}

async fn apply(
    tx: &mut SqliteConnection,
    store: &SqliteStore,
    learn: &Learn,
    now: DateTime<Utc>,
) -> Result<Learned, StoreError> {
    let id = learn.contact.as_str();
    let now_s = now.timestamp();
    let Some(contact) = sqlx::query("SELECT * FROM contacts WHERE id = ?")
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(q)?
    else {
        return Ok(Learned::NoContact);
    };
    let contact = rows::contact(&contact)?;
    let current =
        sqlx::query("SELECT version, state, notes FROM relationships WHERE contact_id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(q)?;
    let (version, state, notes) = match &current {
        Some(r) => (
            r.get::<i64, _>("version") as u64,
            r.get::<String, _>("state"),
            r.get::<String, _>("notes"),
        ),
        None => (0, "{}".to_owned(), "[]".to_owned()),
    };
    if version != learn.version {
        return Ok(Learned::Conflict);
    }
    if let Some(r) = &learn.response {
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
        if added.rows_affected() == 0 {
            let known: String = sqlx::query_scalar(
                "SELECT record FROM responses WHERE contact_id = ?1 AND id = ?2",
            )
            .bind(id)
            .bind(&r.id)
            .fetch_one(&mut *tx)
            .await
            .map_err(q)?;
            let known = serde_json::from_str(&known).map_err(|e| corrupt("response", e))?;
            return Ok(Learned::Duplicate(Box::new(known)));
        }
    }
    if let Some((touch, settle)) = &learn.settle {
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
        if done.rows_affected() == 0 {
            return Ok(Learned::Conflict);
        }
    }
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
        let sql = match channel.as_str() {
            "email" => "UPDATE contacts SET email_consent = ?2, updated_at = ?3 WHERE id = ?1",
            "sms" => "UPDATE contacts SET sms_consent = ?2, updated_at = ?3 WHERE id = ?1",
            _ => continue,
        };
        sqlx::query(sql)
            .bind(id)
            .bind(i64::from(*consent))
            .bind(now_s)
            .execute(&mut *tx)
            .await
            .map_err(q)?;
    }
    if let Some(s) = &learn.suppress {
        suppress(tx, store, &contact, s, now_s).await?;
        for (channel, sql) in [
            (
                "email",
                "UPDATE contacts SET email_consent = 0, updated_at = ?2 WHERE id = ?1",
            ),
            (
                "sms",
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
    let state = match &learn.state {
        Some(s) => serde_json::to_string(s).map_err(|e| corrupt("relationship state", e))?,
        None => state,
    };
    let notes = merged_notes(&notes, &learn.notes)?;
    sqlx::query(
        "INSERT INTO relationships (contact_id, version, state, notes) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT(contact_id) DO UPDATE SET version = excluded.version, state = excluded.state, \
         notes = excluded.notes",
    )
    .bind(id)
    .bind((version + 1) as i64)
    .bind(state)
    .bind(notes)
    .execute(&mut *tx)
    .await
    .map_err(q)?;
    Ok(Learned::Applied)
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

pub(super) async fn responses_for_contact(
    store: &SqliteStore,
    id: &ContactId,
) -> Result<Vec<ResponseRecord>, StoreError> {
    let found: Vec<String> =
        sqlx::query_scalar("SELECT record FROM responses WHERE contact_id = ? ORDER BY at, id")
            .bind(id.as_str())
            .fetch_all(&store.pool)
            .await
            .map_err(q)?;
    found
        .iter()
        .map(|r| serde_json::from_str(r).map_err(|e| corrupt("response", e)))
        .collect()
}

pub(super) async fn awaiting(
    store: &SqliteStore,
    before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Touch>, StoreError> {
    let found = sqlx::query(
        "SELECT * FROM touches WHERE status = 'sent' AND responded_at IS NULL AND sent_at <= ?1 \
         ORDER BY sent_at, id LIMIT ?2",
    )
    .bind(before.timestamp())
    .bind(limit as i64)
    .fetch_all(&store.pool)
    .await
    .map_err(q)?;
    found.iter().map(rows::touch).collect()
}

pub(super) async fn stats(
    store: &SqliteStore,
) -> Result<Vec<(StatKey, StatField, u64)>, StoreError> {
    let found = sqlx::query("SELECT name, value FROM stats")
        .fetch_all(&store.pool)
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

pub(super) async fn begin_key(
    store: &SqliteStore,
    key: &str,
    fingerprint: &str,
    now: DateTime<Utc>,
) -> Result<Idempotency, StoreError> {
    let now_s = now.timestamp();
    let mut tx = store.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
    sqlx::query("DELETE FROM idempotency WHERE expires_at <= ?")
        .bind(now_s)
        .execute(&mut *tx)
        .await
        .map_err(q)?;
    let taken = sqlx::query(
        "INSERT INTO idempotency (key, fingerprint, expires_at) VALUES (?1, ?2, ?3) \
         ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .bind(fingerprint)
    .bind(now_s + IN_PROGRESS_SECS)
    .execute(&mut *tx)
    .await
    .map_err(q)?
    .rows_affected()
        > 0;
    let out = if taken {
        Idempotency::Began
    } else {
        let r = sqlx::query("SELECT fingerprint, status, body FROM idempotency WHERE key = ?")
            .bind(key)
            .fetch_one(&mut *tx)
            .await
            .map_err(q)?;
        let fingerprint: String = r.get("fingerprint");
        match (
            r.get::<Option<i64>, _>("status"),
            r.get::<Option<String>, _>("body"),
        ) {
            (Some(status), Some(body)) => Idempotency::Done(KeptAnswer {
                fingerprint,
                status: status as u16,
                body,
            }),
            _ => Idempotency::InProgress { fingerprint },
        }
    };
    tx.commit().await.map_err(q)?;
    Ok(out)
}

pub(super) async fn keep_answer(
    store: &SqliteStore,
    key: &str,
    answer: &KeptAnswer,
    ttl: std::time::Duration,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let expires = now.timestamp().saturating_add(ttl.as_secs() as i64);
    sqlx::query(
        "INSERT INTO idempotency (key, fingerprint, status, body, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT(key) DO UPDATE SET fingerprint = excluded.fingerprint, status = excluded.status, \
         body = excluded.body, expires_at = excluded.expires_at",
    )
    .bind(key)
    .bind(&answer.fingerprint)
    .bind(i64::from(answer.status))
    .bind(&answer.body)
    .bind(expires)
    .execute(&store.pool)
    .await
    .map_err(q)?;
    Ok(())
}

pub(super) async fn forget_key(store: &SqliteStore, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM idempotency WHERE key = ? AND status IS NULL")
        .bind(key)
        .execute(&store.pool)
        .await
        .map_err(q)?;
    Ok(())
}
