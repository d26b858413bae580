//! The pump: hands due jobs to the queue workers.

use std::sync::Arc;

use super::Queue;
use crate::{config::Config, domain::Clock};

/// Hands due jobs to the queue workers (see [`Queue::pump`]) every poll interval until
/// cancelled. A store that is down is logged once, and again when it is back.
pub async fn pump_loop<Q: Queue>(
    store: Arc<Q>,
    cfg: Arc<Config>,
    clock: Arc<dyn Clock>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut failing = false;
    loop {
        loop {
            let moved = store.pump(clock.now()).await;
            match (&moved, failing) {
                (Err(e), false) => {
                    tracing::error!(error = %e, "cannot hand due jobs to the queue; retrying");
                }
                (Ok(_), true) => tracing::info!("queue reachable again"),
                _ => {}
            }
            failing = moved.is_err();
            if !matches!(moved, Ok(n) if n > 0) {
                break;
            }
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(cfg.dispatch.poll_interval) => {}
        }
    }
}
