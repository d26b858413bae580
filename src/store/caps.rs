//! Caps: what the relationship policy reads about a contact, and the atomic reservation of a place against its caps.

use crate::domain::Channel;
use std::{collections::HashMap, future::Future};

use chrono::{DateTime, Utc};

use super::*;
use crate::{
    domain::{ContactId, Touch, TouchId},
    policy::Slot,
};

/// What the store holds about one contact that the relationship policy needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PolicyRecord {
    /// Bumped by every reservation: a reservation names the version it was decided on.
    pub version: u64,
    /// Places held against the caps at or after the `since` asked for.
    pub slots: Vec<Slot>,
    /// Touches due (or next due) at or after `since`, any status.
    pub touches: Vec<Touch>,
    /// The last touch sent, event or response (first seen, for a contact with none).
    pub last_interaction: Option<DateTime<Utc>>,
}

/// A place against a contact's caps, asked for by the claim that holds the touch.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    pub touch: TouchId,
    pub contact: ContactId,
    pub channel: Channel,
    pub at: DateTime<Utc>,
    /// The [`PolicyRecord::version`] the decision was made on.
    pub version: u64,
}

/// The caps role of a [`Store`].
pub trait Caps: Send + Sync {
    /// The policy's view of each of `ids` (missing contacts are left out): slots and
    /// touches from `since` on, except the touches in `skip` (the caller holds them:
    /// the dispatcher's own claimed batch, which need not be read twice).
    fn policy_records(
        &self,
        ids: &[ContactId],
        since: DateTime<Utc>,
        skip: &[TouchId],
    ) -> impl Future<Output = Result<HashMap<ContactId, PolicyRecord>, StoreError>> + Send;

    /// Takes the places asked for, in order, each atomically with its check: it is taken
    /// only if the touch is still `sending` under `owner` and its contact's version is
    /// still the one the decision was made on (each place taken bumps it, so a second
    /// reservation for one contact names the version after the first). A contact's
    /// reservations are a chain: once one is refused, the rest of that contact's in the
    /// call are refused too. Returns, per reservation, whether it was taken; one not
    /// taken must be decided again.
    fn reserve(
        &self,
        reservations: &[Reservation],
        owner: &str,
    ) -> impl Future<Output = Result<Vec<bool>, StoreError>> + Send;
}
