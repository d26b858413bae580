//! End to end: the real daemon, a real SMTP server over TCP, real SQLite.

mod support;

use rapport::store::{Coordination, Ledger};
use std::time::Duration;

use rapport::{
    domain::{ContactId, TouchStatus},
    store::SqliteStore,
};
use support::{
    daemon::{Guard, Workspace, signal, wait_exit},
    people::{Person, by_recipient, check_deliveries, people},
    smtp::{SmtpOptions, SmtpServer},
};

async fn ledger(ws: &Workspace) -> SqliteStore {
    SqliteStore::open(&ws.db_url()).await.expect("open ledger")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_due_contact_gets_exactly_one_note_in_the_right_tone() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(&smtp.url(), "");
    let (csv, people) = people(300);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    assert!(due.len() > 150, "test data should have many due contacts");

    let mut guard = Guard(Some(ws.start(0)));
    assert!(
        smtp.wait_for_count(due.len(), Duration::from_secs(60))
            .await,
        "only {} of {} delivered; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(0)
    );
    // Several planner ticks later, still nothing more.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let child = guard.0.as_mut().unwrap();
    signal(child, "TERM");
    assert!(
        wait_exit(child, Duration::from_secs(20)).success(),
        "log:\n{}",
        ws.log(0)
    );
    guard.0 = None;

    let got = by_recipient(&smtp.messages());
    assert_eq!(
        smtp.count(),
        due.len(),
        "exactly one message per due contact"
    );
    for p in &people {
        let msgs = got.get(&p.email).map(Vec::as_slice).unwrap_or_default();
        if !p.due {
            assert!(msgs.is_empty(), "{} is not due but got mail", p.id);
            continue;
        }
        assert_eq!(msgs.len(), 1, "{} got {} messages", p.id, msgs.len());
        let m = &msgs[0];
        assert_eq!(
            m.message_id.as_deref(),
            Some(format!("<birthday.{}.{}@rapport.example>", p.id, p.year).as_str())
        );
        assert!(m.data.contains(&p.first), "{}: first name missing", p.id);
        let subject = m.subject.clone().unwrap_or_default();
        match p.tier {
            "family" => assert!(
                m.body().contains("family to") && subject.contains("dear"),
                "{}: not the family tone: {subject}",
                p.id
            ),
            "acquaintance" => assert_eq!(subject, "Best wishes on your birthday", "{}", p.id),
            _ => assert_eq!(subject, format!("Happy birthday, {}!", p.first), "{}", p.id),
        }
    }
    let store = ledger(&ws).await;
    let counts = store.status_counts().await.unwrap();
    assert_eq!(
        counts.get(&TouchStatus::Sent).copied().unwrap_or(0),
        due.len() as u64
    );
    // No address or body text in the logs.
    let log = ws.log(0);
    assert!(
        !log.contains("@example.com"),
        "an address leaked into the log"
    );
    assert!(
        !log.contains("Happy birthday"),
        "a message body leaked into the log"
    );
}

/// A run interrupted by `signal`, then restarted: every due contact gets its note, and
/// duplicates (same Message-ID) are possible only for sends in flight at a `kill -9`.
async fn interrupted_run(sig: &str) -> (usize, usize) {
    let smtp = SmtpServer::start(SmtpOptions {
        delay_per_message: Duration::from_millis(40),
        ..Default::default()
    })
    .await;
    let ws = Workspace::new(
        &smtp.url(),
        "[dispatch]\nworkers = 1\nconcurrency = 2\nbatch_size = 10\n",
    );
    let (csv, people) = people(150);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();

    let mut guard = Guard(Some(ws.start(0)));
    assert!(
        smtp.wait_for_count(20, Duration::from_secs(60)).await,
        "log:\n{}",
        ws.log(0)
    );
    let child = guard.0.as_mut().unwrap();
    signal(child, sig);
    let status = wait_exit(child, Duration::from_secs(20));
    if sig == "TERM" {
        assert!(status.success(), "SIGTERM must exit 0; log:\n{}", ws.log(0));
        assert!(
            smtp.count() < due.len(),
            "the run should have been cut short"
        );
    }
    guard.0 = Some(ws.start(1));
    assert!(
        smtp.wait_for_count(due.len(), Duration::from_secs(90))
            .await,
        "after restart only {} of {}; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(1)
    );
    // Let leases lapse and the reconciler run: nothing further may arrive.
    tokio::time::sleep(Duration::from_secs(5)).await;
    guard.stop_gracefully();

    // The callers bound the resends (none after SIGTERM, in-flight ones after kill -9).
    let duplicated = check_deliveries(&smtp, &due, due.len());
    let store = ledger(&ws).await;
    let counts = store.status_counts().await.unwrap();
    assert_eq!(
        counts.get(&TouchStatus::Sent).copied().unwrap_or(0),
        due.len() as u64
    );
    (duplicated, smtp.count())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_run_then_restart_sends_each_note_exactly_once() {
    let (duplicated, _) = interrupted_run("TERM").await;
    assert_eq!(
        duplicated, 0,
        "a graceful stop drains: nothing may be sent twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_run_then_restart_loses_nothing() {
    let (duplicated, total) = interrupted_run("KILL").await;
    eprintln!("kill -9: {duplicated} duplicated of {total} messages");
    // At most the sends in flight at the kill (workers x concurrency = 2) can repeat.
    assert!(duplicated <= 2, "{duplicated} notes were sent twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_4xx_is_retried_with_backoff_and_a_5xx_fails_without_retry() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    // A 2 s backoff, jittered to at least 1 s: visible in the ledger's whole seconds.
    let ws = Workspace::new(
        &smtp.url(),
        "[dispatch]\nbackoff = \"2s\"\nbackoff_max = \"3s\"\n",
    );
    let (csv, people) = people(12);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    assert!(due.len() >= 3, "need three due contacts");
    let (soft, hard) = (due[0], due[1]);
    smtp.fail_once(&soft.email, "451 4.3.0 try again later");
    smtp.fail_always(&hard.email, "550 5.1.1 no such user");

    let mut guard = Guard(Some(ws.start(0)));
    assert!(
        smtp.wait_for_count(due.len() - 1, Duration::from_secs(60))
            .await,
        "log:\n{}",
        ws.log(0)
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    guard.stop_gracefully();

    assert_eq!(
        smtp.attempts_for(&soft.email),
        2,
        "451 once, then delivered"
    );
    assert_eq!(smtp.attempts_for(&hard.email), 1, "a 5xx is not retried");
    assert_eq!(smtp.count(), due.len() - 1);
    let store = ledger(&ws).await;
    let soft_t = store
        .touches_for_contact(&ContactId::parse(&soft.id).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (soft_t[0].status, soft_t[0].attempts),
        (TouchStatus::Sent, 2)
    );
    // The retry waited for the backoff (2 s base, jittered to at least half).
    let sent_after = soft_t[0].sent_at.unwrap() - soft_t[0].created_at;
    assert!(
        sent_after >= chrono::Duration::seconds(1),
        "retried too soon: {sent_after}"
    );
    let hard_t = store
        .touches_for_contact(&ContactId::parse(&hard.id).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (hard_t[0].status, hard_t[0].attempts),
        (TouchStatus::Failed, 1)
    );
    assert!(
        hard_t[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("smtp 550"),
        "{:?}",
        hard_t[0].reason
    );
    assert!(
        !hard_t[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("example.com"),
        "reason must not echo the address"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_undecodable_job_does_not_stop_delivery() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(&smtp.url(), "[dispatch]\nworkers = 1\n");
    let (csv, people) = people(30);
    ws.import_csv(&csv);
    let due = people.iter().filter(|p| p.due).count();
    {
        // A payload that is not even JSON, queued ahead of everything: it must be
        // dead-lettered without stopping the worker that fetched it.
        let store = ledger(&ws).await;
        sqlx::query(
            "INSERT INTO Jobs (job, id, job_type, status, attempts, max_attempts, run_at, priority, metadata) \
             VALUES (x'7b6e6f74206a736f6e', '01ARZ3NDEKTSV4RRFFQ69G5FAV', 'rapport:dispatch', 'Pending', 0, 1, 0, 10, '{}')",
        )
        .execute(store.pool())
        .await
        .expect("queue a poison job");
        store.close().await;
    }
    let mut guard = Guard(Some(ws.start(0)));
    assert!(
        smtp.wait_for_count(due, Duration::from_secs(60)).await,
        "delivery stopped after the bad job: {} of {due}; log:\n{}",
        smtp.count(),
        ws.log(0)
    );
    guard.stop_gracefully();
    let log = ws.log(0);
    assert!(
        log.contains("dead-lettering an undecodable queue job"),
        "the bad job was not dead-lettered; log:\n{log}"
    );
    assert!(
        !log.contains("restarting under a new name"),
        "a bad payload must not stop the worker; log:\n{log}"
    );
    let store = ledger(&ws).await;
    let status: String =
        sqlx::query_scalar("SELECT status FROM Jobs WHERE id = '01ARZ3NDEKTSV4RRFFQ69G5FAV'")
            .fetch_one(store.pool())
            .await
            .expect("the bad job's row");
    assert_eq!(status, "Killed", "kept as a dead letter");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transaction_without_an_answer_is_retried_once_only() {
    // The server takes longer than the client waits (timeout 1 s): the client cannot
    // know whether the message was accepted, so it tries once more and then stops.
    let smtp = SmtpServer::start(SmtpOptions {
        delay_per_message: Duration::from_millis(2500),
        ..Default::default()
    })
    .await;
    let ws = Workspace::new(&smtp.url(), "");
    let (csv, people) = people(3);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    assert!(!due.is_empty(), "need a due contact");
    ws.import_csv(&csv);
    let mut guard = Guard(Some(ws.start(0)));
    let store = ledger(&ws).await;
    let id = ContactId::parse(&due[0].id).unwrap();
    let mut last = None;
    for _ in 0..200 {
        let t = store.touches_for_contact(&id).await.unwrap();
        if t.first().is_some_and(|t| t.status.is_final()) {
            last = t.into_iter().next();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    guard.stop_gracefully();
    let t = last.expect("the touch reached a final state");
    assert_eq!(
        (t.status, t.attempts),
        (TouchStatus::Failed, 2),
        "{:?}",
        t.reason
    );
    assert!(
        t.reason
            .as_deref()
            .unwrap_or("")
            .contains("uncertain twice"),
        "{:?}",
        t.reason
    );
    // The server counts a message when its (slow) answer is due.
    smtp.wait_for_attempts(&due[0].email, 2, Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(smtp.attempts_for(&due[0].email), 2, "exactly one retry");
}

/// One touch can be followed through the log: the lines logged while it is decided,
/// sent and recorded carry spans naming the job, the touch and its channel, and the
/// planner's lines the occasion.
#[tokio::test(flavor = "multi_thread")]
async fn a_touch_can_be_followed_through_the_log_by_its_spans() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(&smtp.url(), "");
    let (csv, people) = support::people::people_with(3, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    assert!(!due.is_empty());
    let mut cmd = ws.command();
    let log = std::fs::File::create(ws.path("daemon-0.log")).unwrap();
    cmd.arg("run")
        .env("RAPPORT_LOG", "debug")
        .stdout(std::process::Stdio::null())
        .stderr(log);
    let mut guard = Guard(Some(cmd.spawn().unwrap()));
    assert!(
        smtp.wait_for_count(due.len(), Duration::from_secs(30))
            .await,
        "log:\n{}",
        ws.log(0)
    );
    guard.stop_gracefully();
    let log = ws.log(0);
    let p = due[0];
    let touch = format!("birthday:{}:{}", p.id, p.year);
    let sent = log
        .lines()
        .find(|l| l.contains("touch sent") && l.contains(&touch))
        .unwrap_or_else(|| panic!("no send of {touch}:\n{log}"));
    assert!(sent.contains("claim{worker="), "{sent}");
    assert!(
        sent.contains(&format!("touch{{touch=\"{touch}\" channel=\"email\"}}")),
        "{sent}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("plan{occasion=\"birthday\"}") && l.contains("planner run")),
        "{log}"
    );
}
