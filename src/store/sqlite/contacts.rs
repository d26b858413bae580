//! SQLite: [`Contacts`](crate::store::Contacts): contacts, their events and consent, and erasure.

use super::*;
use crate::domain::{Channel, Contact, ContactId, Event, EventId};
use crate::store::StoreError;
use crate::store::fields::{Fields, corrupt};
use chrono::{DateTime, Utc};
use sqlx::Row;
use std::collections::HashMap;

fn event(row: &sqlx::sqlite::SqliteRow) -> Result<Event, StoreError> {
    let data = match serde_json::from_str(&row.required_text("data")?) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => return Err(corrupt("event data", "not a JSON object")),
    };
    Ok(Event {
        contact_id: ContactId::parse(&row.required_text("contact_id")?)
            .map_err(|e| corrupt("contact_id", e))?,
        id: EventId::parse(&row.required_text("id")?).map_err(|e| corrupt("event id", e))?,
        kind: row.required_text("kind")?,
        at: row.required_instant("at")?,
        data,
    })
}

impl crate::store::Contacts for SqliteStore {
    async fn upsert_contacts(&self, rows: &[ContactUpsert]) -> Result<(), StoreError> {
        let now = Utc::now().timestamp();
        let mut tx = self.pool.begin().await.map_err(q)?;
        rows::upsert_contacts(&mut tx, rows, now, &self.pepper).await?;
        tx.commit().await.map_err(q)
    }
    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        let row = sqlx::query("SELECT * FROM contacts WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(q)?;
        row.as_ref().map(rows::contact).transpose()
    }
    async fn get_contacts(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, Contact>, StoreError> {
        let json = contact_ids_json(ids);
        let found =
            sqlx::query("SELECT * FROM contacts WHERE id IN (SELECT value FROM json_each(?))")
                .bind(json)
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
        found
            .iter()
            .map(|r| rows::contact(r).map(|c| (c.id.clone(), c)))
            .collect()
    }
    async fn contacts_on_page(
        &self,
        field: DateField,
        day: MonthDay,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<Contact>, StoreError> {
        let sql = match field {
            DateField::Birthday => {
                "SELECT * FROM contacts WHERE birthday_md = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
            DateField::CustomerSince => {
                "SELECT * FROM contacts WHERE since_md = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
            }
        };
        let found = sqlx::query(sql)
            .bind(day.key())
            .bind(after.map_or("", ContactId::as_str))
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(q)?;
        found.iter().map(rows::contact).collect()
    }
    async fn count_contacts(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts")
            .fetch_one(&self.pool)
            .await
            .map_err(q)?;
        Ok(n as u64)
    }
    async fn first_seen(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, DateTime<Utc>>, StoreError> {
        let found = sqlx::query(
            "SELECT id, created_at FROM contacts WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(contact_ids_json(ids))
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        found
            .iter()
            .map(|r| {
                let id = ContactId::parse(&r.get::<String, _>("id"))
                    .map_err(|e| StoreError::Corrupt(format!("contact id: {e}")))?;
                let at = DateTime::from_timestamp(r.get::<i64, _>("created_at"), 0)
                    .ok_or_else(|| StoreError::Corrupt("contact created_at".into()))?;
                Ok((id, at))
            })
            .collect()
    }
    async fn contacts_by_phone(&self, phone: &str) -> Result<Vec<ContactId>, StoreError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT id FROM contacts WHERE phone = ? ORDER BY id")
                .bind(phone)
                .fetch_all(&self.pool)
                .await
                .map_err(q)?;
        ids.iter()
            .map(|i| {
                ContactId::parse(i).map_err(|e| StoreError::Corrupt(format!("contact id: {e}")))
            })
            .collect()
    }
    async fn idle_contacts(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, ContactId)>,
        limit: usize,
    ) -> Result<Vec<(Contact, DateTime<Utc>)>, StoreError> {
        let (at, id) = after.map_or((i64::MIN, ""), |(t, c)| (t.timestamp(), c.as_str()));
        let found = sqlx::query(
            "SELECT * FROM contacts WHERE last_interaction_at <= ?1 \
             AND (last_interaction_at, id) > (?2, ?3) \
             ORDER BY last_interaction_at, id LIMIT ?4",
        )
        .bind(before.timestamp())
        .bind(at)
        .bind(id)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(q)?;
        found
            .iter()
            .map(|r| {
                Ok((
                    rows::contact(r)?,
                    r.required_instant("last_interaction_at")?,
                ))
            })
            .collect()
    }
    async fn add_event(&self, e: &Event, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let now_s = now.timestamp();
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(q)?;
        // Only a new event is an interaction: the same one sent again changes nothing.
        let seen = sqlx::query(
            "UPDATE contacts SET last_interaction_at = CASE \
             WHEN EXISTS (SELECT 1 FROM events WHERE contact_id = ?1 AND id = ?3) THEN last_interaction_at \
             ELSE MAX(COALESCE(last_interaction_at, 0), ?2) END \
             WHERE id = ?1 RETURNING id",
        )
        .bind(e.contact_id.as_str())
        .bind(e.at.timestamp().min(now_s))
        .bind(e.id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(q)?;
        if seen.is_none() {
            return Err(StoreError::UnknownContact(e.contact_id.clone()));
        }
        let new = sqlx::query(
            "INSERT INTO events (contact_id, id, kind, at, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(e.contact_id.as_str())
        .bind(e.id.as_str())
        .bind(&e.kind)
        .bind(e.at.timestamp())
        .bind(serde_json::Value::Object(e.data.clone()).to_string())
        .bind(now_s)
        .execute(&mut *tx)
        .await
        .map_err(q)?
        .rows_affected()
            == 1;
        tx.commit().await.map_err(q)?;
        Ok(new)
    }
    async fn events_for_contact(&self, id: &ContactId) -> Result<Vec<Event>, StoreError> {
        let found = sqlx::query("SELECT * FROM events WHERE contact_id = ? ORDER BY at, id")
            .bind(id.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(q)?;
        found.iter().map(event).collect()
    }
    async fn set_consent(
        &self,
        contact: &ContactId,
        channel: Channel,
        consent: bool,
    ) -> Result<bool, StoreError> {
        let sql = match channel {
            Channel::Email => {
                "UPDATE contacts SET email_consent = ?1, updated_at = ?3 WHERE id = ?2"
            }
            Channel::Sms => "UPDATE contacts SET sms_consent = ?1, updated_at = ?3 WHERE id = ?2",
            other @ Channel::Webhook => {
                return Err(StoreError::Query(
                    format!("no consent is kept for channel {other}").into(),
                ));
            }
        };
        let done = sqlx::query(sql)
            .bind(i64::from(consent))
            .bind(contact.as_str())
            .bind(Utc::now().timestamp())
            .execute(&self.pool)
            .await
            .map_err(q)?;
        Ok(done.rows_affected() > 0)
    }
    async fn erase_contact(&self, id: &ContactId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        erase::erase_contact(self, id, now).await
    }
}
