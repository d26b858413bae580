//! Which store errors mean "the store cannot be reached right now" rather than "this
//! request went wrong": the API answers the first with 503 and `Retry-After` (see
//! [`super::StoreError::is_unavailable`]).
//!
//! The backends' errors are recognised here, where both client libraries are known,
//! by walking the error's sources: an error may be wrapped (apalis wraps the driver's,
//! `#[error(transparent)]`, so its own `source()` skips a level and is unwrapped here).

use std::error::Error;

/// SQLite primary result codes (the low byte of an extended code) that say the
/// database cannot be used at the moment, not that the statement is wrong:
/// `SQLITE_BUSY` (5, still locked by another connection after the busy timeout),
/// `SQLITE_LOCKED` (6), `SQLITE_IOERR` (10, the disk failed a read or write),
/// `SQLITE_FULL` (13, the disk is full) and `SQLITE_CANTOPEN` (14).
const SQLITE_UNAVAILABLE: [i32; 5] = [5, 6, 10, 13, 14];

/// Whether `e`, or anything it was caused by, says the store is unreachable.
pub(super) fn unreachable(e: &(dyn Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(e) = next {
        if redis_unreachable(e) || sqlite_unreachable(e) || e.is::<std::io::Error>() {
            return true;
        }
        next = match (
            e.downcast_ref::<apalis_redis::Error>(),
            e.downcast_ref::<apalis_sqlite::Error>(),
        ) {
            (Some(apalis_redis::Error::Database(inner)), _) => Some(inner),
            (_, Some(apalis_sqlite::Error::Database(inner))) => Some(inner),
            _ => e.source(),
        };
    }
    false
}

/// Redis refused, dropped or timed out the connection (`ConnectionManager` also fails
/// each command this way, at once, while it reconnects), or the server cannot serve
/// now: loading its data after a restart, a script running too long (`BUSY`), a
/// replica that lost its primary or was left read-only by a failover, a cluster down.
fn redis_unreachable(e: &(dyn Error + 'static)) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    let Some(e) = e.downcast_ref::<redis::RedisError>() else {
        return false;
    };
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.code() == Some("BUSY")
        || matches!(
            e.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading
                        | ServerErrorKind::MasterDown
                        | ServerErrorKind::TryAgain
                        | ServerErrorKind::ClusterDown
                        | ServerErrorKind::ReadOnly
                )
        )
}

/// The pool gave no connection in time (the one connection held past its timeout) or
/// is closed, the connection's worker died, or SQLite reported one of
/// [`SQLITE_UNAVAILABLE`].
fn sqlite_unreachable(e: &(dyn Error + 'static)) -> bool {
    match e.downcast_ref::<sqlx::Error>() {
        Some(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed) => {
            true
        }
        Some(sqlx::Error::Io(_)) => true,
        Some(sqlx::Error::Database(db)) => db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| SQLITE_UNAVAILABLE.contains(&(c & 0xff))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outages_are_told_from_other_failures() {
        let io = |kind| std::io::Error::new(kind, "x");
        let refused = redis::RedisError::from(io(std::io::ErrorKind::ConnectionRefused));
        let reset = redis::RedisError::from(io(std::io::ErrorKind::ConnectionReset));
        let wrong_type = redis::RedisError::from((redis::ErrorKind::UnexpectedReturnType, "x"));
        let cases: [(&(dyn Error + 'static), bool); 8] = [
            (&refused, true),
            (&reset, true),
            (&sqlx::Error::PoolTimedOut, true),
            (&sqlx::Error::PoolClosed, true),
            (&io(std::io::ErrorKind::TimedOut), true),
            (&wrong_type, false),
            (&sqlx::Error::RowNotFound, false),
            (&sqlx::Error::Protocol("x".into()), false),
        ];
        for (e, want) in cases {
            assert_eq!(unreachable(e), want, "{e}");
        }
        let wrapped = apalis_sqlite::Error::Database(sqlx::Error::PoolTimedOut);
        assert!(unreachable(&wrapped), "apalis' wrapping is seen through");
        let wrapped = apalis_redis::Error::Database(refused);
        assert!(unreachable(&wrapped));
    }
}
