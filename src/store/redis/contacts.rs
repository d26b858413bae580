//! Redis: [`Contacts`](crate::store::Contacts): contacts, their events and consent, and erasure.

use super::*;
use crate::domain::{Channel, Contact, ContactId, Event, EventId};
use crate::store::fields::corrupt;
use crate::store::{StoreError, Suppression};
use chrono::{DateTime, Utc};
use redis::AsyncCommands;
use std::collections::HashMap;

impl crate::store::Contacts for RedisStore {
    async fn upsert_contacts(&self, rows: &[ContactUpsert]) -> Result<(), StoreError> {
        let now = Utc::now().timestamp();
        for chunk in rows.chunks(500) {
            let mut inv = UPSERT_CONTACTS.prepare_invoke();
            inv.arg(&self.prefix).arg(now);
            for r in chunk {
                let mut record = fields::contact_record(&r.contact);
                record["consent"] = serde_json::json!(r.email_consent);
                record["sms"] = serde_json::json!(r.sms_consent);
                let (email, phone) =
                    crate::store::relationships::address_hashes(&self.pepper, &r.contact);
                record["keep_tier"] = serde_json::json!(r.keep_tier);
                record["email_hash"] = serde_json::json!(email);
                record["phone_hash"] = serde_json::json!(phone);
                inv.arg(record.to_string());
            }
            inv.invoke_async::<u64>(&mut self.conn.clone())
                .await
                .map_err(q)?;
        }
        Ok(())
    }
    async fn get_contact(&self, id: &ContactId) -> Result<Option<Contact>, StoreError> {
        Ok(self.contacts(&[id.as_str()]).await?.pop())
    }
    async fn get_contacts(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, Contact>, StoreError> {
        let ids: Vec<&str> = ids.iter().map(ContactId::as_str).collect();
        Ok(self
            .contacts(&ids)
            .await?
            .into_iter()
            .map(|c| (c.id.clone(), c))
            .collect())
    }
    async fn contacts_on_page(
        &self,
        field: DateField,
        day: MonthDay,
        after: Option<&ContactId>,
        limit: usize,
    ) -> Result<Vec<Contact>, StoreError> {
        let kind = match field {
            DateField::Birthday => "birthday",
            DateField::CustomerSince => "since",
        };
        let index = format!("{}:idx:{kind}:{}", self.prefix, day.key());
        let from = after.map_or_else(|| "-".to_owned(), |a| format!("({a}"));
        let ids: Vec<String> = self
            .conn
            .clone()
            .zrangebylex_limit(index, from, "+", 0, limit as isize)
            .await
            .map_err(q)?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.contacts(&ids).await
    }
    async fn count_contacts(&self) -> Result<u64, StoreError> {
        self.conn
            .clone()
            .scard(format!("{}:idx:contacts", self.prefix))
            .await
            .map_err(q)
    }
    async fn first_seen(
        &self,
        ids: &[ContactId],
    ) -> Result<HashMap<ContactId, DateTime<Utc>>, StoreError> {
        let ids: Vec<&str> = ids.iter().map(ContactId::as_str).collect();
        self.stored_contacts(&ids)
            .await?
            .into_iter()
            .map(|c| {
                let id = ContactId::parse(&c.id).map_err(|e| corrupt("contact id", e))?;
                let at = c
                    .created_at
                    .and_then(|s| DateTime::from_timestamp(s as i64, 0))
                    .ok_or_else(|| corrupt("contact created_at", "missing"))?;
                Ok((id, at))
            })
            .collect()
    }
    async fn contacts_by_phone(&self, phone: &str) -> Result<Vec<ContactId>, StoreError> {
        let mut ids: Vec<String> = self
            .conn
            .clone()
            .smembers(format!("{}:idx:phone:{phone}", self.prefix))
            .await
            .map_err(q)?;
        ids.sort();
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
        let key = format!("{}:idx:seen", self.prefix);
        let mut conn = self.conn.clone();
        // By rank: the page after the previous one's last contact (Redis orders equal
        // scores by member, as (time, id)). If that contact has moved or gone since,
        // start at its old time again: contacts tied with it may be read twice (planning
        // is insert-if-absent), never skipped.
        let start: isize = match after {
            None => 0,
            Some((at, id)) => {
                let score: Option<f64> = conn.zscore(&key, id.as_str()).await.map_err(q)?;
                let rank: Option<isize> = match score {
                    Some(s) if s as i64 == ts(*at) => {
                        conn.zrank(&key, id.as_str()).await.map_err(q)?
                    }
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
        let contacts = self.contacts(&ids).await?;
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
    async fn add_event(&self, e: &Event, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let json = serde_json::json!({
            "id": e.id.as_str(), "kind": e.kind, "at": ts(e.at),
            "data": serde_json::Value::Object(e.data.clone()), "recorded_at": ts(now),
        });
        let mut inv = ADD_EVENT.prepare_invoke();
        inv.arg(&self.prefix)
            .arg(ts(now))
            .arg(e.contact_id.as_str())
            .arg(e.id.as_str())
            .arg(ts(e.at))
            .arg(json.to_string());
        match inv
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map_err(q)?
        {
            -1 => Err(StoreError::UnknownContact(e.contact_id.clone())),
            n => Ok(n == 1),
        }
    }
    async fn events_for_contact(&self, id: &ContactId) -> Result<Vec<Event>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Stored {
            id: String,
            kind: String,
            at: i64,
            data: serde_json::Map<String, serde_json::Value>,
        }
        let raw: HashMap<String, String> = self
            .conn
            .clone()
            .hgetall(format!("{}:{{c:{id}}}:events", self.prefix))
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
    async fn set_consent(
        &self,
        contact: &ContactId,
        channel: Channel,
        consent: bool,
    ) -> Result<bool, StoreError> {
        let field = match channel {
            Channel::Email => "email_consent",
            Channel::Sms => "sms_consent",
            other @ Channel::Webhook => {
                return Err(StoreError::Query(
                    format!("no consent is kept for channel {other}").into(),
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
    async fn erase_contact(&self, id: &ContactId, now: DateTime<Utc>) -> Result<bool, StoreError> {
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
}
