//! Provider rate limits end to end: the real `rapport run` sends 200 due birthdays by
//! webhook under `rate = "20/s"`, and a real HTTP receiver on loopback measures what
//! reaches it, on SQLite, on Redis, and with two replicas sharing one Redis limiter.
//!
//! The limit is judged where a provider would judge it, at the receiver: over the whole
//! run, in every one-second window, and against over-throttling (a limiter that sends
//! far slower than allowed fails too). Every send must still arrive exactly once.

mod support;

use std::{
    collections::BTreeSet,
    process::Stdio,
    time::{Duration, Instant},
};

use chrono::{Datelike, Timelike, Utc};
use rapport::{
    channels::webhook::webhook_id,
    domain::{ContactId, TouchId},
};
use support::{
    daemon::{Guard, Workspace},
    http_stub::{HttpStub, Reply},
    redis::{shared_url, unique_prefix},
    smtp::{SmtpOptions, SmtpServer},
};

const N: usize = 200;
const PER_SECOND: usize = 20;
const SECRET_VAR: &str = "RATE_LIMITS_TEST_WEBHOOK_SECRET";
/// 32 bytes, within Standard Webhooks' 24 to 64.
const SECRET: &str = "whsec_cmFwcG9ydCByYXRlLWxpbWl0IHRlc3Qga2V5LCAzMkI=";
/// Batches of ten, so two replicas both get jobs (200 touches in batches of 100 would
/// be two jobs, possibly both claimed by whichever replica polls first), and up to
/// 2 workers x 8 sends per process racing for places.
const DISPATCH: &str = "workers = 2\nbatch_size = 10\nconcurrency = 8\n";

/// The daemons' surroundings: the webhook receiver, an SMTP server (the base config has
/// an email channel; nothing may reach it), the workspace and the expected webhook ids.
struct Rig {
    hook: HttpStub,
    smtp: SmtpServer,
    ws: Workspace,
    expected: BTreeSet<String>,
}

/// `storage` is a `[storage]` section, or empty for the workspace's SQLite file.
async fn rig(storage: &str) -> Rig {
    let hook = HttpStub::always(Reply::status(200)).await;
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let config = format!(
        r#"{storage}
[occasions.birthday]
channels = ["webhook"]
[channels.webhook]
url = "{url}"
secret_env = "{SECRET_VAR}"
allow_private = true
timeout = "1s"
rate = "{PER_SECOND}/s"
[dispatch]
{DISPATCH}"#,
        url = hook.url_for("/hooks/rapport"),
    );
    let ws = Workspace::new(&smtp.url(), &config);
    let (csv, expected) = birthdays_today(N);
    ws.import_csv(&csv);
    Rig {
        hook,
        smtp,
        ws,
        expected,
    }
}

fn redis_storage() -> String {
    format!(
        "[storage]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"{}\"\n",
        shared_url(),
        unique_prefix("rate")
    )
}

/// `n` contacts whose birthday is today, and the `webhook-id` each one's touch carries.
/// They live in UTC, unless UTC is within ten minutes of midnight: then in Tokyo (nine
/// hours ahead), so "today" cannot change while the test runs.
fn birthdays_today(n: usize) -> (String, BTreeSet<String>) {
    let now = Utc::now();
    let minutes = now.hour() * 60 + now.minute();
    let zone: chrono_tz::Tz = if (10..1430).contains(&minutes) {
        chrono_tz::UTC
    } else {
        chrono_tz::Asia::Tokyo
    };
    let today = now.with_timezone(&zone).date_naive();
    let mut csv = String::from("id,first_name,last_name,email,timezone,birthday,tier\n");
    let mut ids = BTreeSet::new();
    for i in 0..n {
        let id = format!("r{i:04}");
        csv.push_str(&format!(
            "{id},Name{i},Tester,{id}@example.com,{},--{:02}-{:02},friend\n",
            zone.name(),
            today.month(),
            today.day()
        ));
        let contact = ContactId::parse(&id).expect("a valid contact id");
        let touch = TouchId::derive("birthday", &contact, &today.year().to_string());
        ids.insert(webhook_id(&touch));
    }
    (csv, ids)
}

/// `rapport run` with the webhook secret in its environment, logging to `daemon-N.log`.
fn start(ws: &Workspace, n: usize) -> Guard {
    let log = std::fs::File::create(ws.path(&format!("daemon-{n}.log"))).expect("log file");
    let child = ws
        .command()
        .env(SECRET_VAR, SECRET)
        .arg("run")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn rapport run");
    Guard(Some(child))
}

fn logs(ws: &Workspace, replicas: usize) -> String {
    (0..replicas)
        .map(|n| format!("--- daemon {n}:\n{}", ws.log(n)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs `replicas` daemons until every touch reached the receiver, stops them cleanly,
/// checks that each expected webhook arrived exactly once and returns the arrival times,
/// sorted.
async fn run(rig: &Rig, replicas: usize) -> Vec<Instant> {
    let mut guards: Vec<Guard> = (0..replicas).map(|n| start(&rig.ws, n)).collect();
    assert!(
        rig.hook.wait_for_count(N, Duration::from_secs(60)).await,
        "only {} of {N} webhooks arrived; logs:\n{}",
        rig.hook.count(),
        logs(&rig.ws, replicas)
    );
    // Two planner ticks and reconciler passes later, still nothing more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for g in &mut guards {
        g.stop_gracefully();
    }
    let requests = rig.hook.requests();
    assert_eq!(
        requests.len(),
        N,
        "one webhook per touch, nothing sent twice"
    );
    let ids: BTreeSet<String> = requests
        .iter()
        .filter_map(|r| r.header("webhook-id").map(str::to_owned))
        .collect();
    assert_eq!(
        ids, rig.expected,
        "the webhook ids are those of the due touches"
    );
    assert_eq!(rig.smtp.count(), 0, "nothing goes by email");
    let mut arrivals: Vec<Instant> = requests.iter().map(|r| r.received_at).collect();
    // Recorded in the order connections took the stub's lock, not quite arrival order.
    arrivals.sort();
    arrivals
}

/// The most arrivals in any window `[t, t + 1 s)`. A window holding the most can always
/// be slid right until it starts at an arrival, so those are the only starts to try.
fn busiest_second(arrivals: &[Instant]) -> usize {
    let mut end = 0;
    let mut busiest = 0;
    for (i, start) in arrivals.iter().enumerate() {
        while end < arrivals.len() && arrivals[end] < *start + Duration::from_secs(1) {
            end += 1;
        }
        busiest = busiest.max(end - i);
    }
    busiest
}

/// Asserts the limit as the receiver saw it, and prints what it measured.
fn assert_rate_held(label: &str, arrivals: &[Instant]) {
    let span = arrivals[arrivals.len() - 1] - arrivals[0];
    let rate = (arrivals.len() - 1) as f64 / span.as_secs_f64();
    let busiest = busiest_second(arrivals);
    eprintln!(
        "{label}: {} webhooks in {span:.3?}: {rate:.3}/s over the run, at most {busiest} in one second",
        arrivals.len()
    );
    // The limiter spaces places exactly 1/20 s apart on its own clock; each arrival is
    // its place plus a small, varying delay (timer wake-up, signing, loopback TCP). If
    // the first arrival lags more than the last, the measured span shrinks by the
    // difference: milliseconds, where 1% of the ~10 s span is 100 ms. Without a limit the
    // rate is in the hundreds or thousands.
    let limit = PER_SECOND as f64 * 1.01;
    assert!(
        rate <= limit,
        "{label}: {rate:.3}/s over the run, above {PER_SECOND}/s (+1%)"
    );
    // Places 1/20 s apart put at most 20 in any [t, t + 1 s). The 21st place is exactly
    // one second after the 1st, so if the 1st arrival lags its place by a millisecond
    // more than the 21st does, both land in one window: allow that one, never two (that
    // would need a jitter of a whole interval, 50 ms).
    assert!(
        busiest <= PER_SECOND + 1,
        "{label}: {busiest} webhooks within one second, above {PER_SECOND} (+1 for jitter)"
    );
    // Evenly spaced, 200 take 199/20 s; half as long again means the limiter holds sends
    // back beyond the limit.
    let slowest = Duration::from_secs_f64(N as f64 / PER_SECOND as f64 * 1.5);
    assert!(
        span < slowest,
        "{label}: {N} webhooks took {span:.3?}, over {slowest:?}: throttled far below the limit"
    );
}

fn sends_logged(ws: &Workspace, n: usize) -> usize {
    ws.log(n).matches("touch sent").count()
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_one_daemon_keeps_200_webhooks_under_20_a_second() {
    let rig = rig("").await;
    let arrivals = run(&rig, 1).await;
    assert_rate_held("sqlite, one daemon", &arrivals);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_one_daemon_keeps_200_webhooks_under_20_a_second() {
    let rig = rig(&redis_storage()).await;
    let arrivals = run(&rig, 1).await;
    assert_rate_held("redis, one daemon", &arrivals);
}

/// Two processes, one limit: a limiter per process would let the pair send 40/s. Both
/// must have sent a good share, or one replica alone would have shown the limit.
#[tokio::test(flavor = "multi_thread")]
async fn redis_two_replicas_share_one_limit_of_20_a_second() {
    let rig = rig(&redis_storage()).await;
    let arrivals = run(&rig, 2).await;
    assert_rate_held("redis, two replicas", &arrivals);
    let per_replica: Vec<usize> = (0..2).map(|n| sends_logged(&rig.ws, n)).collect();
    eprintln!("redis, two replicas: sends per replica {per_replica:?}");
    assert_eq!(
        per_replica.iter().sum::<usize>(),
        N,
        "{per_replica:?}; logs:\n{}",
        logs(&rig.ws, 2)
    );
    for (n, sent) in per_replica.iter().enumerate() {
        assert!(
            *sent >= N / 10,
            "replica {n} did little of the work, so the limit was not shown shared: {per_replica:?}"
        );
    }
}

#[test]
fn busiest_second_counts_half_open_windows() {
    let t0 = Instant::now();
    let at = |ms: &[u64]| -> Vec<Instant> {
        ms.iter().map(|m| t0 + Duration::from_millis(*m)).collect()
    };
    assert_eq!(busiest_second(&[]), 0);
    assert_eq!(busiest_second(&at(&[0])), 1);
    // 1000 ms after the first is outside its window.
    assert_eq!(busiest_second(&at(&[0, 500, 1000])), 2);
    assert_eq!(busiest_second(&at(&[0, 999, 1000, 1001, 1998])), 4);
    let even: Vec<u64> = (0..200).map(|i| i * 50).collect();
    assert_eq!(busiest_second(&at(&even)), 20);
}
