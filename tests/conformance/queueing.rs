//! The real queue workers (apalis) on the store's own queue: a job they cannot read.
//!
//! Unlike the other cases this one runs on the system clock, because the queue does: the
//! workers poll every 100 ms and the case waits (at most 20 s) for what they do.

use std::{
    path::Path,
    slice::from_ref,
    sync::{Arc, Mutex},
    time::Duration,
};

use apalis_core::worker::{context::WorkerContext, event::Event};
use chrono::Datelike;
use rapport::{
    channels,
    config::Config,
    dispatch::{Dispatcher, Recorder},
    domain::{Birthday, Clock, MonthDay, NewTouch, SystemClock, TouchStatus},
    render::{Renderer, sample_contact},
    store::ContactUpsert,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    Backend,
    fixtures::{cid, days, planned_for, touch},
};

const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// The shipped config, with notes written into `dir/outbox`, every window open all day
/// (so the case does not depend on the hour it runs at), one worker polling every 100 ms.
fn config(dir: &Path) -> Config {
    let path = format!("{REPO}/config/rapport.toml");
    let all_day = || "00:00-24:00".to_owned();
    let mut env = vec![
        (
            "RAPPORT__STORAGE__URL".to_owned(),
            format!("sqlite://{}/unused.db", dir.display()),
        ),
        (
            "RAPPORT__TEMPLATES__DIR".to_owned(),
            format!("{REPO}/templates"),
        ),
        (
            "RAPPORT__CHANNELS__EMAIL__TRANSPORT".to_owned(),
            "outbox".to_owned(),
        ),
        (
            "RAPPORT__CHANNELS__EMAIL__OUTBOX_DIR".to_owned(),
            format!("{}/outbox", dir.display()),
        ),
        ("RAPPORT__DEFAULTS__SEND_WINDOW".to_owned(), all_day()),
        (
            "RAPPORT__DISPATCH__POLL_INTERVAL".to_owned(),
            "100ms".to_owned(),
        ),
        ("RAPPORT__DISPATCH__WORKERS".to_owned(), "1".to_owned()),
    ];
    let shipped = Config::load_with(Path::new(&path), None, env.clone()).expect("config");
    env.extend(shipped.rules.tiers.iter().map(|t| {
        let name = t.name.to_ascii_uppercase();
        (format!("RAPPORT__TIERS__{name}__SEND_WINDOW"), all_day())
    }));
    Config::load_with(Path::new(&path), None, env).expect("config")
}

/// One line per worker event that matters here: (worker name, its restarts, event).
type EventLog = Arc<Mutex<Vec<(String, usize, String)>>>;

pub(crate) async fn a_corrupt_job_is_dead_lettered_and_the_worker_goes_on<S: Backend>(
    store: Arc<S>,
) {
    let dir = tempfile::tempdir().expect("create a temp dir");
    let cfg = Arc::new(config(dir.path()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    // A job that is not even JSON (nor UTF-8), queued ahead of a good one.
    store.push_raw_job(b"\xff\x00 not a job {".to_vec()).await;
    let now = clock.now();
    let mut ada = sample_contact("friend");
    ada.id = cid("ada");
    ada.timezone = Some(chrono_tz::UTC);
    ada.birthday = Some(Birthday {
        day: MonthDay::new(now.month(), now.day()).expect("today is a month-day"),
        year: Some(1990),
    });
    let upsert = ContactUpsert {
        contact: ada,
        email_consent: Some(true),
        sms_consent: None,
        keep_tier: false,
    };
    store.upsert_contacts(from_ref(&upsert)).await.unwrap();
    let year = now.year().to_string();
    let t = planned_for("birthday", "ada", &year, now);
    let t = NewTouch {
        expires_at: now + days(1),
        ..t
    };
    let new = store.plan_touches(from_ref(&t), 10, now).await.unwrap();
    assert_eq!(new, from_ref(&t.id));

    // The daemon's queue side, as `App::run_until` wires it.
    let tracker = TaskTracker::new();
    let dispatcher = Arc::new(Dispatcher {
        store: store.clone(),
        cfg: cfg.clone(),
        renderer: Arc::new(Renderer::load(&cfg.templates_dir).expect("templates")),
        channels: Arc::new(channels::Channels::email_only(Arc::from(
            channels::email_channel(&cfg.email).expect("outbox channel"),
        ))),
        clock: clock.clone(),
        recorder: Recorder::spawn(store.clone(), clock.clone(), &tracker),
        tasks: TaskTracker::new(),
        stopping: CancellationToken::new(),
        abandon: CancellationToken::new(),
        custody: rapport::custody::Custody::holding("test"),
    });
    let stop = CancellationToken::new();
    let pump = tokio::spawn(rapport::queue::pump_loop(
        store.clone(),
        cfg.clone(),
        clock.clone(),
        stop.child_token(),
    ));
    // Watched, not steered: `base_monitor` sets no event handler of its own.
    let events: EventLog = Arc::default();
    let log = events.clone();
    let note = move |worker: &WorkerContext, event: &Event| {
        let what = match event {
            Event::Start => "start".to_owned(),
            Event::Success(_) => "success".to_owned(),
            Event::Error(e) => format!("error: {e}"),
            _ => return,
        };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        log.push((worker.name().to_owned(), worker.restarts(), what));
    };
    let monitor = store
        .monitor(
            dispatcher.clone(),
            &cfg.dispatch,
            rapport::queue::worker::QueueHealth::default(),
        )
        .on_event(note);
    let signal = {
        let stop = stop.clone();
        async move {
            stop.cancelled().await;
            Ok(())
        }
    };

    // Wait until the good touch is sent and the bad job dead, then stop the workers.
    let watch = async {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let seen = loop {
            let (good, dead) = (touch(&*store, &t.id).await, store.dead_jobs().await);
            if (good.status.is_final() && dead > 0) || tokio::time::Instant::now() > deadline {
                break (good, dead);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        stop.cancel();
        seen
    };
    let stopped = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(monitor.run_with_signal(signal), watch)
    })
    .await;
    let (ran, (sent, dead)) = stopped.expect("the workers stop when told to");
    ran.expect("the workers end without an error");
    pump.await.expect("the pump stops when told to");
    dispatcher.tasks.close();
    tokio::time::timeout(Duration::from_secs(5), dispatcher.tasks.wait())
        .await
        .expect("no dispatch job left running");

    let events = events.lock().unwrap().clone();
    assert_eq!(
        (sent.status, sent.attempts),
        (TouchStatus::Sent, 1),
        "the good job after the bad one was not delivered: {sent:?}; worker events: {events:?}"
    );
    assert_eq!(
        dead, 1,
        "the bad job is kept as a dead letter; worker events: {events:?}"
    );
    let outbox = std::fs::read_dir(dir.path().join("outbox")).map_or(0, |d| d.count());
    assert_eq!(outbox, 1, "one note written");
    // One worker, never restarted, took the bad job and then the good one.
    let names: Vec<_> = events.iter().map(|(name, ..)| name).collect();
    assert!(names.windows(2).all(|w| w[0] == w[1]), "{events:?}");
    assert!(
        events.iter().all(|(_, restarts, _)| *restarts == 0),
        "{events:?}"
    );
    let what: Vec<_> = events.iter().map(|(.., what)| what.as_str()).collect();
    assert!(
        matches!(what.as_slice(), ["start", bad, "success"] if bad.starts_with("error: ")),
        "{events:?}"
    );
    assert!(what[1].contains("undecodable dispatch job"), "{events:?}");
}
