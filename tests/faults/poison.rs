//! A queue entry apalis cannot decode, on each backend: it is moved out of the way
//! (apalis' dead state, with why, and a log line), and every due note still goes out
//! exactly once. Workers that keep stopping (their Redis gone) make `/readyz` answer 503
//! with why; once Redis is back everything due goes out once.

use rapport::store::Coordination;
use std::time::{Duration, Instant};

use rapport::{domain::TouchStatus, queue::DISPATCH_QUEUE};
use redis::AsyncCommands;

use crate::{
    rig::{Tally, eventually, readyz, redis_count, redis_store, sqlite_store},
    support::{
        daemon::{Guard, Workspace},
        people::{Person, people_with},
        redis::RedisServer,
        smtp::{SmtpOptions, SmtpServer},
    },
};

/// Waits for every one of `due` to have a note at `smtp`, then a few planner and
/// reconciler runs more (nothing may follow), and stops the daemon.
async fn deliver_all(ws: &Workspace, daemon: &mut Guard, smtp: &SmtpServer, due: &[&Person]) {
    assert!(
        eventually(Duration::from_secs(60), || smtp.count() >= due.len()).await,
        "{} of {} delivered; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(0)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_gracefully();
    Tally::of(&[smtp]).assert_once_each(due);
    assert_eq!(smtp.count(), due.len(), "nobody else got a note");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_row_in_the_sqlite_queue_is_dead_lettered_and_stops_nothing() {
    const POISON: &str = "poison-row";
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(&smtp.url(), "[dispatch]\nworkers = 2\nbatch_size = 5\n");
    let (csv, people) = people_with(40, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    {
        // apalis' fetch is one `UPDATE ... RETURNING *` whose rows it decodes; an id
        // that is not a ULID fails the whole statement. Queued ahead of everything
        // (highest priority, due since 1970), it is the row every fetch meets first.
        let store = sqlite_store(&ws).await;
        sqlx::query(
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, metadata) \
             VALUES (x'00', ?1, ?2, 'Pending', 0, 1, 0, 1000, '{}')",
        )
        .bind(POISON)
        .bind(DISPATCH_QUEUE)
        .execute(store.pool())
        .await
        .expect("queue the poison row");
        store.close().await;
    }
    let mut daemon = Guard(Some(ws.start(0)));
    deliver_all(&ws, &mut daemon, &smtp, &due).await;

    let store = sqlite_store(&ws).await;
    let (status, last_result): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_result FROM Jobs WHERE id = ?")
            .bind(POISON)
            .fetch_one(store.pool())
            .await
            .expect("the poison row is kept");
    assert_eq!(status, "Killed", "{last_result:?}");
    let why = last_result.unwrap_or_default();
    assert!(
        why.contains("undecodable queue row (its id is not a ULID)"),
        "{why}"
    );
    let log = ws.log(0);
    assert!(
        log.contains("dead-lettered an undecodable queue row") && log.contains(POISON),
        "log:\n{log}"
    );
    eprintln!(
        "poison (SQLite): {} delivered once each; the row: {why}",
        due.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poison_job_in_the_redis_queue_is_dead_lettered_and_stops_nothing() {
    let redis = RedisServer::start(&[]);
    // Slow enough that jobs wait behind the one being sent when the poison arrives.
    let smtp = SmtpServer::start(SmtpOptions {
        delay_per_message: Duration::from_millis(50),
        ..Default::default()
    })
    .await;
    let (ws, storage) = Workspace::redis(
        &smtp.url(),
        &redis.url(),
        "[dispatch]\nworkers = 2\nbatch_size = 5\nconcurrency = 2\n",
    );
    let (csv, people) = people_with(60, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut daemon = Guard(Some(ws.start(0)));
    assert!(
        eventually(Duration::from_secs(60), || smtp.count() >= 5).await,
        "log:\n{}",
        ws.log(0)
    );
    // A job id with no payload and no metadata, at the head of the active list: the
    // next fetch takes it, and apalis fails the whole fetch on it.
    let store = redis_store(&storage).await;
    let (queue, mut conn) = (store.queue().clone(), store.connection());
    let poison = ulid::Ulid::new().to_string();
    let _: () = conn
        .lpush(queue.active_jobs_list(), &poison)
        .await
        .expect("push the poison job");
    deliver_all(&ws, &mut daemon, &smtp, &due).await;

    let dead: Vec<String> = conn.smembers(queue.dead_jobs_set()).await.expect("dead");
    assert_eq!(
        dead,
        vec![poison.clone()],
        "the poison job is a dead letter"
    );
    let active: Vec<String> = conn
        .lrange(queue.active_jobs_list(), 0, -1)
        .await
        .expect("active");
    assert!(!active.contains(&poison), "{active:?}");
    let why: Option<String> = conn
        .hget(format!("{}:queue:quarantine", storage.prefix), &poison)
        .await
        .expect("quarantine");
    assert_eq!(
        why.as_deref(),
        Some("dead-lettered by rapport: undecodable queue job (no payload)")
    );
    let log = ws.log(0);
    assert!(
        log.contains("dead-lettered an undecodable queue job") && log.contains(&poison),
        "log:\n{log}"
    );
    assert_eq!(
        redis_count(&storage, TouchStatus::Sent).await,
        due.len() as u64
    );
    eprintln!(
        "poison (Redis): {} delivered once each; the job moved to the dead set",
        due.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_that_keep_stopping_make_readyz_503_with_why_and_delivery_resumes_once() {
    // Persistent, so Redis comes back with its data (not as a lost store).
    let mut redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    // The server refuses every message (451, try later) until Redis is back: touches
    // wait in the ledger for their retry, none is accepted before the outage or while
    // it lasts, so an unrecorded acceptance cannot be resent and every count is exact.
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    smtp.fail_always("@example.com", "451 4.3.0 try again later");
    let (ws, storage) = Workspace::redis(
        &smtp.url(),
        &redis.url(),
        "[dispatch]\nworkers = 2\nbatch_size = 5\nmax_attempts = 50\n[api]\nlisten = \"127.0.0.1:0\"\n",
    );
    let (csv, people) = people_with(30, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut daemon = Guard(Some(ws.start(0)));
    let api = ws.api_base(0, daemon.0.as_mut().expect("the daemon"));
    assert!(
        eventually(Duration::from_secs(60), || due
            .iter()
            .all(|p| smtp.attempts_for(&p.email) >= 1))
        .await,
        "not every due touch was tried; log:\n{}",
        ws.log(0)
    );
    let (status, body) = readyz(&api).await;
    assert_eq!(status, 200, "ready before the outage: {body}");

    redis.stop();
    let stopped = Instant::now();
    // The workers' fetches fail, they stop and are restarted (backing off); after three
    // stops in a minute the process says so.
    let mut last = (0, serde_json::Value::Null);
    while stopped.elapsed() < Duration::from_secs(10) {
        last = readyz(&api).await;
        let workers = last.1["checks"]["workers"].as_str().unwrap_or_default();
        if last.0 == 503 && workers.starts_with("failing: queue workers stopped") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = last;
    assert_eq!(status, 503, "{body}; log:\n{}", ws.log(0));
    let workers = body["checks"]["workers"].as_str().unwrap_or_default();
    let stops: usize = workers
        .strip_prefix("failing: queue workers stopped ")
        .and_then(|rest| rest.split_once(" times in the last minute; last: "))
        .filter(|(_, why)| !why.is_empty())
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("checks.workers: {workers:?}; body: {body}"));
    assert!(stops >= 3, "{workers}");
    assert!(
        body["failed"]
            .as_array()
            .is_some_and(|f| f.contains(&"workers".into())),
        "{body}"
    );
    let failing_after = stopped.elapsed();
    // Leases taken before the stop (4 s) have run out: nothing can start a send now.
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(stopped.elapsed())).await;
    let tried = smtp.mail_times().len();
    smtp.clear_faults();
    redis.restart();
    deliver_all(&ws, &mut daemon, &smtp, &due).await;
    assert_eq!(
        redis_count(&storage, TouchStatus::Sent).await,
        due.len() as u64
    );
    let log = ws.log(0);
    assert!(
        log.contains("queue workers keep stopping"),
        "the log says so too:\n{log}"
    );
    eprintln!(
        "outage: /readyz 503 {failing_after:?} into it ({workers}); {tried} refused tries before, {} delivered once each after",
        due.len()
    );
}
