//! Personal data stays where it belongs, through the real `rapport run`.
//!
//! Logs never carry it: the daemon at `RAPPORT_LOG=trace`, on SQLite with the
//! in-process SMTP server, sends birthday notes and thank-yous that render names,
//! addresses, attributes and event data, and takes contacts and events over the HTTP
//! API; none of those values is in its log (nor in the CLI's), while the log is really
//! at debug/trace for rapport and at warn for every other crate.
//!
//! An erased contact cannot be read back: after `DELETE /v1/contacts/{id}` to the
//! running daemon, none of its values is in the bytes of the SQLite file, its WAL or its
//! shm (tests/api/erasure.rs checks the same on the API alone).

use std::{
    path::Path,
    time::{Duration, Instant},
};

use serde_json::json;

use crate::{
    rig::{a_zone_far_from_midnight, eventually, start_with},
    support::{
        daemon::{Guard, Workspace},
        smtp::{SmtpOptions, SmtpServer},
    },
};

const TOKEN: &str = "tok-log-privacy-5e1d7c3a9b";

/// Every value a log line could leak, as sent in; each is rendered into a note or
/// stored (checked below), so it really passed through the daemon.
const PERSONAL: [&str; 22] = [
    "Xanthippe",
    "Vorticelli",
    "xanthippe.vorticelli",
    "5550162837",
    "Quokka-Juggling-5150",
    "Ignatius",
    "Brambleworth",
    "5550174629",
    "Odalys",
    "Fenwickshire",
    "odalys.fenwickshire",
    "Saffron-Velocipede-2211",
    "Perpetua",
    "Hollowmere",
    "perpetua.hollowmere",
    "5550139574",
    "Gossamer-Wombat-3141",
    "Tangerine-Zeppelin-6060",
    // A value the API refused: error messages quote it, log lines must not.
    "Quasar/Nebulon-7",
    // Message bodies.
    "Happy birthday",
    "Thank you for your purchase",
    TOKEN,
];

/// `(level, target)` of each log line (`TIMESTAMP LEVEL target: message`).
fn levels_and_targets(log: &str) -> Vec<(&str, &str)> {
    log.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (_, level) = (words.next()?, words.next()?);
            let level = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]
                .into_iter()
                .find(|l| *l == level)?;
            // Spans come first (`claim{worker=..}:touch{touch=..}:`), then the target.
            let target = words.find(|w| w.ends_with(':') && !w.contains(['{', '}', '=', '"']))?;
            Some((level, target.strip_suffix(':')?))
        })
        .collect()
}

/// Lines below INFO from another crate than rapport.
fn third_party_debug(log: &str) -> Vec<String> {
    levels_and_targets(log)
        .into_iter()
        .filter(|(level, target)| {
            ["TRACE", "DEBUG"].contains(level) && !target.starts_with("rapport")
        })
        .map(|(level, target)| format!("{level} {target}"))
        .collect()
}

fn assert_no_personal_data(what: &str, log: &str) {
    for value in PERSONAL {
        assert!(!log.contains(value), "{value} is in the {what}:\n{log}");
    }
}

/// The `rapport` command for `ws` at `level`.
fn rapport(ws: &Workspace, level: &str, args: &[&str]) -> std::process::Output {
    let out = ws
        .command()
        .env("RAPPORT_LOG", level)
        .args(args)
        .output()
        .expect("run rapport");
    assert!(out.status.success(), "rapport {args:?}: {out:?}");
    out
}

fn api_base(ws: &Workspace, daemon: &mut Guard) -> String {
    ws.api_base(0, daemon.0.as_mut().expect("a running daemon"))
}

/// The text of the first `.sms` file under `dir`, once there is one.
fn wait_for_sms(dir: &Path, timeout: Duration) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let found = std::fs::read_dir(dir).ok().and_then(|files| {
            files
                .flatten()
                .find(|f| f.path().extension().is_some_and(|e| e == "sms"))
        });
        if let Some(f) = found {
            return std::fs::read_to_string(f.path()).ok();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_log_of_a_whole_run_carries_ids_never_personal_data() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(
        &smtp.url(),
        "[api]\nlisten = \"127.0.0.1:0\"\n\
         [occasions.thank_you]\ntrigger = { event = \"purchase\", delay = \"0s\" }\n",
    );
    let (zone, today) = a_zone_far_from_midnight();
    std::fs::write(
        ws.path("contacts.csv"),
        format!(
            "id,first_name,last_name,email,phone,timezone,birthday,tier,hobby\n\
             lp-1,Xanthippe,Vorticelli,xanthippe.vorticelli@privacy.example,+15550162837,{zone},{today},friend,Quokka-Juggling-5150\n\
             lp-2,Ignatius,Brambleworth,,+15550174629,{zone},{today},family,\n\
             lp-3,Odalys,Fenwickshire,odalys.fenwickshire@privacy.example,,{zone},,family,\n"
        ),
    )
    .unwrap();
    let mut cli_log = String::new();
    let csv = ws.path("contacts.csv").display().to_string();
    cli_log += &String::from_utf8_lossy(&rapport(&ws, "trace", &["import", &csv]).stderr);
    let data = r#"{"product": "Saffron-Velocipede-2211"}"#;
    let add = ["event", "add", "--contact", "lp-3", "--type", "purchase"];
    let add = [&add[..], &["--id", "order-1", "--data", data]].concat();
    cli_log += &String::from_utf8_lossy(&rapport(&ws, "trace", &add).stderr);

    let mut daemon = start_with(
        &ws,
        0,
        &[("RAPPORT_LOG", "trace"), ("RAPPORT_API_TOKENS", TOKEN)],
    );
    let base = api_base(&ws, &mut daemon);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let put = call(
        reqwest::Method::PUT,
        "/v1/contacts/lp-4",
        json!({"first_name": "Perpetua", "last_name": "Hollowmere",
            "email": "perpetua.hollowmere@privacy.example", "phone": "+15550139574",
            "tier": "family", "attributes": {"pet": "Gossamer-Wombat-3141"}}),
    );
    assert_eq!(put.await.unwrap().status(), 201);
    let refused = call(
        reqwest::Method::PUT,
        "/v1/contacts/lp-5",
        json!({"first_name": "Perpetua", "timezone": "Quasar/Nebulon-7"}),
    );
    assert_eq!(refused.await.unwrap().status(), 422);
    let event = call(
        reqwest::Method::POST,
        "/v1/events",
        json!({"contact": "lp-4", "type": "purchase", "id": "order-2",
            "data": {"product": "Tangerine-Zeppelin-6060"}}),
    );
    assert_eq!(event.await.unwrap().status(), 201);

    // The notes went out, with the values in them: lp-1's birthday and both
    // thank-yous by email, lp-2's birthday by SMS (outbox).
    assert!(
        smtp.wait_for_count(3, Duration::from_secs(60)).await,
        "{} of 3 emails sent; log:\n{}",
        smtp.count(),
        ws.log(0)
    );
    let sms = wait_for_sms(&ws.path("data/outbox"), Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no SMS in the outbox; log:\n{}", ws.log(0)));
    assert!(sms.contains("Ignatius"), "{sms}");
    let sent: String = smtp.messages().iter().map(|m| m.data.clone()).collect();
    for value in [
        "Xanthippe",
        "Saffron-Velocipede-2211",
        "Tangerine-Zeppelin-6060",
    ] {
        assert!(sent.contains(value), "{value} was not rendered:\n{sent}");
    }
    daemon.stop_gracefully();

    let log = ws.log(0);
    assert!(
        log.contains("touch sent") && log.contains("contact=\"lp-1\""),
        "sends are logged by id:\n{log}"
    );
    let ours_below_info = levels_and_targets(&log)
        .into_iter()
        .filter(|(level, target)| {
            ["TRACE", "DEBUG"].contains(level) && target.starts_with("rapport")
        })
        .count();
    assert!(ours_below_info > 0, "the log is not at debug:\n{log}");
    assert_eq!(third_party_debug(&log), Vec::<String>::new(), "{log}");
    assert_no_personal_data("daemon's log", &log);
    assert_no_personal_data("CLI's log", &cli_log);
}

/// The check above can see another crate's lines: named in `RAPPORT_LOG`, Handlebars
/// logs at debug (what it renders); not named, it does not.
#[test]
fn other_crates_log_below_warn_only_when_named() {
    let ws = Workspace::new("smtp://127.0.0.1:1", "");
    let named = rapport(&ws, "trace,handlebars=trace", &["check"]);
    let named = String::from_utf8_lossy(&named.stderr);
    assert!(
        third_party_debug(&named)
            .iter()
            .any(|l| l.contains("handlebars")),
        "handlebars=trace shows Handlebars' lines:\n{named}"
    );
    let not_named = rapport(&ws, "trace", &["check"]);
    let not_named = String::from_utf8_lossy(&not_named.stderr);
    assert_eq!(
        third_party_debug(&not_named),
        Vec::<String>::new(),
        "{not_named}"
    );
}

/// Every value of the contact to erase, each stored where a reader of the files could
/// find it: the contact row (names, address, phone, an attribute) and its event's data,
/// rendered into the note it got.
const ERASED: [&str; 6] = [
    "Ottoline",
    "Wraxhallow",
    "ottoline.wraxhallow@erasure.example",
    "5550163958",
    "Marzipan-Tortoise-4417",
    "Cobalt-Harmonium-2093",
];
/// Another contact's value, which must survive (the files read are the right ones).
const KEPT: &str = "Unerased-Quince-8802";

/// Which of `r.db`, `r.db-wal` and `r.db-shm` hold `needle` (a missing file is empty).
fn found_in(ws: &Workspace, needle: &str) -> Vec<&'static str> {
    ["r.db", "r.db-wal", "r.db-shm"]
        .into_iter()
        .filter(|name| {
            let bytes = std::fs::read(ws.path(name)).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_contact_erased_while_the_daemon_runs_cannot_be_read_back_from_the_sqlite_files() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let ws = Workspace::new(
        &smtp.url(),
        "[api]\nlisten = \"127.0.0.1:0\"\n\
         [occasions.thank_you]\ntrigger = { event = \"purchase\", delay = \"0s\" }\n",
    );
    let mut daemon = start_with(&ws, 0, &[("RAPPORT_API_TOKENS", TOKEN)]);
    let base = api_base(&ws, &mut daemon);
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Option<serde_json::Value>| {
        let req = http
            .request(method, format!("{base}{path}"))
            .bearer_auth(TOKEN);
        let req = match body {
            Some(b) => req.json(&b),
            None => req,
        };
        async move { req.send().await.expect("request").status().as_u16() }
    };
    let put = json!({"first_name": "Ottoline", "last_name": "Wraxhallow",
        "email": "ottoline.wraxhallow@erasure.example", "phone": "+15550163958",
        "tier": "family", "timezone": "UTC", "attributes": {"pet": "Marzipan-Tortoise-4417"}});
    assert_eq!(
        call(reqwest::Method::PUT, "/v1/contacts/er-1", Some(put)).await,
        201
    );
    let keep = json!({"first_name": KEPT, "email": "keep@example.com", "tier": "friend"});
    assert_eq!(
        call(reqwest::Method::PUT, "/v1/contacts/keep-1", Some(keep)).await,
        201
    );
    let event = json!({"contact": "er-1", "type": "purchase", "id": "o-1",
        "data": {"product": "Cobalt-Harmonium-2093"}});
    assert_eq!(
        call(reqwest::Method::POST, "/v1/events", Some(event)).await,
        201
    );
    // The thank-you went out, with the event's data in it, and was recorded.
    assert!(
        smtp.wait_for_count(1, Duration::from_secs(60)).await,
        "no thank-you sent; log:\n{}",
        ws.log(0)
    );
    assert!(smtp.messages()[0].data.contains("Cobalt-Harmonium-2093"));
    assert!(
        eventually(Duration::from_secs(30), || ws.log(0).contains("touch sent")).await,
        "log:\n{}",
        ws.log(0)
    );

    // Before: every value is in the files, so the check below can fail.
    for value in ERASED.iter().chain([&KEPT]) {
        assert!(
            !found_in(&ws, value).is_empty(),
            "{value} is not in the files before the erasure: the test reads the wrong files"
        );
    }
    assert_eq!(
        call(reqwest::Method::DELETE, "/v1/contacts/er-1", None).await,
        204
    );
    for value in ERASED {
        let found = found_in(&ws, value);
        assert!(
            found.is_empty(),
            "{value} can still be read after the erasure, in {found:?}"
        );
    }
    assert!(
        !found_in(&ws, KEPT).is_empty(),
        "the other contact survives"
    );
    // A few planner, reconciler and sweep runs later, and after the daemon's exit,
    // still nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    daemon.stop_gracefully();
    for value in ERASED {
        let found = found_in(&ws, value);
        assert!(
            found.is_empty(),
            "{value} is back after the exit, in {found:?}"
        );
    }
    assert!(
        !found_in(&ws, KEPT).is_empty(),
        "the other contact survives"
    );
    eprintln!(
        "erasure: {} values of the erased contact in none of the files",
        ERASED.len()
    );
}
