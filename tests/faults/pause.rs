//! A replica paused (SIGSTOP) past its lease, then resumed (SIGCONT): the others take
//! its touches over, and once it wakes it sends nothing whose lease it lost. Only the
//! messages it had in flight at the pause may arrive twice, with one Message-ID.

use std::{
    process::Child,
    time::{Duration, Instant},
};

use rapport::domain::TouchStatus;

use crate::{
    rig::{Tally, delivered, eventually, redis_count},
    support::{
        daemon::{Guard, Workspace, signal},
        people::{Person, people_with},
        redis::RedisServer,
        smtp::{SmtpOptions, SmtpServer},
    },
};

/// Starts replica `n` of `ws` sending through the SMTP server at `smtp`.
pub(crate) fn start_on(ws: &Workspace, n: usize, smtp: &SmtpServer) -> Child {
    start_with(ws, n, smtp, &[])
}

/// [`start_on`], with more environment variables.
pub(crate) fn start_with(
    ws: &Workspace,
    n: usize,
    smtp: &SmtpServer,
    env: &[(&str, &str)],
) -> Child {
    let log = std::fs::File::create(ws.path(&format!("daemon-{n}.log"))).expect("log file");
    ws.command()
        .arg("run")
        .env("RAPPORT__CHANNELS__EMAIL__URL", smtp.url())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn rapport run")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_paused_past_its_lease_sends_nothing_it_lost_when_it_wakes() {
    let redis = RedisServer::start(&[]);
    // Replica 0 sends through its own server, so each message says who sent it.
    let slow = || SmtpOptions {
        delay_per_message: Duration::from_millis(150),
        ..Default::default()
    };
    let (a, b) = (
        SmtpServer::start(slow()).await,
        SmtpServer::start(slow()).await,
    );
    // Big batches, few sends at once: a paused replica holds many claimed touches it
    // has not started.
    let (ws, storage) = Workspace::redis(
        &b.url(),
        &redis.url(),
        "[dispatch]\nworkers = 1\nconcurrency = 4\nbatch_size = 40\n",
    );
    let (csv, people) = people_with(400, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();

    let mut replicas = vec![Guard(Some(start_on(&ws, 0, &a)))];
    assert!(
        eventually(Duration::from_secs(60), || a.count() >= 12).await,
        "replica 0 never got going; log:\n{}",
        ws.log(0)
    );
    replicas.push(Guard(Some(start_on(&ws, 1, &b))));
    replicas.push(Guard(Some(start_on(&ws, 2, &b))));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let paused = replicas[0].0.as_ref().expect("replica 0");
    signal(paused, "STOP");
    let stopped_at = Instant::now();
    // Past its lease (4 s) and a reconciler run: the others take its touches over.
    tokio::time::sleep(Duration::from_secs(12)).await;
    signal(replicas[0].0.as_ref().expect("replica 0"), "CONT");
    let resumed_at = Instant::now();
    assert!(
        eventually(Duration::from_secs(120), || delivered(&[&a, &b])
            >= due.len())
        .await,
        "only {} of {} delivered",
        delivered(&[&a, &b]),
        due.len()
    );
    // Whatever the woken replica would still send arrives now.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for r in &mut replicas {
        r.stop_gracefully();
    }

    let tally = Tally::of(&[&a, &b]);
    let logs = || (0..3).map(|n| ws.log(n)).collect::<Vec<_>>().join("\n");
    for p in &due {
        assert!(tally.copies(p) >= 1, "{} never got its note", p.id);
    }
    let repeated = tally.repeated();
    for (who, copies) in &repeated {
        assert_eq!(copies.len(), 2, "{who}: {} copies", copies.len());
        // One copy is replica 0's, begun before the pause: in flight when it stopped.
        let before_pause = copies
            .iter()
            .filter(|(server, r)| *server == 0 && r.started_at < stopped_at)
            .count();
        assert_eq!(
            before_pause,
            1,
            "{who}: a repeat that was not in flight at the pause: {:?}",
            copies
                .iter()
                .map(|(s, r)| (s, r.started_at.duration_since(stopped_at.min(r.started_at))))
                .collect::<Vec<_>>()
        );
    }
    // At most what it had in flight: `concurrency` sends.
    assert!(
        repeated.len() <= 4,
        "{} repeats; logs:\n{}",
        repeated.len(),
        logs()
    );
    let woke_and_sent: Vec<_> = a
        .messages()
        .into_iter()
        .filter(|r| r.started_at > resumed_at)
        .filter(|r| tally.0[&r.rcpt_to.join(",")].len() > 1)
        .map(|r| r.rcpt_to.join(","))
        .collect();
    assert!(
        woke_and_sent.is_empty(),
        "after waking, replica 0 sent {} notes already sent by others: {woke_and_sent:?}",
        woke_and_sent.len()
    );
    assert_eq!(
        redis_count(&storage, TouchStatus::Sent).await,
        due.len() as u64,
        "the ledger agrees"
    );
    eprintln!(
        "pause: {} delivered, {} in flight at the pause repeated, replica 0 sent {} in all",
        tally.total(),
        repeated.len(),
        a.count()
    );
}
