//! The shared backend end to end: real `rapport run` replicas on one real Redis, a real
//! SMTP server over TCP, and faults (a replica killed, a payload corrupted by hand; Redis
//! restarted is in tests/faults/store_loss.rs).

mod support;

use rapport::domain::Channel;
use rapport::queue::Queue;
use rapport::store::Ledger;
use std::time::Duration;

use chrono::Utc;
use rapport::{
    config::StorageConfig,
    domain::{ContactId, NewTouch, TouchId, TouchStatus},
    store::RedisStore,
};
use redis::AsyncCommands;
use support::{
    daemon::{Guard, Workspace, signal, wait_exit},
    people::{Person, check_deliveries, people_with},
    redis::RedisServer,
    smtp::{SmtpOptions, SmtpServer},
};

fn redis_workspace(smtp: &str, url: &str, extra: &str) -> (Workspace, StorageConfig) {
    Workspace::redis(smtp, url, extra)
}

/// A Redis server (`redis_args`), an SMTP server answering each message after `delay`,
/// and a workspace on them (`dispatch` settings) with `n` contacts imported, all of
/// them with a birthday today.
struct Rig {
    redis: RedisServer,
    smtp: SmtpServer,
    ws: Workspace,
    storage: StorageConfig,
    people: Vec<Person>,
}

async fn rig(redis_args: &[&str], delay: Duration, dispatch: &str, n: usize) -> Rig {
    let redis = RedisServer::start(redis_args);
    let smtp = SmtpServer::start(SmtpOptions {
        delay_per_message: delay,
        ..Default::default()
    })
    .await;
    let extra = format!("[dispatch]\n{dispatch}\n");
    let (ws, storage) = redis_workspace(&smtp.url(), &redis.url(), &extra);
    let (csv, people) = people_with(n, |_| true);
    ws.import_csv(&csv);
    Rig {
        redis,
        smtp,
        ws,
        storage,
        people,
    }
}

async fn ledger(storage: &StorageConfig) -> RedisStore {
    RedisStore::open(storage)
        .await
        .expect("open the Redis ledger")
}

async fn sent_count(storage: &StorageConfig) -> u64 {
    let counts = ledger(storage).await.status_counts().await.unwrap();
    counts.get(&TouchStatus::Sent).copied().unwrap_or(0)
}

/// Waits up to `secs` for every due note, lets leases lapse and reconcilers run (nothing
/// further may arrive), stops the replicas still running, then checks that each due
/// person got one note (at most `resends` of them twice, with one Message-ID) and that
/// the ledger agrees. Returns how many were sent twice.
async fn finish(
    rig: (&SmtpServer, &Workspace, &StorageConfig),
    replicas: &mut [Guard],
    due: &[&Person],
    secs: u64,
    resends: usize,
) -> usize {
    let (smtp, ws, storage) = rig;
    let logs = || {
        (0..replicas.len())
            .map(|n| ws.log(n))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        smtp.wait_for_count(due.len(), Duration::from_secs(secs))
            .await,
        "only {} of {} delivered; logs:\n{}",
        smtp.count(),
        due.len(),
        logs()
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    for r in replicas.iter_mut().filter(|r| r.0.is_some()) {
        r.stop_gracefully();
    }
    let twice = check_deliveries(smtp, due, resends);
    assert_eq!(sent_count(storage).await, due.len() as u64);
    twice
}

fn sends_logged(ws: &Workspace, n: usize) -> usize {
    ws.log(n).matches("touch sent").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_share_5000_touches_and_send_each_once() {
    let Rig {
        redis: _redis,
        smtp,
        ws,
        storage,
        people,
    } = rig(
        &[],
        Duration::from_millis(2),
        "workers = 2\nconcurrency = 4\nbatch_size = 25",
        5000,
    )
    .await;
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    assert!(due.len() >= 4000, "only {} due", due.len());

    let mut replicas: Vec<Guard> = (0..3).map(|n| Guard(Some(ws.start(n)))).collect();
    finish((&smtp, &ws, &storage), &mut replicas, &due, 180, 0).await;
    assert_eq!(smtp.count(), due.len(), "no message beyond one per contact");
    let per_replica: Vec<usize> = (0..3).map(|n| sends_logged(&ws, n)).collect();
    assert_eq!(
        per_replica.iter().sum::<usize>(),
        due.len(),
        "{per_replica:?}"
    );
    for (n, sent) in per_replica.iter().enumerate() {
        assert!(
            *sent >= due.len() / 10,
            "replica {n} did little of the work: {per_replica:?}; its log:\n{}",
            ws.log(n)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_mid_run_leaves_its_touches_to_the_others() {
    let Rig {
        redis: _redis,
        smtp,
        ws,
        storage,
        people,
    } = rig(
        &[],
        Duration::from_millis(20),
        "workers = 1\nconcurrency = 2\nbatch_size = 10",
        600,
    )
    .await;
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();

    let mut replicas: Vec<Guard> = (0..3).map(|n| Guard(Some(ws.start(n)))).collect();
    assert!(
        smtp.wait_for_count(60, Duration::from_secs(60)).await,
        "log:\n{}",
        ws.log(0)
    );
    let mut victim = replicas[0].0.take().expect("replica 0");
    signal(&victim, "KILL");
    wait_exit(&mut victim, Duration::from_secs(10));
    let killed_at = smtp.count();
    assert!(killed_at < due.len(), "the run should not be over yet");

    // The lease (4 s here) lapses and the survivors' reconcilers hand its touches on,
    // well inside apalis' 30 s orphan window: everything is done within that window.
    // Only sends in flight at the kill (workers x concurrency = 2) may repeat.
    let twice = finish((&smtp, &ws, &storage), &mut replicas, &due, 30, 2).await;
    eprintln!("kill -9 of one replica: {twice} resent");
    assert!(
        sends_logged(&ws, 1) + sends_logged(&ws, 2) > 0,
        "the survivors sent nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_payload_corrupted_in_redis_is_dead_lettered_and_its_touches_still_go_out() {
    let Rig {
        redis: _redis,
        smtp,
        ws,
        storage,
        people,
    } = rig(&[], Duration::ZERO, "workers = 1\nbatch_size = 5", 40).await;
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();

    // Plan the first five due touches the way the planner would (same ids), hand their
    // job to apalis, then overwrite its payload with bytes that are not a job.
    let store = ledger(&storage).await;
    let now = Utc::now();
    let first: Vec<NewTouch> = due
        .iter()
        .take(5)
        .map(|p| {
            let contact = ContactId::parse(&p.id).unwrap();
            NewTouch {
                id: TouchId::derive("birthday", &contact, &p.year.to_string()),
                occasion: "birthday".into(),
                contact_id: contact,
                occurrence: p.year.to_string(),
                channel: Channel::Email,
                priority: 100,
                scheduled_at: now,
                due: now,
                expires_at: now + chrono::Duration::hours(12),
                status: TouchStatus::Planned,
                reason: None,
            }
        })
        .collect();
    assert_eq!(store.plan_touches(&first, 5, now).await.unwrap().len(), 5);
    // Jobs wait for the whole second their touches are due in (a job never runs early).
    let next_second = now + chrono::Duration::seconds(1);
    assert_eq!(store.pump(next_second).await.unwrap(), 1);
    let mut conn = store.connection();
    let data_key = store.queue().job_data_hash();
    let ids: Vec<String> = conn.hkeys(&data_key).await.unwrap();
    assert_eq!(ids.len(), 1);
    let _: () = conn
        .hset(&data_key, &ids[0], b"\xff\x00 not a job".as_slice())
        .await
        .unwrap();

    let mut guard = Guard(Some(ws.start(0)));
    // The corrupt job is dead-lettered; its five touches wait in the ledger and the
    // reconciler re-queues them once they are stale, so every note still goes out.
    assert!(
        smtp.wait_for_count(due.len(), Duration::from_secs(60))
            .await,
        "only {} of {}; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(0)
    );
    guard.stop_gracefully();
    check_deliveries(&smtp, &due, 0);
    let log = ws.log(0);
    assert!(
        log.contains("dead-lettering an undecodable queue job"),
        "log:\n{log}"
    );
    assert!(
        !log.contains("restarting under a new name"),
        "a corrupt payload must not stop the worker; log:\n{log}"
    );
    let dead: Vec<String> = conn.smembers(store.queue().dead_jobs_set()).await.unwrap();
    assert_eq!(dead, ids, "the corrupt job is kept as a dead letter");
}
