//! Request bodies: `Content-Type: application/json` (415 otherwise), at most
//! `api.max_body` bytes (413), well-formed JSON (400, saying where it breaks, never
//! quoting it), and one JSON object (422). Fields are then checked by each route, so a
//! wrong type or an unknown field is a 422 naming the field.

use crate::store::Store;
use axum::{
    body::Bytes,
    extract::{FromRequest, Request},
    http::{StatusCode, header::CONTENT_TYPE},
};
use serde_json::{Map, Value};

use super::{ApiError, ApiState};

/// A JSON object body, checked as above.
pub(super) struct JsonObject(pub Map<String, Value>);

impl<S: Store> FromRequest<ApiState<S>> for JsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState<S>) -> Result<Self, ApiError> {
        let is_json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_type);
        if !is_json {
            return Err(ApiError::UnsupportedMediaType {
                expected: "JSON (Content-Type: application/json)",
            });
        }
        let bytes = read_body(req, state).await?;
        parse_object(&bytes).map(Self)
    }
}

/// The raw body, at most `api.max_body` bytes (413 beyond, in the API's error shape).
pub(super) async fn read_body<S: Store>(
    req: Request,
    state: &ApiState<S>,
) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                limit: state.cfg.api.max_body,
            }
        } else {
            ApiError::BadRequest {
                code: "unreadable_body",
                message: "the body could not be read".into(),
            }
        }
    })
}

/// `application/json`, or a `+json` type, with any parameters (`; charset=utf-8`).
fn is_json_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    let essence = essence.to_ascii_lowercase();
    essence == "application/json"
        || essence
            .strip_prefix("application/")
            .is_some_and(|sub| sub.ends_with("+json"))
}

/// The body as one JSON object.
pub(super) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(ApiError::invalid(
            "not_an_object",
            vec![super::error::FieldProblem {
                field: "(body)".into(),
                message: format!("must be a JSON object, not {}", kind_of(&other)),
            }],
        )),
        Err(e) => Err(ApiError::BadRequest {
            code: "malformed_json",
            message: syntax_message(&e),
        }),
    }
}

/// Where and how the JSON breaks. Built from the error's category and position only:
/// serde_json's own text is not quoted, so no part of the body comes back.
fn syntax_message(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "ends too early",
        serde_json::error::Category::Syntax => "has a syntax error",
        serde_json::error::Category::Data => "has a value JSON cannot hold",
        serde_json::error::Category::Io => "could not be read",
    };
    if e.line() == 0 {
        format!("the body is not valid JSON: it {what}")
    } else {
        format!(
            "the body is not valid JSON: it {what} at line {}, column {}",
            e.line(),
            e.column()
        )
    }
}

/// The JSON type of `v`, for messages about wrong types.
pub(super) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Field `name` of `body` as text: absent or null is `None`; any other type is a 422.
pub(super) fn optional_str<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(name, "a string", other)),
    }
}

/// Field `name` of `body` as text, required.
pub(super) fn required_str<'a>(
    body: &'a Map<String, Value>,
    name: &str,
) -> Result<&'a str, ApiError> {
    optional_str(body, name)?
        .ok_or_else(|| ApiError::field("missing_field", name, "missing (required)"))
}

pub(super) fn wrong_type(name: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::field(
        "wrong_type",
        name,
        format!("must be {expected}, not {}", kind_of(got)),
    )
}

/// A 422 for the first key of `body` not in `known`.
pub(super) fn reject_unknown(body: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(ApiError::field(
            "unknown_field",
            k.clone(),
            format!("unknown field (known: {})", known.join(", ")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json_type(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "json",
            "",
        ] {
            assert!(!is_json_type(bad), "{bad}");
        }
    }

    #[test]
    fn malformed_json_says_where_without_quoting_it() {
        let body = br#"{"email": "ada@example.com", "first_name": "Ada" "#;
        let err = parse_object(body).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let msg = err.to_string();
        assert!(msg.contains("line 1"), "{msg}");
        assert!(!msg.contains("ada") && !msg.contains("Ada"), "{msg}");
        let err = parse_object(b"{\"a\": nul}").unwrap_err();
        assert_eq!(err.code(), "malformed_json");
        let err = parse_object(b"[1, 2]").unwrap_err();
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(err.to_string().contains("an array"), "{err}");
        assert!(parse_object(b" {\"a\": 1} ").is_ok());
    }
}
