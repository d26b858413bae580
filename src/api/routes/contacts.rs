//! `PUT /v1/contacts/{id}` (upsert), `GET /v1/contacts/{id}` (the contact, its consent,
//! last interaction, learned relationship in words and timeline) and
//! `DELETE /v1/contacts/{id}` (erasure).
//!
//! A PUT body has the fields of the contacts file (README "Contacts file"), checked by
//! the same [`ingest::parse_row`] as an import, with two differences that suit JSON:
//! free attributes go under `"attributes": {...}` rather than beside the fields, so a
//! misspelt field is a 422 instead of a silent attribute; and consents may be JSON
//! booleans. The response is the contact as stored, in that same shape, so it can be
//! sent back as a PUT body.

use crate::store::Store;
use axum::{
    Json,
    extract::{Path, State, rejection::PathRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header::LOCATION},
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::instant;
use crate::{
    api::{
        ApiError, ApiState,
        error::FieldProblem,
        json::{JsonObject, reject_unknown, wrong_type},
    },
    domain::{Contact, ContactId, Event, Touch},
    ingest,
};

/// The contacts-file fields (as `ingest::parse_row` knows them).
const FIELDS: [&str; 12] = ingest::KNOWN;
const CONSENTS: [&str; 2] = ["email_consent", "sms_consent"];

#[derive(Debug, thiserror::Error)]
#[error("contact {0} was upserted but cannot be read back")]
struct Vanished(ContactId);

/// The `{id}` of the path, or a 422 naming `id`.
pub(in crate::api) fn path_id(
    path: Result<Path<String>, PathRejection>,
) -> Result<ContactId, ApiError> {
    let Path(raw) = path.map_err(|e| ApiError::BadRequest {
        code: "bad_path",
        message: format!("the path cannot be read: {}", e.body_text()),
    })?;
    ContactId::parse(&raw)
        .map_err(|e| ApiError::field("invalid_field", "id", format!("(in the path) {e}")))
}

pub(in crate::api) async fn put<S: Store>(
    State(state): State<ApiState<S>>,
    path: Result<Path<String>, PathRejection>,
    JsonObject(body): JsonObject,
) -> Result<(StatusCode, HeaderMap, Json<Value>), ApiError> {
    let id = path_id(path)?;
    let row = import_row(body, &id)?;
    let upsert = ingest::parse_row(&row, &state.cfg).map_err(|errors| {
        ApiError::invalid(
            "invalid_field",
            errors
                .into_iter()
                .map(|(field, message)| FieldProblem { field, message })
                .collect(),
        )
    })?;
    let store = &state.store;
    // Created or replaced, for the status code only: two PUTs creating one id at the
    // same instant may both answer 201; the stored contact is the same either way.
    let existed = store
        .get_contact(&id)
        .await
        .map_err(ApiError::internal)?
        .is_some();
    store
        .upsert_contacts(std::slice::from_ref(&upsert))
        .await
        .map_err(ApiError::internal)?;
    // Read back: a consent left out keeps what was stored, and the answer says so.
    let stored = store
        .get_contact(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::internal(Vanished(id.clone())))?;
    let mut headers = HeaderMap::new();
    let status = if existed {
        StatusCode::OK
    } else {
        if let Ok(v) = HeaderValue::from_str(&format!("/v1/contacts/{id}")) {
            headers.insert(LOCATION, v);
        }
        StatusCode::CREATED
    };
    Ok((status, headers, Json(contact_json(&stored))))
}

/// The PUT body as an import row: fields checked for type, the path's id in, the
/// attributes beside the fields (where `parse_row` looks for them).
pub(in crate::api) fn import_row(
    mut body: Map<String, Value>,
    id: &ContactId,
) -> Result<Map<String, Value>, ApiError> {
    let known: Vec<&str> = FIELDS.iter().copied().chain(["attributes"]).collect();
    reject_unknown(&body, &known)?;
    match body.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.trim() == id.as_str() => {}
        Some(Value::String(_)) => {
            return Err(ApiError::Conflict {
                code: "id_mismatch",
                field: Some("id"),
                message: format!(
                    "id: the body's id is not the path's ({id}); a contact's id cannot change"
                ),
            });
        }
        Some(other) => return Err(wrong_type("id", "a string", other)),
    }
    body.insert("id".into(), Value::String(id.to_string()));
    for field in FIELDS {
        let consent = CONSENTS.contains(&field);
        match body.get(field) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Bool(b)) if consent => {
                let yes_no = if *b { "yes" } else { "no" };
                body.insert(field.into(), Value::String(yes_no.into()));
            }
            Some(other) if consent => {
                return Err(wrong_type(field, "true, false, \"yes\" or \"no\"", other));
            }
            Some(other) => return Err(wrong_type(field, "a string", other)),
        }
    }
    let attributes = match body.remove("attributes") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(other) => return Err(wrong_type("attributes", "an object", &other)),
    };
    for (name, value) in attributes {
        if FIELDS.contains(&name.as_str()) || name == "attributes" {
            return Err(ApiError::field(
                "invalid_field",
                format!("attributes.{name}"),
                "is a contact field, not an attribute: give it at the top level",
            ));
        }
        body.insert(name, value);
    }
    Ok(body)
}

/// A contact in the PUT body's shape (absent fields as null).
pub(in crate::api) fn contact_json(c: &Contact) -> Value {
    json!({
        "id": c.id.as_str(),
        "first_name": c.first_name,
        "last_name": c.last_name,
        "email": c.email.as_ref().map(|e| e.as_str()),
        "phone": c.phone.as_ref().map(|p| p.as_str()),
        "timezone": c.timezone.map(|t| t.name()),
        "locale": c.locale,
        "birthday": c.birthday.map(|b| b.to_field()),
        "customer_since": c.customer_since.map(|d| d.format("%Y-%m-%d").to_string()),
        "tier": c.tier,
        "email_consent": c.email_consent,
        "sms_consent": c.sms_consent,
        "attributes": c.attributes,
    })
}

pub(in crate::api) async fn get<S: Store>(
    State(state): State<ApiState<S>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = path_id(path)?;
    let store = &state.store;
    let contact = store
        .get_contact(&id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::NotFound(format!("no contact with id {id}")))?;
    let now = state.clock.now();
    // Only the last interaction is wanted from it: reading from `now` keeps the rest short.
    let last_interaction = store
        .policy_records(std::slice::from_ref(&id), now, &[])
        .await
        .map_err(ApiError::internal)?
        .remove(&id)
        .and_then(|r| r.last_interaction);
    let touches = store
        .touches_for_contact(&id)
        .await
        .map_err(ApiError::internal)?;
    let events = store
        .events_for_contact(&id)
        .await
        .map_err(ApiError::internal)?;
    let responses = store
        .responses_for_contact(&id)
        .await
        .map_err(ApiError::internal)?;
    let rel = store
        .relationship(&id)
        .await
        .map_err(ApiError::internal)?
        .unwrap_or_default();
    let zone = contact.zone(state.cfg.rules.defaults.timezone);
    let model = &state.cfg.learning.model;
    let mut entries = timeline(&events, &touches);
    entries.extend(responses.iter().map(|r| {
        let mut v = super::responses::response_json(r);
        v["kind"] = json!("response");
        v["response"] = json!(r.kind.as_str());
        (r.at, v)
    }));
    entries.extend(rel.notes.iter().map(|n| {
        (
            n.at,
            json!({"kind": "note", "at": instant(n.at), "text": n.text}),
        )
    }));
    entries.sort_by_key(|(at, _)| *at);
    Ok(Json(json!({
        "contact": contact_json(&contact),
        "consent": { "email": contact.email_consent, "sms": contact.sms_consent },
        "last_interaction": last_interaction.map(instant),
        "relationship": {
            "summary": crate::learning::describe(&rel.state, &contact.tier, model, zone),
            "engagement": (rel.state.engagement(model, now) * 100.0).round() / 100.0,
            "ignored_in_a_row": rel.state.ignored_in_row(),
            "sunset": rel.state.is_sunset(),
            "learning": state.cfg.learning.enabled,
        },
        "timeline": entries.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })))
}

/// Erases the contact (RFC: GDPR Art. 17): the contact, events, responses, learned
/// state and touches go; hashes of its addresses stay on the suppression list so a
/// re-import is never marketed to. 204, or 404 if there is no such contact.
pub(in crate::api) async fn delete<S: Store>(
    State(state): State<ApiState<S>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(path)?;
    let erased = state
        .store
        .erase_contact(&id, state.clock.now())
        .await
        .map_err(ApiError::internal)?;
    if erased {
        tracing::info!(contact = %id, "contact erased");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("no contact with id {id}")))
    }
}

/// Events and touches with their instants, as `rapport contacts show` lists them: a
/// touch at when it was sent, settled, or is next due.
fn timeline(events: &[Event], touches: &[Touch]) -> Vec<(DateTime<Utc>, Value)> {
    let mut entries: Vec<(DateTime<Utc>, Value)> = Vec::new();
    for e in events {
        entries.push((
            e.at,
            json!({
                "kind": "event",
                "at": instant(e.at),
                "type": e.kind,
                "id": e.id.as_str(),
                "data": e.data,
            }),
        ));
    }
    for t in touches {
        let at = t.sent_at.unwrap_or(if t.status.is_final() {
            t.updated_at
        } else {
            t.next_attempt_at
        });
        let mut entry = super::touches::touch_fields(t);
        entry["kind"] = json!("touch");
        entry["at"] = json!(instant(at));
        entries.push((at, entry));
    }
    entries
}
