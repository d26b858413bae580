//! Group commit for outcomes. SQLite with `synchronous=FULL` manages a few thousand
//! commits a second, so one commit per send cannot keep up; but recording a whole batch
//! at its end would widen the window in which a crash re-sends completed messages. The
//! recorder writes whatever outcomes have arrived in one transaction, and each sender
//! waits for its own to be durable before moving on.

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use crate::{
    domain::{Clock, Outcome},
    store::{Store, StoreError},
};

type Reply = oneshot::Sender<Result<(), String>>;

#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<(Outcome, String, Reply)>,
}

const MAX_GROUP: usize = 512;

impl Recorder {
    /// Starts the writer task; it ends when every `Recorder` clone is dropped, after
    /// writing what it was given.
    pub fn spawn<S: Store>(
        store: Arc<S>,
        clock: Arc<dyn Clock>,
        tracker: &tokio_util::task::TaskTracker,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<(Outcome, String, Reply)>(4 * MAX_GROUP);
        tracker.spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut group = vec![first];
                while group.len() < MAX_GROUP {
                    match rx.try_recv() {
                        Ok(x) => group.push(x),
                        Err(_) => break,
                    }
                }
                let span = tracing::debug_span!("record", outcomes = group.len());
                let result = write(store.as_ref(), clock.as_ref(), &group)
                    .instrument(span)
                    .await;
                for (_, _, reply) in group {
                    let _ = reply.send(result.clone());
                }
            }
        });
        Self { tx }
    }

    /// Records one outcome; returns once it is committed.
    pub async fn record(&self, outcome: Outcome, owner: &str) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        let closed = || StoreError::Query("outcome recorder stopped".into());
        self.tx
            .send((outcome, owner.to_owned(), reply))
            .await
            .map_err(|_| closed())?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Query(e.into())),
            Err(_) => Err(closed()),
        }
    }
}

async fn write<S: Store>(
    store: &S,
    clock: &dyn Clock,
    group: &[(Outcome, String, Reply)],
) -> Result<(), String> {
    // Outcomes are fenced by owner, so write each owner's share under its own name.
    let mut owners: Vec<&str> = group.iter().map(|(_, o, _)| o.as_str()).collect();
    owners.sort_unstable();
    owners.dedup();
    for owner in owners {
        // One outcome per touch: the first (a claim records each once; should two meet
        // in one statement, SQLite would apply either, Redis the first).
        let mut seen = std::collections::HashSet::new();
        let outcomes: Vec<Outcome> = group
            .iter()
            .filter(|(_, o, _)| o == owner)
            .map(|(x, _, _)| x)
            .filter(|x| seen.insert(x.id().clone()))
            .cloned()
            .collect();
        let mut last = String::new();
        // A busy or briefly unavailable database is worth waiting for: the sends already
        // happened, and an unrecorded send is resent once its lease runs out. Up to about
        // a minute, backing off to 2 s between tries.
        for attempt in 0..40u32 {
            match store.record(&outcomes, owner, clock.now()).await {
                Ok(applied) => {
                    last.clear();
                    if (applied as usize) < outcomes.len() {
                        // Fencing dropped them: the lease passed to another worker.
                        tracing::warn!(
                            dropped = outcomes.len() - applied as usize,
                            "outcomes dropped: their lease had passed to another worker"
                        );
                    }
                    break;
                }
                Err(e) => {
                    last = e.to_string();
                    tracing::warn!(error = %e, attempt, "recording outcomes failed; retrying");
                    tokio::time::sleep(Duration::from_millis((100u64 << attempt.min(4)).min(2000)))
                        .await;
                }
            }
        }
        if !last.is_empty() {
            return Err(last);
        }
    }
    Ok(())
}
