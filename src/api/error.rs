//! Every failure as one JSON shape:
//! `{"error": {"status": 422, "code": "invalid_field", "message": "...", "field": "birthday"}}`
//! (`field` when one field is to blame; `errors` when several are). A 500 says only
//! "internal error"; its cause goes to the log. The store out of reach is a 503 with
//! `Retry-After` (code `store_unavailable`), never a 500: the request was fine, and the
//! same one may succeed in a moment.

use axum::{
    Json,
    http::{
        HeaderValue, StatusCode,
        header::{RETRY_AFTER, WWW_AUTHENTICATE},
    },
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::store::StoreError;

/// How long a client is asked to wait when the store is out of reach: Redis' client
/// retries its connection with a backoff of at most 2 s, so a Redis back up is in use
/// again well within this.
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// One problem with one field of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or the request cannot be read.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no token, or not one of ours (`invalid`: a token was presented).
    #[error("{message}")]
    Unauthorized {
        message: &'static str,
        invalid: bool,
    },
    /// 403: a request that proves who sent it (a provider's signature) did not.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such resource (or route).
    #[error("{0}")]
    NotFound(String),
    /// 405: the route exists, not with this method.
    #[error("this endpoint does not take that method")]
    MethodNotAllowed,
    /// 409: the request contradicts itself or the resource.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    /// 413: the body is over `api.max_body`.
    #[error("the body is larger than the limit of {limit} bytes (api.max_body)")]
    TooLarge { limit: usize },
    /// 415: not the content type the endpoint takes (`application/json` for most).
    #[error("the body must be {expected}")]
    UnsupportedMediaType { expected: &'static str },
    /// 422: well-formed JSON with a bad field (wrong type, unknown, invalid value), or
    /// a body that is not an object (`problems` empty).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        problems: Vec<FieldProblem>,
    },
    /// 500: our fault; the cause is logged, never returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// 503: the store cannot be reached ([`StoreError::is_unavailable`]); the cause is
    /// logged, the client told to retry after [`RETRY_AFTER_SECS`].
    #[error("the store is unavailable; retry in a few seconds")]
    StoreUnavailable(#[source] StoreError),
    /// 503: the store was lost and is held until an operator adopts it
    /// (`rapport store adopt`); nothing is planned meanwhile.
    #[error(
        "the store is held after a loss (its ledger came back empty or different) until an operator runs `rapport store adopt`; retry later"
    )]
    StoreHeld,
}

impl ApiError {
    /// A 422 for one field: `message` says what is wrong with it.
    pub fn field(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::invalid(
            code,
            vec![FieldProblem {
                field: field.into(),
                message: message.into(),
            }],
        )
    }

    /// A 422 for every field in `problems` (at least one), the first one leading.
    pub fn invalid(code: &'static str, problems: Vec<FieldProblem>) -> Self {
        let message = match problems.as_slice() {
            [] => "the body is invalid".to_owned(),
            [one] => format!("{}: {}", one.field, one.message),
            [first, rest @ ..] => format!(
                "{}: {} (and {} more problem(s), see errors)",
                first.field,
                first.message,
                rest.len()
            ),
        };
        Self::Invalid {
            code,
            message,
            problems,
        }
    }

    /// A failure on our side: a 500, or a 503 when it is a [`StoreError`] that says
    /// the store is out of reach. Every handler maps its store errors through here (or
    /// [`ApiError::store`]), so an outage is never answered 500.
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        let e: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        match e.downcast::<StoreError>() {
            Ok(store) => Self::store(*store),
            Err(other) => Self::Internal(other),
        }
    }

    /// A store failure: 503 when the store is out of reach, else 500.
    pub fn store(e: StoreError) -> Self {
        if let StoreError::Lost(_) = e {
            return Self::StoreHeld;
        }
        if e.is_unavailable() {
            Self::StoreUnavailable(e)
        } else {
            Self::Internal(Box::new(e))
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::StoreUnavailable(_) | Self::StoreHeld => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } | Self::Conflict { code, .. } => code,
            Self::Unauthorized { .. } => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::TooLarge { .. } => "body_too_large",
            Self::UnsupportedMediaType { .. } => "unsupported_media_type",
            Self::Invalid { code, .. } => code,
            Self::Internal(_) => "internal",
            Self::StoreUnavailable(_) => "store_unavailable",
            Self::StoreHeld => "store_held",
        }
    }

    /// The JSON body (without logging anything).
    pub fn body(&self) -> Value {
        let mut error = json!({
            "status": self.status().as_u16(),
            "code": self.code(),
            "message": self.to_string(),
        });
        match self {
            Self::Invalid { problems, .. } if !problems.is_empty() => {
                error["field"] = json!(problems[0].field);
                if problems.len() > 1 {
                    error["errors"] = problems
                        .iter()
                        .map(|p| json!({"field": p.field, "message": p.message}))
                        .collect();
                }
            }
            Self::Conflict {
                field: Some(field), ..
            } => error["field"] = json!(field),
            _ => {}
        }
        json!({ "error": error })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            // The whole chain, for the operator; the client gets only the message.
            Self::Internal(cause) => {
                tracing::error!(error = %chain(cause.as_ref()), "api request failed");
            }
            Self::StoreUnavailable(cause) => tracing::warn!(
                error = %chain(cause),
                retry_after_s = RETRY_AFTER_SECS,
                "api request failed: the store is unavailable"
            ),
            // The code and field only: messages may quote what the client sent.
            Self::Invalid { problems, .. } => tracing::debug!(
                status = self.status().as_u16(),
                code = self.code(),
                field = problems.first().map_or("", |p| p.field.as_str()),
                "api request rejected"
            ),
            _ => tracing::debug!(
                status = self.status().as_u16(),
                code = self.code(),
                "api request rejected"
            ),
        }
        let mut response = (self.status(), Json(self.body())).into_response();
        if let Self::StoreUnavailable(_) | Self::StoreHeld = self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        if let Self::Unauthorized { invalid, .. } = self {
            // RFC 6750: the scheme, and `invalid_token` when one was presented.
            let value = if invalid {
                "Bearer realm=\"rapport\", error=\"invalid_token\""
            } else {
                "Bearer realm=\"rapport\""
            };
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        response
    }
}

/// `e` and its causes, `: `-separated.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        chain.push_str(": ");
        chain.push_str(&s.to_string());
        source = s.source();
    }
    chain
}
