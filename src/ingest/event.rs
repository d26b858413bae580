//! Events in: recorded on the contact's timeline, counted as an interaction, and the
//! occasions they trigger planned at once. The CLI (`rapport event add`) and the HTTP
//! API call the same function.

use chrono::{DateTime, Utc};

use crate::{
    config::Config,
    domain::{Event, NewTouch, TouchId},
    planner,
    store::{Store, StoreError},
};

#[derive(Debug, Clone, PartialEq)]
pub struct EventReport {
    /// False when the contact already had an event with this id (nothing changed).
    pub new: bool,
    /// The touches the event triggers (new or already planned).
    pub touches: Vec<NewTouch>,
    /// Those of them this call recorded.
    pub planned: Vec<TouchId>,
}

/// Records `event` and plans what it triggers. Adding the same event twice changes
/// nothing the second time: the event is insert-if-absent, and so is each touch (its id
/// is the occasion, the contact and the event id). Planning runs either way, so a crash
/// between the two steps is mended by adding the event again.
pub async fn record_event<S: Store>(
    store: &S,
    cfg: &Config,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<EventReport, StoreError> {
    let Some(contact) = store.get_contact(&event.contact_id).await? else {
        return Err(StoreError::UnknownContact(event.contact_id.clone()));
    };
    let new = store.add_event(event, now).await?;
    let touches: Vec<NewTouch> = cfg
        .occasions
        .iter()
        .filter_map(|o| planner::for_event(cfg, o, &contact, event, now))
        .collect();
    let planned = store
        .plan_touches(&touches, cfg.dispatch.batch_size as usize, now)
        .await?;
    Ok(EventReport {
        new,
        touches,
        planned,
    })
}
