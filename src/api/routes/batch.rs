//! `POST /v1/contacts:batch`: many contacts in one request, as NDJSON
//! (`Content-Type: application/x-ndjson`): one JSON object per line, each a
//! `PUT /v1/contacts/{id}` body with its `id`. Blank lines are skipped.
//!
//! Every line is checked on its own and answered on its own (`results`, in line
//! order: `created`, `updated`, or `error` with the API's error shape); the valid lines
//! are stored together, so a bad line never holds up the others. The answer is 200 when
//! the body could be read at all.

use crate::store::Store;
use axum::{
    Json,
    extract::{Request, State},
    http::header::CONTENT_TYPE,
};
use serde_json::{Value, json};

use super::contacts::import_row;
use crate::{
    api::{
        ApiError, ApiState,
        error::FieldProblem,
        json::{parse_object, read_body},
    },
    domain::ContactId,
    ingest,
};

/// At most this many lines per request (more: split the file).
pub(in crate::api) const MAX_LINES: usize = 10_000;

/// Whether the request says its body is NDJSON (any of its common media types).
fn is_ndjson(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|t| {
            matches!(
                t.as_str(),
                "application/x-ndjson" | "application/ndjson" | "application/jsonl"
            )
        })
}

pub(in crate::api) async fn post<S: Store>(
    State(state): State<ApiState<S>>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    if !is_ndjson(&req) {
        return Err(ApiError::UnsupportedMediaType {
            expected: "NDJSON (Content-Type: application/x-ndjson), one contact per line",
        });
    }
    let bytes = read_body(req, &state).await?;
    let text = std::str::from_utf8(&bytes).map_err(|_| ApiError::BadRequest {
        code: "unreadable_body",
        message: "the body is not UTF-8".into(),
    })?;
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    if lines.len() > MAX_LINES {
        return Err(ApiError::field(
            "too_many_lines",
            "(body)",
            format!("{} lines; at most {MAX_LINES} per request", lines.len()),
        ));
    }
    let mut results: Vec<Value> = Vec::with_capacity(lines.len());
    let mut upserts = Vec::new();
    let mut valid: Vec<(usize, ContactId)> = Vec::new();
    for (n, line) in lines {
        match parse_line(line, &state) {
            Ok(upsert) => {
                valid.push((results.len(), upsert.contact.id.clone()));
                results.push(json!({ "line": n, "id": upsert.contact.id.as_str() }));
                upserts.push(upsert);
            }
            Err((id, e)) => {
                let mut v = e.body();
                v["line"] = json!(n);
                v["id"] = json!(id);
                results.push(v);
            }
        }
    }
    let store = state.store.as_ref();
    let ids: Vec<ContactId> = valid.iter().map(|(_, id)| id.clone()).collect();
    let existing = store.get_contacts(&ids).await.map_err(ApiError::internal)?;
    store
        .upsert_contacts(&upserts)
        .await
        .map_err(ApiError::internal)?;
    let (mut created, mut updated) = (0, 0);
    let mut seen = std::collections::HashSet::new();
    for (i, id) in valid {
        // A second line for an id created by an earlier one updates it.
        let result = if existing.contains_key(&id) || !seen.insert(id) {
            updated += 1;
            "updated"
        } else {
            created += 1;
            "created"
        };
        results[i]["result"] = json!(result);
    }
    let failed = results.len() - created - updated;
    Ok(Json(json!({
        "created": created,
        "updated": updated,
        "failed": failed,
        "results": results,
    })))
}

/// One line: an object with an `id`, checked as a PUT body.
fn parse_line<S: Store>(
    line: &str,
    state: &ApiState<S>,
) -> Result<crate::store::ContactUpsert, (Option<String>, ApiError)> {
    let body = parse_object(line.as_bytes()).map_err(|e| (None, e))?;
    let raw_id = match body.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err((None, crate::api::json::wrong_type("id", "a string", other)));
        }
        None => {
            return Err((
                None,
                ApiError::field("missing_field", "id", "missing (required on every line)"),
            ));
        }
    };
    let fail = |e| (Some(raw_id.clone()), e);
    let id = ContactId::parse(&raw_id)
        .map_err(|e| fail(ApiError::field("invalid_field", "id", e.to_string())))?;
    let row = import_row(body, &id).map_err(fail)?;
    ingest::parse_row(&row, &state.cfg).map_err(|errors| {
        fail(ApiError::invalid(
            "invalid_field",
            errors
                .into_iter()
                .map(|(field, message)| FieldProblem { field, message })
                .collect(),
        ))
    })
}
