//! Bearer tokens: read once at start from the variable `api.tokens_env` names
//! (comma-separated, so a new token can be added before the old one is removed), kept
//! only as SHA-256 digests, and compared in constant time.

use crate::store::Store;
use axum::{
    extract::{Request, State},
    http::header::AUTHORIZATION,
    middleware::Next,
    response::Response,
};
use sha2::{Digest, Sha256};

use super::{ApiError, ApiState};

/// The accepted tokens, as digests.
#[derive(Default)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} configured)", self.digests.len())
    }
}

impl Tokens {
    /// The tokens in `list`, comma-separated; blanks around and between them are dropped.
    pub fn parse(list: &str) -> Self {
        Self::new(list.split(','))
    }

    pub fn new<'a>(tokens: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            digests: tokens
                .into_iter()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(digest)
                .collect(),
        }
    }

    /// The tokens in the environment variable `name` (none if it is unset).
    pub fn from_env(name: &str) -> Self {
        Self::parse(&std::env::var(name).unwrap_or_default())
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the tokens. Digests of equal length are compared
    /// byte by byte without stopping at the first difference, and every configured token
    /// is compared: the time taken says nothing about how close a guess was, or which
    /// token it was close to.
    pub fn accepts(&self, presented: &str) -> bool {
        let candidate = digest(presented);
        let mut found = 0u8;
        for known in &self.digests {
            found |= constant_time_eq(known, &candidate);
        }
        found == 1
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// 1 if equal, 0 if not, in time independent of where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> u8 {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    // Keeps the optimiser from turning the loop back into an early-exit comparison.
    let diff = std::hint::black_box(diff);
    u8::from(diff == 0)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Middleware for the protected routes: 401 unless the request carries a known token.
pub(super) async fn require<S: Store>(
    State(state): State<ApiState<S>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let header = req.headers().get(AUTHORIZATION);
    let Some(value) = header else {
        return Err(ApiError::Unauthorized {
            message: "missing bearer token (Authorization: Bearer <token>)",
            invalid: false,
        });
    };
    let token = value.to_str().ok().and_then(bearer);
    match token {
        Some(t) if state.tokens.accepts(t) => Ok(next.run(req).await),
        Some(_) => Err(ApiError::Unauthorized {
            message: "invalid bearer token",
            invalid: true,
        }),
        None => Err(ApiError::Unauthorized {
            message: "the Authorization header must be `Bearer <token>`",
            invalid: true,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly_and_only_when_configured() {
        let t = Tokens::parse(" alpha-token-1 , ,beta-token-2");
        assert!(t.accepts("alpha-token-1"));
        assert!(t.accepts("beta-token-2"));
        for wrong in [
            "alpha-token-2",
            "alpha-token-",
            "alpha-token-1 ",
            "ALPHA-TOKEN-1",
            "",
            "alpha-token-1,beta-token-2",
        ] {
            assert!(!t.accepts(wrong), "{wrong:?} accepted");
        }
        let none = Tokens::from_env("RAPPORT_TEST_SURELY_UNSET_VARIABLE");
        assert!(none.is_empty());
        assert!(!none.accepts(""));
        assert!(!none.accepts("anything"));
        assert_eq!(format!("{t:?}"), "Tokens(2 configured)");
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        let a = [7u8; 32];
        let mut b = a;
        assert_eq!(constant_time_eq(&a, &b), 1);
        for i in [0, 15, 31] {
            b = a;
            b[i] ^= 1;
            assert_eq!(constant_time_eq(&a, &b), 0, "byte {i}");
        }
    }

    #[test]
    fn bearer_headers() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer   "), None);
        assert_eq!(bearer("abc"), None);
    }
}
