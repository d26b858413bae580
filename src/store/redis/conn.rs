//! A Redis connection whose first command waits until a given instant: a queue worker
//! restarted after a backend error (Redis restarting, say) starts on one of these, so a
//! worker that keeps failing backs off instead of spinning.

use redis::{Cmd, Pipeline, RedisFuture, Value, aio::ConnectionLike, aio::ConnectionManager};
use tokio::time::Instant;

#[derive(Clone)]
pub struct GatedConnection {
    inner: ConnectionManager,
    not_before: Option<Instant>,
}

impl GatedConnection {
    pub fn new(inner: ConnectionManager, not_before: Option<Instant>) -> Self {
        Self { inner, not_before }
    }

    async fn open_gate(&mut self) {
        if let Some(at) = self.not_before.take() {
            tokio::time::sleep_until(at).await;
        }
    }
}

impl ConnectionLike for GatedConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            self.open_gate().await;
            self.inner.req_packed_command(cmd).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            self.open_gate().await;
            self.inner
                .req_packed_commands(pipeline, offset, count)
                .await
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}
