//! The dispatcher in-process, with a fixed clock: what happens when a job runs at the
//! wrong moment (window closed, before the next window, daemon stopping).

use rapport::store::Ledger;
use std::{path::Path, sync::Arc};

use chrono::{DateTime, Utc};
use rapport::{
    channels,
    config::Config,
    dispatch::{Dispatcher, Recorder},
    domain::{Clock as _, ContactId, FixedClock, TouchStatus},
    ingest,
    planner::runner,
    render::Renderer,
    store::SqliteStore,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

struct Rig {
    dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    clock: Arc<FixedClock>,
    dispatcher: Dispatcher<SqliteStore>,
}

/// One friend-tier contact in UTC with a birthday on 07-14; window 09:00-18:00.
async fn rig(extra: &[(&str, &str)]) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let mut env = vec![
        (
            "RAPPORT__STORAGE__URL".to_owned(),
            format!("sqlite://{}/r.db", dir.path().display()),
        ),
        (
            "RAPPORT__TEMPLATES__DIR".to_owned(),
            format!("{REPO}/templates"),
        ),
        (
            "RAPPORT__CHANNELS__EMAIL__OUTBOX_DIR".to_owned(),
            format!("{}/outbox", dir.path().display()),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = Arc::new(
        Config::load_with(Path::new(&format!("{REPO}/config/rapport.toml")), None, env).unwrap(),
    );
    let store = Arc::new(SqliteStore::open(&cfg.storage.url).await.unwrap());
    let csv = dir.path().join("c.csv");
    std::fs::write(
        &csv,
        "id,first_name,email,timezone,birthday,tier\nada,Ada,ada@example.com,UTC,--07-14,friend\n",
    )
    .unwrap();
    let report = ingest::import_file(store.as_ref(), &cfg, &csv)
        .await
        .unwrap();
    assert_eq!(report.imported, 1);
    let clock = Arc::new(FixedClock::new(utc("2026-07-14T08:00:00Z")));
    let planned = runner::run_once(
        store.as_ref(),
        &cfg,
        cfg.rules.occasion("birthday").unwrap(),
        clock.now(),
    )
    .await
    .unwrap();
    assert_eq!(planned.new, 1);
    let dispatcher = Dispatcher {
        store: store.clone(),
        cfg: cfg.clone(),
        renderer: Arc::new(Renderer::load(&cfg.templates_dir).unwrap()),
        channels: Arc::new(channels::Channels::email_only(Arc::from(
            channels::email_channel(&cfg.email).unwrap(),
        ))),
        clock: clock.clone(),
        recorder: Recorder::spawn(store.clone(), clock.clone(), &TaskTracker::new()),
        tasks: TaskTracker::new(),
        stopping: CancellationToken::new(),
        abandon: CancellationToken::new(),
        custody: rapport::custody::Custody::holding("test"),
    };
    Rig {
        dir,
        store,
        clock,
        dispatcher,
    }
}

impl Rig {
    async fn run_at(&self, at: &str) -> rapport::dispatch::BatchReport {
        self.clock.set(utc(at));
        let ids = [rapport::domain::TouchId::derive(
            "birthday",
            &ContactId::parse("ada").unwrap(),
            "2026",
        )];
        self.dispatcher.dispatch(&ids, "test-worker").await.unwrap()
    }
    async fn touch(&self) -> rapport::domain::Touch {
        self.store
            .touches_for_contact(&ContactId::parse("ada").unwrap())
            .await
            .unwrap()
            .remove(0)
    }
    fn outbox_files(&self) -> usize {
        std::fs::read_dir(self.dir.path().join("outbox"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

#[tokio::test]
async fn inside_the_window_the_note_is_sent() {
    let rig = rig(&[]).await;
    let report = rig.run_at("2026-07-14T10:00:00Z").await;
    assert_eq!(report.sent, 1);
    assert_eq!(rig.touch().await.status, TouchStatus::Sent);
    assert_eq!(rig.outbox_files(), 1);
}

#[tokio::test]
async fn a_job_run_after_the_window_closed_expires_the_touch_unsent() {
    let rig = rig(&[]).await;
    let report = rig.run_at("2026-07-14T19:00:00Z").await;
    assert_eq!((report.sent, report.expired), (0, 1));
    let t = rig.touch().await;
    assert_eq!(t.status, TouchStatus::Expired);
    assert!(t.reason.unwrap().contains("send window closed"));
    assert_eq!(
        rig.outbox_files(),
        0,
        "nothing may be sent outside the window"
    );
}

#[tokio::test]
async fn a_job_run_between_windows_is_deferred_to_the_next_one() {
    // Expiry two days out: the touch may still go out tomorrow morning.
    let rig = rig(&[("RAPPORT__OCCASIONS__BIRTHDAY__EXPIRES", "2d")]).await;
    let report = rig.run_at("2026-07-14T19:00:00Z").await;
    assert_eq!((report.sent, report.deferred), (0, 1));
    let t = rig.touch().await;
    assert_eq!((t.status, t.attempts), (TouchStatus::Planned, 0));
    assert_eq!(t.next_attempt_at, utc("2026-07-15T09:00:00Z"));
    assert_eq!(rig.outbox_files(), 0);
    let report = rig.run_at("2026-07-15T09:00:00Z").await;
    assert_eq!(report.sent, 1);
    assert_eq!(
        rig.touch().await.attempts,
        1,
        "the deferral did not count as an attempt"
    );
}

#[tokio::test]
async fn a_stopping_daemon_hands_unstarted_sends_back() {
    let rig = rig(&[]).await;
    rig.dispatcher.stopping.cancel();
    let report = rig.run_at("2026-07-14T10:00:00Z").await;
    assert_eq!((report.sent, report.deferred), (0, 1));
    let t = rig.touch().await;
    assert_eq!((t.status, t.attempts), (TouchStatus::Planned, 0));
    assert_eq!(rig.outbox_files(), 0);
}

#[tokio::test]
async fn a_queue_job_whose_workers_keep_dying_is_dead_lettered() {
    let rig = rig(&[]).await;
    let pool = rig.store.pool();
    for (id, attempts) in [
        ("01ARZ3NDEKTSV4RRFFQ69G5FA1", 3),
        ("01ARZ3NDEKTSV4RRFFQ69G5FA2", 1),
    ] {
        sqlx::query(
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, \
             metadata, last_result) VALUES (x'00', ?1, 'rapport:dispatch', 'Pending', ?2, 1, 0, 0, '{}', \
             '{\"Err\":\"Re-enqueued due to worker heartbeat timeout.\"}')",
        )
        .bind(id)
        .bind(attempts)
        .execute(pool)
        .await
        .unwrap();
    }
    let now = utc("2026-07-14T10:00:00Z");
    let r = rig.store.reconcile(now, now, 10).await.unwrap();
    assert_eq!(r.dead_jobs, 1);
    let status = |id: &'static str| async move {
        sqlx::query_scalar::<_, String>("SELECT status FROM Jobs WHERE id = ?")
            .bind(id)
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(status("01ARZ3NDEKTSV4RRFFQ69G5FA1").await, "Killed");
    assert_eq!(
        status("01ARZ3NDEKTSV4RRFFQ69G5FA2").await,
        "Pending",
        "one return is not a pattern"
    );
}

/// Admits its gate, then never answers: a provider that outlasts every timeout.
struct Hangs;

impl channels::EmailChannel for Hangs {
    fn send_gated<'a>(
        &'a self,
        _email: &'a channels::OutboundEmail,
        gate: &'a dyn channels::Gate,
    ) -> futures::future::BoxFuture<'a, Result<(), channels::DeliveryError>> {
        Box::pin(async move {
            gate.admit(std::time::Duration::ZERO).await?;
            std::future::pending().await
        })
    }
    fn kind(&self) -> &'static str {
        "hangs"
    }
}

#[tokio::test]
async fn a_send_still_in_flight_at_the_drain_deadline_is_abandoned_as_uncertain() {
    let mut rig = rig(&[]).await;
    rig.dispatcher.channels = Arc::new(channels::Channels::email_only(Arc::new(Hangs)));
    rig.clock.set(utc("2026-07-14T10:00:00Z"));
    let d = &rig.dispatcher;
    let ids = [rapport::domain::TouchId::derive(
        "birthday",
        &ContactId::parse("ada").unwrap(),
        "2026",
    )];
    let deadline = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // Stopping: the send has started, so it is not handed back; it runs on...
        d.stopping.cancel();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        // ... until the drain deadline abandons it.
        d.abandon.cancel();
        std::future::pending::<()>().await;
    };
    let report = tokio::select! {
        r = d.dispatch(&ids, "test-worker") => r.unwrap(),
        () = deadline => unreachable!(),
    };
    assert_eq!((report.sent, report.retried, report.deferred), (0, 1, 0));
    let t = rig.touch().await;
    assert_eq!((t.status, t.uncertain), (TouchStatus::Planned, 1));
    assert!(
        t.reason
            .as_deref()
            .unwrap_or("")
            .contains("abandoned at the drain deadline"),
        "{:?}",
        t.reason
    );
}
