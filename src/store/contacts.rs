//! Contacts and their timelines: who they are, their consent, the events that happened to them, and erasure.

use crate::domain::Channel;
use std::{collections::HashMap, future::Future};

use chrono::{DateTime, Utc};

use super::*;
use crate::{
    config::DateField,
    domain::{Contact, ContactId, Event, MonthDay},
};

/// A contact to insert or replace. `email_consent: None` keeps what the store knows, so
/// a re-import never silently re-subscribes someone who opted out.
#[derive(Debug, Clone)]
pub struct ContactUpsert {
    pub contact: Contact,
    pub email_consent: Option<bool>,
    /// The same for SMS.
    pub sms_consent: Option<bool>,
    /// The row named no tier: a stored contact keeps the tier it has (a move the
    /// learner made is not undone by the next sync); a new one gets `contact.tier`.
    pub keep_tier: bool,
}

/// The contacts role of a [`Store`].
pub trait Contacts: Send + Sync {
    fn upsert_contacts(
        &self,
        rows: &[ContactUpsert],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn get_contact(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Option<Contact>, StoreError>> + Send;

    fn get_contacts(
        &self,
        ids: &[ContactId],
    ) -> impl Future<Output = Result<HashMap<ContactId, Contact>, StoreError>> + Send;

    /// Up to `limit` contacts whose `field` falls on `day` (month-day, any year), in id
    /// order, after `after`: the planner pages through a day without holding it all.
    fn contacts_on_page(
        &self,
        field: DateField,
        day: MonthDay,
        after: Option<&ContactId>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<Contact>, StoreError>> + Send;

    /// Every contact whose `field` falls on one of `days`.
    fn contacts_on(
        &self,
        field: DateField,
        days: &[MonthDay],
    ) -> impl Future<Output = Result<Vec<Contact>, StoreError>> + Send {
        async move {
            let mut out = Vec::new();
            for day in days {
                let mut after: Option<ContactId> = None;
                loop {
                    let page = self
                        .contacts_on_page(field, *day, after.as_ref(), 5000)
                        .await?;
                    let Some(last) = page.last() else { break };
                    after = Some(last.id.clone());
                    out.extend(page);
                }
            }
            Ok(out)
        }
    }

    fn count_contacts(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// When each of `ids` was first stored (missing contacts are left out).
    fn first_seen(
        &self,
        ids: &[ContactId],
    ) -> impl Future<Output = Result<HashMap<ContactId, DateTime<Utc>>, StoreError>> + Send;

    /// The contacts with phone number `phone` (E.164), in id order: an SMS from it comes
    /// from one of them (a family may share a number).
    fn contacts_by_phone(
        &self,
        phone: &str,
    ) -> impl Future<Output = Result<Vec<ContactId>, StoreError>> + Send;

    /// Up to `limit` contacts whose last interaction is at or before `before`, with it,
    /// in (last interaction, id) order, after `after` (the last one of the previous
    /// page): the check-in planner pages through them, each page costing the same
    /// however far in it is.
    fn idle_contacts(
        &self,
        before: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, ContactId)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<(Contact, DateTime<Utc>)>, StoreError>> + Send;

    /// Records an event on its contact's timeline, insert-if-absent by (contact, event
    /// id), and counts it as an interaction (at its time, never later than `now`).
    /// Returns whether it was new. The contact must exist.
    fn add_event(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A contact's events, oldest first.
    fn events_for_contact(
        &self,
        id: &ContactId,
    ) -> impl Future<Output = Result<Vec<Event>, StoreError>> + Send;

    /// Sets `contact`'s consent on `channel` (`email` or `sms`): a provider's opt-out
    /// (Twilio 21610), a STOP, an unsubscribe. Returns whether the contact exists.
    fn set_consent(
        &self,
        contact: &ContactId,
        channel: Channel,
        consent: bool,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Erases a contact: the contact, its events, responses, relationship, touches and
    /// places against the caps. Its addresses stay on the suppression list as hashes,
    /// so a re-import cannot be marketed to. Returns whether there was such a contact.
    fn erase_contact(
        &self,
        id: &ContactId,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
