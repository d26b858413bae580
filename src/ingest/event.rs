//! Events in: recorded on the contact's timeline, counted as an interaction, and the
//! occasions they trigger planned at once. The CLI (`rapport event add`) and the HTTP
//! API call the same function.

use crate::store::{Contacts, Coordination, Ledger};
use chrono::{DateTime, Utc};

use crate::{
    config::Config,
    domain::{Event, NewTouch, TouchId},
    planner,
    store::StoreError,
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
pub async fn record_event<S: Contacts + Ledger + Coordination>(
    store: &S,
    cfg: &Config,
    event: &Event,
    now: DateTime<Utc>,
) -> Result<EventReport, StoreError> {
    // A store held after a loss plans nothing until it is adopted: a thank-you planned
    // now could repeat one sent before the loss.
    if let Some(why) = store
        .setting(crate::custody::LOST)
        .await?
        .filter(|w| !w.is_empty())
    {
        return Err(StoreError::Lost(why));
    }
    let Some(contact) = store.get_contact(&event.contact_id).await? else {
        return Err(StoreError::UnknownContact(event.contact_id.clone()));
    };
    let new = store.add_event(event, now).await?;
    let mut touches: Vec<NewTouch> = cfg
        .rules
        .occasions
        .iter()
        .filter_map(|o| planner::for_event(&cfg.rules, o, &contact, event, now))
        .collect();
    crate::custody::settle_adopted(store, &mut touches).await?;
    let planned = store
        .plan_touches(&touches, cfg.dispatch.batch_size as usize, now)
        .await?;
    Ok(EventReport {
        new,
        touches,
        planned,
    })
}

/// An event as it arrives (flags, a JSONL line, later an API body), checked field by
/// field: `Err((field, message))` names the first bad one.
pub fn parse_event(
    contact: &str,
    kind: &str,
    id: &str,
    at: Option<&str>,
    data: Option<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<Event, (&'static str, String)> {
    let contact_id = crate::domain::ContactId::parse(contact).map_err(|e| ("contact", e.0))?;
    if !crate::domain::event::valid_kind(kind) {
        return Err((
            "type",
            format!("{kind:?}: event types use lower-case letters, digits and _"),
        ));
    }
    let id = crate::domain::EventId::parse(id).map_err(|e| ("id", e.0))?;
    let at = match at {
        None => now,
        Some(raw) => DateTime::parse_from_rfc3339(raw)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                (
                    "at",
                    format!("{raw:?} is not an RFC 3339 instant (e.g. 2026-07-14T08:00:00Z): {e}"),
                )
            })?,
    };
    let data = match data {
        None | Some(serde_json::Value::Null) => serde_json::Map::new(),
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => {
            return Err((
                "data",
                "must be a JSON object, e.g. {\"total\": 42}".to_owned(),
            ));
        }
    };
    Ok(Event {
        contact_id,
        id,
        kind: kind.to_owned(),
        at,
        data,
    })
}

/// Reads events from a JSONL file, one `{"contact", "type", "id", "at", "data"?}` per
/// line (`rapport simulate --events`): the good ones, and every problem by line.
pub fn read_events(
    path: &std::path::Path,
) -> Result<(Vec<Event>, Vec<super::RowError>), super::IngestError> {
    use std::io::BufRead;
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| super::IngestError::File {
        path: name.clone(),
        message: format!("cannot open: {e}"),
    })?;
    let (mut good, mut errors) = (Vec::new(), Vec::new());
    let bad = |line: u64, field: &str, message: String| super::RowError {
        line,
        field: field.to_owned(),
        message,
    };
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let n = n as u64 + 1;
        let line = line.map_err(|e| super::IngestError::File {
            path: name.clone(),
            message: format!("line {n}: {e}"),
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let row: serde_json::Map<String, serde_json::Value> = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                errors.push(bad(n, "(row)", format!("not a JSON object: {e}")));
                continue;
            }
        };
        let field = |k: &str| row.get(k).and_then(serde_json::Value::as_str).unwrap_or("");
        let at = row.get("at").and_then(serde_json::Value::as_str);
        match parse_event(
            field("contact"),
            field("type"),
            field("id"),
            at,
            row.get("data").cloned(),
            Utc::now(),
        ) {
            Ok(e) if at.is_some() => good.push(e),
            Ok(_) => errors.push(bad(n, "at", "missing: when the event happens".into())),
            Err((f, m)) => errors.push(bad(n, f, m)),
        }
    }
    Ok((good, errors))
}
