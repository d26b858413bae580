//! One dispatch's claim: the touches it holds under one lease, what became of each send,
//! and the gate every send passes right before its provider call.
//!
//! Why a gate at the provider call and not only when the batch starts: a batch sends for
//! a while (a slow server, a rate limit), and a process can be paused (SIGSTOP, a VM
//! migration, a long GC in a neighbour) or cut off from the store for longer than its
//! lease. Its lease then passes to another worker, which sends the same touches. Asking
//! at the last moment, by the clock of that moment, whether the lease still covers the
//! whole call closes that window down to the sends already in flight.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::{
    channels::{DeliveryError, Gate},
    domain::{Clock, TouchId},
    store::{Store, StoreError},
};

use crate::config::SEND_MARGIN as SAFETY_MARGIN;

/// What became of one claimed touch's send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Send {
    /// Not at its provider call yet.
    Waiting,
    /// Settled by the policy before any send (held, skipped...): only its record is to
    /// come, which the drain leaves to it.
    Decided,
    /// Admitted by the gate: the provider call started (it may complete at any time).
    Started,
    /// Handed back by the drain before it started; the drain records it.
    Released,
    /// Refused by the gate; whoever sends it records it.
    Refused,
    /// Its outcome is on its way to the store (not yet known to be recorded).
    Recording,
    /// Its lease passed to another claim: not ours to send or record.
    Lost,
    /// Its outcome is recorded.
    Done,
}

/// Why a send was handed back without starting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HandBack {
    /// Record it back to `planned` (this caller made the change).
    Record,
    /// Someone else records it (the drain), or nobody may (the lease is lost).
    Skip,
}

pub(super) struct Claim {
    pub(super) owner: String,
    lease: chrono::Duration,
    /// The lease as the store holds it (whole seconds, as both backends keep it).
    until: Mutex<DateTime<Utc>>,
    sends: Mutex<HashMap<TouchId, Send>>,
    /// One renewal at a time: a gate short of lease waits for the one under way.
    renewing: tokio::sync::Mutex<()>,
    /// How many sends the drain handed back (they are `Done` once recorded).
    released: std::sync::atomic::AtomicUsize,
}

impl Claim {
    /// A claim taken at `claimed_at` for `lease`, on `ids` (the touches the store gave it).
    pub(super) fn new(
        owner: String,
        lease: chrono::Duration,
        claimed_at: DateTime<Utc>,
        ids: impl IntoIterator<Item = TouchId>,
    ) -> Self {
        Self {
            owner,
            lease,
            until: Mutex::new(whole_seconds(claimed_at + lease)),
            sends: Mutex::new(ids.into_iter().map(|id| (id, Send::Waiting)).collect()),
            renewing: tokio::sync::Mutex::new(()),
            released: Default::default(),
        }
    }

    fn sends(&self) -> std::sync::MutexGuard<'_, HashMap<TouchId, Send>> {
        self.sends.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn until(&self) -> DateTime<Utc> {
        *self.until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The touches whose outcome is still to come (the lease must cover them).
    fn open(&self) -> Vec<TouchId> {
        let mut ids: Vec<TouchId> = self
            .sends()
            .iter()
            .filter(|(_, s)| {
                matches!(
                    s,
                    Send::Waiting | Send::Decided | Send::Started | Send::Recording
                )
            })
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Extends the lease on the open touches to a full lease from now. Touches the store
    /// no longer holds for this claim are lost: they are never started.
    pub(super) async fn renew<S: Store>(
        &self,
        store: &S,
        clock: &dyn Clock,
    ) -> Result<(), StoreError> {
        let _one = self.renewing.lock().await;
        let ids = self.open();
        if ids.is_empty() {
            return Ok(());
        }
        let until = whole_seconds(clock.now() + self.lease);
        let held = store.extend_lease(&ids, &self.owner, until).await?;
        let mut sends = self.sends();
        for id in ids.iter().filter(|id| !held.contains(id)) {
            if let Some(s) = sends.get_mut(id) {
                if *s == Send::Waiting {
                    *s = Send::Lost;
                }
            }
        }
        drop(sends);
        *self.until.lock().unwrap_or_else(|p| p.into_inner()) = until;
        if held.len() < ids.len() {
            tracing::warn!(
                claim = %self.owner,
                lost = ids.len() - held.len(),
                "a claim's lease passed to another worker; its unstarted sends are dropped"
            );
        }
        Ok(())
    }

    /// Whether `id` may start a provider call that takes up to `needs`, at `now`: it is
    /// still waiting, the daemon is not stopping and the lease covers the call. Marks it
    /// started if so.
    fn try_start(
        &self,
        id: &TouchId,
        needs: Duration,
        now: DateTime<Utc>,
        stopping: bool,
    ) -> Start {
        let mut sends = self.sends();
        let Some(state) = sends.get_mut(id) else {
            return Start::No("not claimed");
        };
        match *state {
            Send::Waiting => {}
            Send::Lost => return Start::No("its lease passed to another worker"),
            Send::Decided
            | Send::Started
            | Send::Released
            | Send::Refused
            | Send::Recording
            | Send::Done => {
                return Start::No("already handed on");
            }
        }
        if stopping {
            *state = Send::Refused;
            return Start::No("the daemon is stopping, or the store is held");
        }
        let needed =
            chrono::Duration::from_std(needs + SAFETY_MARGIN).unwrap_or(chrono::Duration::MAX);
        if now + needed <= self.until() {
            *state = Send::Started;
            Start::Yes
        } else {
            Start::Short
        }
    }

    /// A send refused by the gate (or stopped before it) goes back to the ledger: says
    /// whether the caller records that.
    pub(super) fn hand_back(&self, id: &TouchId) -> HandBack {
        let mut sends = self.sends();
        match sends.get_mut(id) {
            Some(s @ Send::Waiting) => {
                *s = Send::Refused;
                HandBack::Record
            }
            Some(Send::Refused) => HandBack::Record,
            _ => HandBack::Skip,
        }
    }

    /// The drain: every send that has not started is handed back at once (the caller
    /// records them); their gates refuse them from now on.
    pub(super) fn release_unstarted(&self) -> Vec<TouchId> {
        let mut sends = self.sends();
        let mut out: Vec<TouchId> = sends
            .iter_mut()
            .filter(|(_, s)| **s == Send::Waiting)
            .map(|(id, s)| {
                *s = Send::Released;
                id.clone()
            })
            .collect();
        out.sort();
        self.released
            .fetch_add(out.len(), std::sync::atomic::Ordering::Relaxed);
        out
    }

    /// `id` was settled by the policy (no send): whether its outcome is still this
    /// caller's to record (the drain may have handed it back first).
    pub(super) fn decide(&self, id: &TouchId) -> bool {
        match self.sends().get_mut(id) {
            Some(s @ Send::Waiting) => {
                *s = Send::Decided;
                true
            }
            _ => false,
        }
    }

    /// Whether every touch's outcome is recorded (or belongs to another claim now): the
    /// lease may be let go.
    pub(super) fn settled(&self) -> bool {
        self.sends()
            .values()
            .all(|s| matches!(s, Send::Done | Send::Lost))
    }

    /// How many sends the drain handed back.
    pub(super) fn released_count(&self) -> usize {
        self.released.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The sends under way (started, outcome not recorded), in id order.
    pub(super) fn in_flight(&self) -> Vec<TouchId> {
        let mut ids: Vec<TouchId> = self
            .sends()
            .iter()
            .filter(|(_, s)| **s == Send::Started)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Whether `id` is still to be sent (not handed back, not someone else's).
    pub(super) fn waiting(&self, id: &TouchId) -> bool {
        self.sends().get(id) == Some(&Send::Waiting)
    }

    #[cfg(test)]
    fn started(&self, id: &TouchId) -> bool {
        self.sends().get(id) == Some(&Send::Started)
    }

    #[cfg(test)]
    fn released(&self, id: &TouchId) -> bool {
        self.sends().get(id) == Some(&Send::Released)
    }

    /// Whether this caller is to record `id`'s outcome now (the drain may have handed
    /// it back first, or its lease gone to another claim): marks it being recorded.
    pub(super) fn begin_record(&self, id: &TouchId) -> bool {
        match self.sends().get_mut(id) {
            Some(s @ (Send::Waiting | Send::Decided | Send::Started | Send::Refused)) => {
                *s = Send::Recording;
                true
            }
            _ => false,
        }
    }

    pub(super) fn done(&self, id: &TouchId) {
        if let Some(s) = self.sends().get_mut(id) {
            *s = Send::Done;
        }
    }
}

enum Start {
    Yes,
    /// The lease does not cover the call: renew first.
    Short,
    No(&'static str),
}

/// The store keeps lease instants in whole seconds; so does the claim, rounding down, so
/// it never believes in more lease than the store holds.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// The gate of one claimed touch.
pub(super) struct TouchGate<'a, S> {
    pub(super) claim: &'a Claim,
    pub(super) touch: &'a TouchId,
    pub(super) store: &'a Arc<S>,
    pub(super) clock: &'a dyn Clock,
    pub(super) stopping: &'a CancellationToken,
    /// A store found lost (see `custody`) starts no send, even of a claim taken before.
    pub(super) custody: &'a crate::custody::Custody,
}

impl<S: Store> Gate for TouchGate<'_, S> {
    fn admit(&self, needs: Duration) -> BoxFuture<'_, Result<(), DeliveryError>> {
        Box::pin(async move {
            let stopping = || self.stopping.is_cancelled() || self.custody.lost().is_some();
            match self
                .claim
                .try_start(self.touch, needs, self.clock.now(), stopping())
            {
                Start::Yes => return Ok(()),
                Start::No(why) => return Err(DeliveryError::not_started(why)),
                Start::Short => {}
            }
            // Short of lease (a renewal failed, or the process was paused): renew now,
            // then ask again by the clock after the renewal.
            if let Err(e) = self.claim.renew(self.store.as_ref(), self.clock).await {
                tracing::warn!(claim = %self.claim.owner, error = %e, "could not renew a lease before a send");
            }
            match self
                .claim
                .try_start(self.touch, needs, self.clock.now(), stopping())
            {
                Start::Yes => Ok(()),
                Start::No(why) => Err(DeliveryError::not_started(why)),
                Start::Short => {
                    self.claim.hand_back(self.touch);
                    Err(DeliveryError::not_started(
                        "its lease could not be renewed to cover the send",
                    ))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }
    fn id(s: &str) -> TouchId {
        TouchId::from_stored(format!("birthday:{s}:2027"))
    }
    fn claim() -> Claim {
        Claim::new(
            "o".into(),
            chrono::Duration::seconds(30),
            t(0),
            [id("a"), id("b"), id("c")],
        )
    }

    #[test]
    fn a_send_starts_only_with_its_call_and_the_margin_left_on_the_lease() {
        let c = claim();
        let needs = Duration::from_secs(15);
        // 30 s lease: at 13 s, 17 s are left: exactly the call plus the margin.
        assert!(matches!(
            c.try_start(&id("a"), needs, t(13), false),
            Start::Yes
        ));
        assert!(matches!(
            c.try_start(&id("b"), needs, t(14), false),
            Start::Short
        ));
        // A paused process wakes long after its lease: short, never admitted on its own.
        assert!(matches!(
            c.try_start(&id("b"), needs, t(300), false),
            Start::Short
        ));
        assert!(c.started(&id("a")));
        assert!(matches!(
            c.try_start(&id("a"), needs, t(1), false),
            Start::No(_)
        ));
    }

    #[test]
    fn stopping_refuses_and_the_drain_releases_only_what_has_not_started() {
        let c = claim();
        assert!(matches!(
            c.try_start(&id("a"), Duration::ZERO, t(0), false),
            Start::Yes
        ));
        assert!(matches!(
            c.try_start(&id("b"), Duration::ZERO, t(0), true),
            Start::No(_)
        ));
        // b was refused by its gate: its sender records it, not the drain.
        assert_eq!(c.hand_back(&id("b")), HandBack::Record);
        assert_eq!(c.release_unstarted(), vec![id("c")]);
        assert!(c.released(&id("c")));
        assert_eq!(c.hand_back(&id("c")), HandBack::Skip);
        assert!(c.started(&id("a")));
    }

    #[test]
    fn a_claim_is_settled_only_once_every_outcome_is_recorded() {
        let c = claim();
        assert!(matches!(
            c.try_start(&id("a"), Duration::ZERO, t(0), false),
            Start::Yes
        ));
        assert!(c.begin_record(&id("a")));
        assert!(!c.begin_record(&id("a")), "recorded once");
        assert_eq!(c.release_unstarted(), vec![id("b"), id("c")]);
        // Handed back by the drain: not this sender's to record any more.
        assert!(!c.begin_record(&id("b")));
        assert!(!c.settled(), "outcomes still on their way");
        for x in ["a", "b", "c"] {
            c.done(&id(x));
        }
        assert!(c.settled());
    }

    #[tokio::test]
    async fn the_gate_starts_nothing_once_the_store_is_held() {
        use crate::{
            custody,
            domain::SystemClock,
            store::{Coordination, SqliteStore},
        };
        let store = Arc::new(SqliteStore::open("sqlite::memory:").await.unwrap());
        let held = custody::establish(store.as_ref()).await.unwrap();
        let c = Claim::new(
            "o".into(),
            chrono::Duration::seconds(30),
            Utc::now(),
            [id("a")],
        );
        let stopping = CancellationToken::new();
        let touch = id("a");
        let gate = TouchGate {
            claim: &c,
            touch: &touch,
            store: &store,
            clock: &SystemClock,
            stopping: &stopping,
            custody: &held,
        };
        store.set_setting(custody::ID, "another").await.unwrap();
        custody::check(store.as_ref(), &held, Utc::now())
            .await
            .unwrap();
        let refused = gate.admit(Duration::from_secs(1)).await;
        assert_eq!(
            refused.map_err(|e| e.class),
            Err(crate::channels::DeliveryClass::NotStarted)
        );
        assert_eq!(c.hand_back(&id("a")), HandBack::Record);
    }
}
