//! Redis restarted mid-run. With persistence nothing changes: nothing lost, nothing sent
//! twice. Without it the ledger is gone: every replica holds (no planning, no sending,
//! `/readyz` 503 with the reason, a log line that says what to do) until
//! `rapport store adopt`; contacts can be imported meanwhile. After the adoption what was
//! due before it is not sent again (or is, with `--resend-due`), and contacts added
//! later are planned as usual.

use std::time::Duration;

use rapport::domain::TouchStatus;

use crate::{
    pause::{start_on, start_with},
    rig::{Tally, delivered, eventually, readyz, redis_count},
    support::{
        daemon::{Guard, Workspace},
        people::{Person, people_with},
        redis::RedisServer,
        smtp::{SmtpOptions, SmtpServer},
    },
};

async fn smtp(delay_ms: u64) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        delay_per_message: Duration::from_millis(delay_ms),
        ..Default::default()
    })
    .await
}

const TOKEN: &str = "fault-suite-token";

const DISPATCH: &str = "[dispatch]\nworkers = 1\nconcurrency = 4\nbatch_size = 10\n";

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_with_persistence_loses_and_doubles_nothing() {
    let mut redis = RedisServer::start(&["--appendonly", "yes", "--appendfsync", "always"]);
    let smtp = smtp(20).await;
    let (ws, storage) = Workspace::redis(&smtp.url(), &redis.url(), DISPATCH);
    let (csv, people) = people_with(300, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut replicas = vec![
        Guard(Some(start_on(&ws, 0, &smtp))),
        Guard(Some(start_on(&ws, 1, &smtp))),
    ];
    assert!(eventually(Duration::from_secs(60), || smtp.count() >= 80).await);
    redis.restart();
    assert!(
        eventually(Duration::from_secs(120), || smtp.count() >= due.len()).await,
        "{} of {}; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(0)
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    for r in &mut replicas {
        r.stop_gracefully();
    }
    Tally::of(&[&smtp]).assert_once_each(&due);
    assert_eq!(
        redis_count(&storage, TouchStatus::Sent).await,
        due.len() as u64
    );
    for n in 0..2 {
        assert!(!ws.log(n).contains("STORE LOST"), "log {n}:\n{}", ws.log(n));
    }
    let logs = ws.log(0) + &ws.log(1);
    assert!(
        logs.contains(" WARN ") || logs.contains(" ERROR "),
        "losing Redis for a moment should be logged; logs:\n{logs}"
    );
}

/// The rig of a loss: two replicas (replica 0 with its API) sending `due` notes, Redis
/// restarted empty once about a third have gone out. Returns once both hold, with who
/// had their note before the loss.
struct Lost {
    // Kept running for the whole test (dropping it stops the server).
    _redis: RedisServer,
    smtp: SmtpServer,
    ws: Workspace,
    csv: String,
    people: Vec<Person>,
    replicas: Vec<Guard>,
    api: String,
    before: Tally,
}

async fn lose_the_store() -> Lost {
    let mut redis = RedisServer::start(&[]);
    let smtp = smtp(40).await;
    let extra = format!("{DISPATCH}[api]\nlisten = \"127.0.0.1:0\"\n");
    let (ws, _) = Workspace::redis(&smtp.url(), &redis.url(), &extra);
    let (csv, people) = people_with(150, |_| true);
    ws.import_csv(&csv);
    let mut first = Guard(Some(start_with(
        &ws,
        0,
        &smtp,
        &[("RAPPORT_API_TOKENS", TOKEN)],
    )));
    let api = ws.api_base(0, first.0.as_mut().expect("replica 0"));
    // The second replica's API binds another free port (`127.0.0.1:0`).
    let replicas = vec![first, Guard(Some(start_on(&ws, 1, &smtp)))];
    assert!(eventually(Duration::from_secs(60), || smtp.count() >= 40).await);
    // No persistence: it comes back empty.
    redis.restart();
    let held = eventually(Duration::from_secs(20), || {
        (0..2).all(|n| ws.log(n).contains("STORE LOST"))
    })
    .await;
    assert!(held, "logs:\n{}\n{}", ws.log(0), ws.log(1));
    // Sends in flight at the loss end; nothing starts after.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = Tally::of(&[&smtp]);
    Lost {
        _redis: redis,
        smtp,
        ws,
        csv,
        people,
        replicas,
        api,
        before,
    }
}

impl Lost {
    fn rapport(&self, args: &[&str]) -> std::process::Output {
        self.ws.run(args)
    }

    fn stop(&mut self) {
        for r in &mut self.replicas {
            r.stop_gracefully();
        }
    }

    fn due(&self) -> Vec<&Person> {
        self.people.iter().filter(|p| p.due).collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_restarted_empty_holds_every_replica_until_adopted_and_sends_nothing_twice() {
    let mut lost = lose_the_store().await;
    let (status, body) = readyz(&lost.api).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["store_identity"]
            .as_str()
            .is_some_and(|s| s.contains("rapport store adopt")),
        "{body}"
    );
    let log = lost.ws.log(0);
    assert!(
        log.contains("then run `rapport store adopt`"),
        "the log says what to do:\n{log}"
    );
    // Events plan touches: refused while held (a thank-you could repeat one sent).
    let event = reqwest::Client::new()
        .post(format!("{}/v1/events", lost.api))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"contact": "p0001", "type": "purchase", "id": "o1"}))
        .send()
        .await
        .expect("POST /v1/events");
    assert_eq!(event.status().as_u16(), 503);
    assert!(event.headers().contains_key("retry-after"));
    let body: serde_json::Value = event.json().await.expect("json");
    assert_eq!(body["error"]["code"], "store_held", "{body}");
    // Held: the contacts come back (imports work), nothing goes out.
    let at_hold = lost.smtp.count();
    let import = lost.ws.path("contacts.csv");
    let out = lost.rapport(&["import", &import.display().to_string()]);
    assert!(out.status.success(), "{out:?}");
    let status = lost.rapport(&["store", "status"]);
    assert_eq!(status.status.code(), Some(69), "{status:?}");
    assert!(String::from_utf8_lossy(&status.stdout).contains("held:"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(lost.smtp.count(), at_hold, "sent while held");
    assert!(
        lost.smtp.mail_times().len() == lost.smtp.count(),
        "a transaction started while held"
    );

    let adopt = lost.rapport(&["store", "adopt"]);
    assert!(adopt.status.success(), "{adopt:?}");
    // A contact added after the adoption, due today, is planned as usual. (The store
    // counts whole seconds: one added in the second of the adoption counts as present.)
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // One zone per person, so one of them is away from its midnight and due today.
    let (csv, late) = people_with(10, |_| true);
    let i = late
        .iter()
        .position(|p| p.due)
        .expect("a zone away from midnight");
    let (header, row) = (csv.lines().next().expect("header"), csv.lines().nth(i + 1));
    let row = row
        .expect("the due person's row")
        .replace(&late[i].id, "late0");
    let row = row.replace(&late[i].first, "Late");
    std::fs::write(lost.ws.path("late.csv"), format!("{header}\n{row}\n")).expect("late.csv");
    let out = lost.rapport(&["import", &lost.ws.path("late.csv").display().to_string()]);
    assert!(out.status.success(), "{out:?}");
    let late_email = late[i].email.replace(&late[i].id, "late0");
    assert!(
        eventually(Duration::from_secs(30), || {
            lost.smtp.attempts_for(&late_email) >= 1
        })
        .await,
        "the contact added after the adoption got nothing; log:\n{}",
        lost.ws.log(0)
    );
    let (status, body) = readyz(&lost.api).await;
    assert_eq!(status, 200, "{body}");
    tokio::time::sleep(Duration::from_secs(5)).await;
    lost.stop();

    let after = Tally::of(&[&lost.smtp]);
    let (mut had, mut skipped) = (0, 0);
    for p in &lost.due() {
        let (was, is) = (lost.before.copies(p), after.copies(p));
        assert!(was <= 1, "{} got {was} before the loss", p.id);
        assert_eq!(is, was, "{}: {was} before the loss, {is} in all", p.id);
        if was == 1 {
            had += 1;
        } else {
            skipped += 1;
        }
    }
    assert_eq!(lost.smtp.attempts_for(&late_email), 1);
    assert!(
        had >= 40 && skipped > 0,
        "{had} sent before, {skipped} skipped"
    );
    let status = lost.rapport(&["store", "status"]);
    assert!(status.status.success(), "{status:?}");
    eprintln!(
        "store loss: {had} sent before the loss, {skipped} due before the adoption and not sent, the late contact once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn adopting_with_resend_due_sends_everything_due_once_more_at_most() {
    let mut lost = lose_the_store().await;
    std::fs::write(lost.ws.path("contacts.csv"), &lost.csv).expect("csv");
    let import = lost.ws.path("contacts.csv").display().to_string();
    assert!(lost.rapport(&["import", &import]).status.success());
    let adopt = lost.rapport(&["store", "adopt", "--resend-due"]);
    assert!(adopt.status.success(), "{adopt:?}");
    let want = lost.due().len() + lost.before.total();
    assert!(
        eventually(Duration::from_secs(60), || delivered(&[&lost.smtp]) >= want).await,
        "{} of {want}; log:\n{}",
        lost.smtp.count(),
        lost.ws.log(0)
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    lost.stop();
    let after = Tally::of(&[&lost.smtp]);
    for p in &lost.due() {
        assert_eq!(
            after.copies(p),
            lost.before.copies(p) + 1,
            "{}: every due note goes out once after the adoption",
            p.id
        );
    }
    // Repeats carry the same Message-ID (checked by `repeated`).
    assert_eq!(after.repeated().len(), lost.before.total());
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_back_from_an_older_snapshot_is_held_and_sends_nothing_twice() {
    // Snapshots only (as a replica that lags, or a backup): Redis restarts from the last
    // one, which misses what was recorded after it. Same identity, older ledger.
    let mut redis = RedisServer::start(&[]);
    let smtp = smtp(40).await;
    let (ws, storage) = Workspace::redis(&smtp.url(), &redis.url(), DISPATCH);
    let (csv, people) = people_with(150, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut replica = Guard(Some(start_on(&ws, 0, &smtp)));
    assert!(eventually(Duration::from_secs(60), || smtp.count() >= 20).await);
    let client = redis::Client::open(redis.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let _: () = redis::cmd("SAVE")
        .query_async(&mut conn)
        .await
        .expect("SAVE");
    let at_snapshot = smtp.count();
    assert!(eventually(Duration::from_secs(60), || smtp.count() >= at_snapshot + 30).await);
    // SIGTERM with `save ""`: nothing more is written; the next start loads the snapshot.
    redis.restart();
    assert!(
        eventually(Duration::from_secs(20), || ws
            .log(0)
            .contains("went back in time"))
        .await,
        "log:\n{}",
        ws.log(0)
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let at_hold = smtp.count();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.count(), at_hold, "sent while held");
    let adopt = ws.run(&["store", "adopt"]);
    assert!(adopt.status.success(), "{adopt:?}");
    // Planned or being sent in the snapshot, due before the adoption: settled, never
    // sent a second time; what was not yet planned is skipped by the planner.
    tokio::time::sleep(Duration::from_secs(5)).await;
    replica.stop_gracefully();
    let tally = Tally::of(&[&smtp]);
    for p in &due {
        assert!(
            tally.copies(p) <= 1,
            "{} got {} notes",
            p.id,
            tally.copies(p)
        );
    }
    assert!(tally.repeated().is_empty());
    assert!(redis_count(&storage, TouchStatus::Skipped).await > 0);
}
