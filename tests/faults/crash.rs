//! kill -9 with the shipped timings (`dispatch.lease`, `reconcile_every`,
//! `poll_interval` as config/rapport.toml sets them): what the dead process had claimed
//! is sent by another within 45 s, and only the messages in flight at the kill repeat,
//! with their Message-ID.

use std::time::{Duration, Instant};

use rapport::domain::TouchStatus;

use crate::{
    pause::start_on,
    rig::{Tally, delivered, eventually, redis_count},
    support::{
        daemon::{Guard, REPO, Workspace},
        people::{Person, people_with},
        redis::RedisServer,
        smtp::{SmtpOptions, SmtpServer},
    },
};

/// The promise the README makes.
const RECOVERY: Duration = Duration::from_secs(45);

/// config/rapport.toml's `[dispatch]` timing keys, as the test config must repeat them
/// (the test workspace's base config shortens them).
fn shipped_timings() -> String {
    let text = std::fs::read_to_string(format!("{REPO}/config/rapport.toml")).expect("config");
    let doc: toml::Table = toml::from_str(&text).expect("config/rapport.toml parses");
    let dispatch = doc["dispatch"].as_table().expect("[dispatch]");
    let mut out = String::from("[dispatch]\n");
    for key in ["lease", "reconcile_every", "poll_interval", "drain_timeout"] {
        let value = dispatch[key].as_str().expect("a duration");
        out.push_str(&format!("{key} = \"{value}\"\n"));
    }
    out
}

/// Every due person got a note, and every repeat is one replica 0 had in flight when it
/// was killed (its copy begun before the kill); returns how many repeated.
fn check_repeats(tally: &Tally, due: &[&Person], killed_at: Instant, in_flight: usize) -> usize {
    for p in due {
        assert!(tally.copies(p) >= 1, "{} never got its note", p.id);
    }
    let repeated = tally.repeated();
    for (who, copies) in &repeated {
        assert_eq!(copies.len(), 2, "{who}: {} copies", copies.len());
        assert!(
            copies
                .iter()
                .any(|(server, r)| *server == 0 && r.started_at < killed_at),
            "{who}: a repeat that was not in flight at the kill"
        );
    }
    assert!(
        repeated.len() <= in_flight,
        "{} repeats, more than the {in_flight} that can be in flight",
        repeated.len()
    );
    repeated.len()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_killed_with_shipped_timings_is_taken_over_within_45_seconds() {
    let redis = RedisServer::start(&[]);
    let slow = || SmtpOptions {
        delay_per_message: Duration::from_millis(400),
        ..Default::default()
    };
    let (a, b) = (
        SmtpServer::start(slow()).await,
        SmtpServer::start(slow()).await,
    );
    let extra = format!(
        "{}workers = 1\nconcurrency = 8\nbatch_size = 100\n",
        shipped_timings()
    );
    let (ws, storage) = Workspace::redis(&b.url(), &redis.url(), &extra);
    let (csv, people) = people_with(400, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut victim = Guard(Some(start_on(&ws, 0, &a)));
    assert!(
        eventually(Duration::from_secs(60), || a.count() >= 16).await,
        "log:\n{}",
        ws.log(0)
    );
    let mut survivor = Guard(Some(start_on(&ws, 1, &b)));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut child = victim.0.take().expect("replica 0");
    child.kill().expect("kill -9");
    let killed_at = Instant::now();
    child.wait().expect("reap");
    assert!(
        eventually(RECOVERY + Duration::from_secs(30), || {
            delivered(&[&a, &b]) >= due.len()
        })
        .await,
        "{} of {} delivered; survivor's log:\n{}",
        delivered(&[&a, &b]),
        due.len(),
        ws.log(1)
    );
    // Every note may have arrived while the victim's last claim is still `sending` in
    // the ledger (its sends finished, their outcomes died with it): taken over means
    // recorded, once its lease lapses, by the survivor.
    let deadline = killed_at + RECOVERY + Duration::from_secs(30);
    while redis_count(&storage, TouchStatus::Sent).await < due.len() as u64
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let took = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    survivor.stop_gracefully();
    let repeats = check_repeats(&Tally::of(&[&a, &b]), &due, killed_at, 8);
    assert!(
        took <= RECOVERY,
        "everything was recorded sent {took:?} after the kill, past {RECOVERY:?}"
    );
    assert_eq!(
        redis_count(&storage, TouchStatus::Sent).await,
        due.len() as u64
    );
    eprintln!("kill -9 (Redis): all sent {took:?} after the kill; {repeats} in-flight repeats");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sqlite_daemon_killed_and_restarted_with_shipped_timings_finishes_within_45_seconds() {
    let smtp = SmtpServer::start(SmtpOptions {
        delay_per_message: Duration::from_millis(400),
        ..Default::default()
    })
    .await;
    let extra = format!(
        "{}workers = 1\nconcurrency = 8\nbatch_size = 100\n",
        shipped_timings()
    );
    let ws = Workspace::new(&smtp.url(), &extra);
    let (csv, people) = people_with(200, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut daemon = Guard(Some(ws.start(0)));
    assert!(
        eventually(Duration::from_secs(60), || smtp.count() >= 16).await,
        "log:\n{}",
        ws.log(0)
    );
    let mut child = daemon.0.take().expect("the daemon");
    child.kill().expect("kill -9");
    let killed_at = Instant::now();
    child.wait().expect("reap");
    // A supervisor restarts it at once.
    let mut daemon = Guard(Some(ws.start(1)));
    assert!(
        eventually(RECOVERY + Duration::from_secs(30), || smtp.count()
            >= due.len())
        .await,
        "{} of {} delivered; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(1)
    );
    let took = killed_at.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_gracefully();
    let repeats = check_repeats(&Tally::of(&[&smtp]), &due, killed_at, 8);
    assert!(
        took <= RECOVERY,
        "everything was recorded sent {took:?} after the kill, past {RECOVERY:?}"
    );
    eprintln!("kill -9 (SQLite): all sent {took:?} after the kill; {repeats} in-flight repeats");
}
