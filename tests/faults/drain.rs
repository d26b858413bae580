//! SIGTERM while a claimed batch is being sent (a deploy): no provider call starts after
//! the signal, claimed sends not started are handed back at once, sends in flight finish
//! or are abandoned as uncertain at `drain_timeout`, and the process exits 0 within
//! `drain_timeout` + 1 s. After the restart nothing is lost and nothing repeats but the
//! abandoned sends (once, with their Message-ID).

use std::time::{Duration, Instant};

use rapport::domain::TouchStatus;

use crate::{
    pause::start_on,
    rig::{Tally, delivered, eventually, redis_count},
    support::{
        daemon::{Guard, Workspace, signal, wait_exit},
        people::{Person, people_with},
        redis::RedisServer,
        smtp::{SmtpOptions, SmtpServer},
    },
};

/// The test workspaces' `dispatch.drain_timeout`.
const DRAIN: Duration = Duration::from_secs(5);
/// How late after the signal a transaction may still start: the signal's delivery and
/// the MAIL already on the wire (none may start after it is handled).
const SIGNAL_SLACK: Duration = Duration::from_millis(100);

async fn slow_smtp(delay: Duration) -> SmtpServer {
    SmtpServer::start(SmtpOptions {
        delay_per_message: delay,
        ..Default::default()
    })
    .await
}

/// SIGTERM once `in_flight` transactions are under way, then waits for the exit.
/// Returns when the signal was sent and how long the exit took.
async fn terminate_mid_send(
    ws: &Workspace,
    daemon: &mut Guard,
    smtp: &SmtpServer,
    in_flight: usize,
) -> (Instant, Duration) {
    assert!(
        eventually(Duration::from_secs(60), || {
            smtp.mail_times().len() >= smtp.count() + in_flight
        })
        .await,
        "never had {in_flight} sends in flight; log:\n{}",
        ws.log(0)
    );
    let mut child = daemon.0.take().expect("a running daemon");
    signal(&child, "TERM");
    let term = Instant::now();
    let status = wait_exit(&mut child, DRAIN + Duration::from_secs(5));
    let took = term.elapsed();
    assert!(
        status.success(),
        "exit {status} after SIGTERM; log:\n{}",
        ws.log(0)
    );
    assert!(
        took <= DRAIN + Duration::from_secs(1),
        "exited {took:?} after SIGTERM, past drain_timeout + 1 s; log:\n{}",
        ws.log(0)
    );
    (term, took)
}

fn started_after(smtp: &SmtpServer, at: Instant) -> usize {
    smtp.mail_times()
        .into_iter()
        .filter(|t| *t > at + SIGNAL_SLACK)
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_mid_send_starts_nothing_new_and_the_restart_sends_the_rest_once() {
    let smtp = slow_smtp(Duration::from_millis(800)).await;
    let ws = Workspace::new(
        &smtp.url(),
        "[dispatch]\nworkers = 1\nconcurrency = 4\nbatch_size = 40\n",
    );
    let (csv, people) = people_with(40, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut daemon = Guard(Some(ws.start(0)));
    // The first wave is through; the second is in flight.
    assert!(
        eventually(Duration::from_secs(60), || smtp.count() >= 4).await,
        "log:\n{}",
        ws.log(0)
    );
    let (term, took) = terminate_mid_send(&ws, &mut daemon, &smtp, 4).await;
    assert_eq!(
        started_after(&smtp, term),
        0,
        "sends started after SIGTERM; log:\n{}",
        ws.log(0)
    );
    // In flight at the signal: they finish inside the drain and are recorded.
    let before_restart = smtp.count();
    assert!(before_restart < due.len(), "all sent before the signal");
    let log = ws.log(0);
    assert!(
        log.contains("handing back claimed sends that have not started"),
        "log:\n{log}"
    );
    smtp.set_delay(Duration::ZERO);
    let mut daemon = Guard(Some(ws.start(1)));
    assert!(
        eventually(Duration::from_secs(60), || smtp.count() >= due.len()).await,
        "{} of {} after the restart; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(1)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_gracefully();
    Tally::of(&[&smtp]).assert_once_each(&due);
    eprintln!(
        "drain: exit {took:?} after SIGTERM; {before_restart} sent before it, the rest after the restart"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sends_in_flight_at_sigterm_that_never_get_an_answer_are_resent_once() {
    // The server answers each message after 8 s; the client gives up after 4 s (its
    // timeout, which must be shorter than the drain): the transactions in flight at
    // SIGTERM end uncertain inside the drain. The server still takes them (it had the
    // whole message), so their resend after the restart arrives as a second copy with
    // the same Message-ID, and nothing else does.
    let smtp = slow_smtp(Duration::from_secs(8)).await;
    let ws = Workspace::new(
        &smtp.url(),
        "[dispatch]\nworkers = 1\nconcurrency = 3\nbatch_size = 20\nlease = \"8s\"\n[channels.email]\ntimeout = \"4s\"\n",
    );
    let (csv, people) = people_with(20, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut daemon = Guard(Some(ws.start(0)));
    let (term, _) = terminate_mid_send(&ws, &mut daemon, &smtp, 3).await;
    assert_eq!(started_after(&smtp, term), 0, "log:\n{}", ws.log(0));
    let in_flight = smtp.mail_times().len();
    assert_eq!(in_flight, 3, "log:\n{}", ws.log(0));
    smtp.set_delay(Duration::ZERO);
    let mut daemon = Guard(Some(ws.start(1)));
    // Everyone once, plus the uncertain ones a second time.
    assert!(
        eventually(Duration::from_secs(60), || smtp.count()
            >= due.len() + in_flight)
        .await,
        "{} messages for {} due; log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(1)
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_gracefully();
    let tally = Tally::of(&[&smtp]);
    for p in &due {
        assert!(tally.copies(p) >= 1, "{} never got its note", p.id);
    }
    let repeated = tally.repeated();
    assert_eq!(
        repeated.len(),
        in_flight,
        "exactly the sends in flight at SIGTERM repeat: {:?}",
        repeated
            .iter()
            .map(|(w, c)| (w, c.len()))
            .collect::<Vec<_>>()
    );
    for (who, copies) in &repeated {
        assert_eq!(copies.len(), 2, "{who}");
        assert!(
            copies.iter().any(|(_, r)| r.started_at < term),
            "{who}: not in flight at SIGTERM"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_replicas_unstarted_sends_go_to_the_next_one_without_waiting_for_its_lease() {
    // A long lease (30 s): were the claimed touches left leased, the next replica would
    // wait for it to lapse. Handed back at SIGTERM, they go out at once.
    let redis = RedisServer::start(&[]);
    let smtp = slow_smtp(Duration::from_millis(500)).await;
    let (ws, storage) = Workspace::redis(
        &smtp.url(),
        &redis.url(),
        "[dispatch]\nworkers = 1\nconcurrency = 2\nbatch_size = 40\nlease = \"30s\"\n",
    );
    let (csv, people) = people_with(40, |_| true);
    ws.import_csv(&csv);
    let due: Vec<&Person> = people.iter().filter(|p| p.due).collect();
    let mut first = Guard(Some(start_on(&ws, 0, &smtp)));
    assert!(
        eventually(Duration::from_secs(60), || smtp.count() >= 4).await,
        "log:\n{}",
        ws.log(0)
    );
    let (term, _) = terminate_mid_send(&ws, &mut first, &smtp, 2).await;
    assert_eq!(started_after(&smtp, term), 0, "log:\n{}", ws.log(0));
    let mut next = Guard(Some(start_on(&ws, 1, &smtp)));
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(25), || delivered(&[&smtp]) >= due.len()).await,
        "{} of {} within 25 s of the next replica's start (the lease is 30 s); log:\n{}",
        smtp.count(),
        due.len(),
        ws.log(1)
    );
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    next.stop_gracefully();
    Tally::of(&[&smtp]).assert_once_each(&due);
    assert_eq!(
        redis_count(&storage, TouchStatus::Sent).await,
        due.len() as u64
    );
    eprintln!("handback: the next replica finished {took:?} after its start");
}
