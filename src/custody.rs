//! Store custody: the ledger is never silently lost.
//!
//! Each store carries an identity (a ULID in the setting `store.id`) created the first
//! time a daemon uses it. Every `rapport run` process remembers the identity it works
//! with and checks it every second. A store that comes back empty (Redis restarted
//! without persistence, FLUSHALL, a failover to an empty replica) or different (another
//! server behind the URL) has lost the ledger: the touches already sent are no longer
//! recorded, so planning again would send every due note a second time. The process then
//! *holds*: it stops planning and sending at once, `/readyz` answers 503 with the reason,
//! and it marks the store (`store.lost`) so every other process, and the next start,
//! holds too. Contacts can still be imported. An operator runs `rapport store adopt`
//! once the contacts are back: from then on, what was already due before the adoption,
//! for the contacts present at it, is not sent again (`--resend-due` asks for the
//! opposite), and contacts added later are planned as usual.
//!
//! On Redis the planning and claiming scripts also check the identity themselves
//! (the store's fence), so nothing is planned or claimed in a lost store even in the
//! second before a process notices.

use crate::store::{Contacts, Coordination, Ledger};
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Adoption, Clock, ContactId, NewTouch},
    store::StoreError,
};

/// The store's identity.
pub const ID: &str = "store.id";
/// Set by the first process that finds the store lost: why, and when.
pub const LOST: &str = "store.lost";
/// The last adoption (`rapport store adopt`), as JSON.
pub const ADOPTED: &str = "store.adopted";

/// How often each process checks the identity.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What this process knows of its store.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// The store is the one this process works with.
    Held { id: String },
    /// The store was lost: nothing is planned or sent until it is adopted.
    Lost {
        /// The identity the process worked with (`None`: it started on a store already
        /// marked lost).
        previous: Option<String>,
        reason: String,
    },
}

/// Shared by every task of a process: the planners, the dispatcher and the loops ask it
/// before they act, `/readyz` reports it.
#[derive(Debug, Clone)]
pub struct Custody(Arc<RwLock<State>>);

impl Custody {
    fn new(state: State) -> Self {
        Self(Arc::new(RwLock::new(state)))
    }

    /// A custody that holds a store of this identity (tests, and the one-shot commands
    /// that need none).
    pub fn holding(id: &str) -> Self {
        Self::new(State::Held { id: id.to_owned() })
    }

    fn state(&self) -> State {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, state: State) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = state;
    }

    /// Why the store is held (`None` while it is the one this process works with).
    pub fn lost(&self) -> Option<String> {
        match self.state() {
            State::Held { .. } => None,
            State::Lost { reason, .. } => Some(reason),
        }
    }

    /// The identity this process works with, while it holds its store.
    pub fn id(&self) -> Option<String> {
        match self.state() {
            State::Held { id } => Some(id),
            State::Lost { .. } => None,
        }
    }
}

/// The store's identity as it stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub id: Option<String>,
    pub lost: Option<String>,
    pub adopted: Option<Adoption>,
}

#[derive(Serialize, Deserialize)]
struct AdoptedRecord {
    id: String,
    at: DateTime<Utc>,
    resend_due: bool,
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.trim().is_empty())
}

/// Reads the store's identity, lost marker and last adoption.
pub async fn identity<S: Coordination>(store: &S) -> Result<Identity, StoreError> {
    let id = non_empty(store.setting(ID).await?);
    let lost = non_empty(store.setting(LOST).await?);
    let adopted = non_empty(store.setting(ADOPTED).await?)
        .and_then(|raw| serde_json::from_str::<AdoptedRecord>(&raw).ok())
        .map(|r| Adoption {
            id: r.id,
            at: r.at,
            resend_due: r.resend_due,
        });
    Ok(Identity { id, lost, adopted })
}

/// The adoption planning must honour, if the store was ever adopted.
pub async fn adoption<S: Coordination>(store: &S) -> Result<Option<Adoption>, StoreError> {
    Ok(identity(store).await?.adopted)
}

/// At a daemon's start: the store's identity, created now if this is its first use. A
/// store marked lost is held from the start.
pub async fn establish<S: Coordination>(store: &S) -> Result<Custody, StoreError> {
    let found = identity(store).await?;
    if let Some(reason) = found.lost {
        return Ok(held_from_start(&reason));
    }
    let id = match found.id {
        Some(id) => id,
        None => {
            // Set if absent: replicas starting together agree on one.
            let fresh = ulid::Ulid::new().to_string();
            let id = store.init_setting(ID, &fresh).await?;
            if id == fresh && store.shared() {
                // A first use, or a shared store that just came back empty: a process
                // that held the old one marks it lost within a check or two. Wait for
                // that before planning anything into it.
                tokio::time::sleep(2 * CHECK_EVERY).await;
                // A store out of reach for a moment now is no reason not to start: the
                // watcher checks again every second.
                if let Ok(Identity {
                    lost: Some(reason), ..
                }) = identity(store).await
                {
                    return Ok(held_from_start(&reason));
                }
            }
            id
        }
    };
    store.set_fence(Some(&id));
    tracing::info!(store_id = %id, "store identity");
    Ok(Custody::holding(&id))
}

fn held_from_start(marker: &str) -> Custody {
    tracing::error!(
        reason = %marker,
        "the store is held: it was found lost (its ledger is gone); nothing is planned or sent until `rapport store adopt` is run (see README, Failure modes)"
    );
    Custody::new(State::Lost {
        previous: None,
        reason: lost_reason(marker),
    })
}

fn lost_reason(marker: &str) -> String {
    format!("the store was lost ({marker}); run `rapport store adopt` once its contacts are back")
}

/// One check of the store against what `custody` holds: holds on a loss (marking the
/// store), resumes on an adoption.
pub async fn check<S: Coordination>(
    store: &S,
    custody: &Custody,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let found = identity(store).await?;
    match custody.state() {
        State::Held { id: mine } => {
            let counter = store.write_counter().await?;
            let why = match (&found.lost, &found.id, counter) {
                (Some(marker), _, _) => marker.clone(),
                (None, None, _) => format!("its identity {mine} is gone: it came back empty"),
                (None, Some(other), _) if *other != mine => {
                    format!("it has another identity ({other}, not {mine})")
                }
                (None, Some(_), Some((now, seen))) if now < seen => format!(
                    "it went back in time: its write counter is {now}, this process saw {seen} (a failover to a replica that had not caught up, or an older backup restored): outcomes recorded since are gone"
                ),
                (None, Some(_), _) => return Ok(()),
            };
            if found.lost.is_none() {
                // Marked in the store as it is now, so every process (and the next start)
                // holds too, not only those that knew the old identity. Written over an
                // empty one: an adoption leaves the setting empty, not absent.
                let marker = format!("{why}; found at {}", now.to_rfc3339());
                store.set_setting(LOST, &marker).await?;
            }
            let reason = lost_reason(&why);
            tracing::error!(
                store_id = %mine,
                reason = %why,
                "STORE LOST: the ledger of sent notes is gone, so planning again would send them twice; planning and sending are stopped. Import the contacts again if needed, then run `rapport store adopt` (see README, Failure modes)"
            );
            custody.set(State::Lost {
                previous: Some(mine),
                reason,
            });
        }
        State::Lost { previous, .. } => {
            let (None, Some(id)) = (&found.lost, &found.id) else {
                return Ok(());
            };
            let adopted = found.adopted.as_ref().is_some_and(|a| a.id == *id);
            // Back as it was (the loss was seen through a passing wrong view), or adopted.
            if adopted || previous.as_deref() == Some(id.as_str()) {
                store.set_fence(Some(id));
                tracing::info!(store_id = %id, adopted, "the store is held again: planning and sending resume");
                custody.set(State::Held { id: id.clone() });
            }
        }
    }
    Ok(())
}

/// Checks the store every [`CHECK_EVERY`] until cancelled.
pub async fn watch<S: Coordination>(
    store: Arc<S>,
    custody: Custody,
    clock: Arc<dyn Clock>,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut failing = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(CHECK_EVERY) => {}
        }
        match check(store.as_ref(), &custody, clock.now()).await {
            Ok(()) => failing = false,
            // An unreachable store is the other loops' to report; the identity is
            // checked again when it answers.
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "cannot check the store's identity; will retry");
            }
            Err(_) => {}
        }
    }
}

/// `rapport store adopt`: takes the store as it is as the ledger from now on. Unless
/// `resend_due`, touches in it that were due before now and not yet sent are settled as
/// skipped, and planning skips what was due before now for the contacts present now.
pub async fn adopt<S: Ledger + Coordination>(
    store: &S,
    now: DateTime<Utc>,
    resend_due: bool,
) -> Result<(Adoption, u64), StoreError> {
    let settled = if resend_due {
        0
    } else {
        store.settle_due(now, &adopted_reason(now)).await?
    };
    let id = ulid::Ulid::new().to_string();
    let record = AdoptedRecord {
        id: id.clone(),
        at: now,
        resend_due,
    };
    let json = serde_json::to_string(&record).unwrap_or_default();
    store.set_setting(ADOPTED, &json).await?;
    store.set_setting(ID, &id).await?;
    store.set_setting(LOST, "").await?;
    Ok((
        Adoption {
            id,
            at: now,
            resend_due,
        },
        settled,
    ))
}

fn adopted_reason(at: DateTime<Utc>) -> String {
    format!(
        "skipped: due before the store was adopted at {} (it may have been sent before the store was lost)",
        at.format("%Y-%m-%d %H:%M:%SZ")
    )
}

/// Planning after an adoption: touches due before it, for contacts already in the store
/// then, are recorded as skipped (`planner::settle_adopted` decides; this reads what it
/// needs). Free until something qualifies: one read of the adoption setting.
pub async fn settle_adopted<S: Contacts + Coordination>(
    store: &S,
    touches: &mut [NewTouch],
) -> Result<(), StoreError> {
    let Some(adoption) = adoption(store).await? else {
        return Ok(());
    };
    let mut ids: Vec<ContactId> = touches
        .iter()
        .filter(|t| crate::planner::due_before_adoption(t, &adoption))
        .map(|t| t.contact_id.clone())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    ids.sort();
    ids.dedup();
    let first_seen: HashMap<ContactId, DateTime<Utc>> = store.first_seen(&ids).await?;
    crate::planner::settle_adopted(
        touches,
        &adoption,
        |c| first_seen.get(c).is_some_and(|at| *at <= adoption.at),
        &adopted_reason(adoption.at),
    );
    Ok(())
}
