//! The command line for channels: config problems named by key, `check`'s warnings
//! (SMS segments, secrets not set, no one-click unsubscribe), SMS previews, and
//! `rapport dead-letters list|retry`.

#[path = "support/cli_env.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_env;

use chrono::{Duration, Utc};
use cli_env::{Env, TEMPLATES, assert_has, assert_lacks};
use rapport::domain::Channel;
use rapport::store::{Coordination, Ledger};
use rapport::{
    domain::{ContactId, NewTouch, TouchId, TouchStatus},
    store::{Outcome, SqliteStore},
};

const CONFIG_ERROR: i32 = 78;
const DATA_ERROR: i32 = 65;

#[test]
fn channel_config_problems_are_reported_by_key() {
    let env = Env::new();
    let toml = r#"
[api]
public_url = "http://rapport.example"
[channels.email]
rate = "fast"
list_unsubscribe_mailto = "not-an-address"
[channels.email.dkim]
selector = "s1"
algorithm = "dsa"
[channels.sms]
transport = "twilio"
base_url = "ftp://gateway"
from = "+0123"
rate = "0/s"
[channels.webhook]
url = "https://user:hunter2@crm.example/hook"
retry_schedule = ["5s", "soon"]
[occasions.birthday]
channels = ["email", "pigeon", "email"]
[occasions.anniversary]
channel = "email"
channels = ["sms"]
"#;
    let file = env.write("test.toml", toml);
    let run = env.run(&["--config", &file, "check"]).expect(CONFIG_ERROR);
    for issue in [
        "api.public_url: \"http://rapport.example\" must be an https URL",
        "channels.email.rate: \"fast\" is not a rate",
        "channels.email.list_unsubscribe_mailto: not an email address",
        "channels.email.dkim.domain: missing",
        "channels.email.dkim.key_file: missing",
        "channels.email.dkim.algorithm: unknown algorithm \"dsa\"",
        "channels.sms.base_url: \"ftp://gateway\" must be an http or https URL",
        "channels.sms.account_sid: missing",
        "channels.sms.auth_token_env: missing",
        "channels.sms.from: not an E.164 phone number",
        "channels.sms.rate: \"0/s\": the count must be at least 1",
        "channels.webhook.url: \"https://user:***@crm.example/hook\" must not carry credentials",
        "channels.webhook.secret_env: missing",
        "channels.webhook.retry_schedule[1]: \"soon\" is not a duration",
        "occasions.birthday.channels[1]: unknown channel \"pigeon\"",
        "occasions.birthday.channels: names \"email\" twice",
        "occasions.anniversary.channels: set either channel or channels",
    ] {
        assert_has(&run.stderr, &format!("{file}: {issue}"));
    }
    assert_lacks(&run.stderr, "hunter2");
}

#[test]
fn endpoints_must_be_https_and_public_unless_allowed_and_unused_keys_are_named() {
    let env = Env::new();
    let toml = r#"
[channels.sms]
account_sid = "ACxyz"
from = "+15550000000"
[channels.webhook]
url = "http://crm.example/hook"
secret_env = "X"
"#;
    let file = env.write("test.toml", toml);
    let run = env.run(&["--config", &file, "check"]).expect(CONFIG_ERROR);
    for issue in [
        "channels.sms.account_sid: only used with transport = \"twilio\"",
        "channels.sms.from: only used with transport = \"twilio\"",
        "channels.webhook.url: \"http://crm.example/hook\" must be an https URL",
    ] {
        assert_has(&run.stderr, &format!("{file}: {issue}"));
    }

    let toml = r#"
[channels.sms]
transport = "twilio"
base_url = "https://10.1.2.3"
account_sid = "ACxyz"
auth_token_env = "T"
from = "12345"
[channels.webhook]
url = "https://[::1]:8443/hook"
secret_env = "X"
"#;
    let file = env.write("test2.toml", toml);
    let run = env.run(&["--config", &file, "check"]).expect(CONFIG_ERROR);
    assert_has(
        &run.stderr,
        "channels.sms.base_url: https://10.1.2.3: the host is a private address",
    );
    assert_has(
        &run.stderr,
        "channels.webhook.url: https://[::1]:8443: the host is a loopback address",
    );
    assert_lacks(&run.stderr, "channels.sms.from");

    // Allowed explicitly (a gateway on the private network), plain http too.
    let toml = r#"
[channels.webhook]
url = "http://127.0.0.1:9/hook"
secret_env = "X"
allow_private = true
"#;
    let file = env.write("test3.toml", toml);
    env.run(&["--config", &file, "check"]).expect(0);
}

#[test]
fn check_reads_the_dkim_key_and_fails_on_a_missing_one() {
    let env = Env::new();
    let toml = r#"
[channels.email.dkim]
selector = "s1"
domain = "rapport.example"
key_file = "/nonexistent/dkim.pem"
"#;
    let file = env.write("test.toml", toml);
    let run = env.run(&["--config", &file, "check"]).expect(CONFIG_ERROR);
    assert_has(&run.stdout, "FAIL  channels.email.dkim: ");
    assert_has(&run.stdout, "/nonexistent/dkim.pem");
}

#[test]
fn an_occasion_naming_a_channel_that_is_not_configured_is_a_config_error() {
    let env = Env::new();
    let file = env.write(
        "test.toml",
        "[occasions.birthday]\nchannels = [\"webhook\", \"email\"]\n",
    );
    let run = env.run(&["--config", &file, "check"]).expect(CONFIG_ERROR);
    assert_has(
        &run.stderr,
        "occasions.birthday.channels: channel \"webhook\" is not configured (add a [channels.webhook] section)",
    );
}

/// The shipped templates with the birthday SMS replaced by `sms`.
fn templates_with_birthday_sms(env: &Env, sms: &str) -> String {
    let dir = env.path("templates");
    let copy = std::process::Command::new("cp")
        .args(["-r", TEMPLATES, &dir.display().to_string()])
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::write(dir.join("birthday/sms.hbs"), sms).unwrap();
    dir.display().to_string()
}

#[test]
fn check_warns_when_an_sms_takes_more_than_one_segment() {
    let mut env = Env::new();
    let long = format!(
        "Happy birthday {{{{contact.first_name}}}}! {}",
        "x".repeat(300)
    );
    let dir = templates_with_birthday_sms(&env, &long);
    env.set("RAPPORT__TEMPLATES__DIR", dir);
    let run = env.run(&["check"]).expect(0);
    // The friend tier uses the plain sms.hbs: about 320 GSM-7 characters, 3 segments.
    let line = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("ok    birthday / sms / friend"))
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    assert!(
        line.starts_with("warn  the sample is")
            && line.contains("GSM-7 characters: 3 SMS segments (one holds 160)"),
        "{}",
        run.stdout
    );
    // The family variant is short: no warning after its line.
    let after_family = run
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("ok    birthday / sms / family"))
        .nth(1)
        .unwrap_or_default();
    assert!(!after_family.starts_with("warn"), "{}", run.stdout);

    // An emoji makes it UCS-2: 70 characters to a segment.
    let mut env = Env::new();
    let dir = templates_with_birthday_sms(&env, &format!("🎂 {}", "y".repeat(80)));
    env.set("RAPPORT__TEMPLATES__DIR", dir);
    let run = env.run(&["check"]).expect(0);
    assert_has(
        &run.stdout,
        "UCS-2 characters: 2 SMS segments (one holds 70)",
    );
}

#[test]
fn check_warns_about_secrets_not_set_and_no_one_click_unsubscribe() {
    let mut env = Env::new();
    let file = env.write(
        "test.toml",
        r#"
[channels.webhook]
url = "https://crm.example/hook"
secret_env = "TEST_HOOK_SECRET"
previous_secret_env = "TEST_HOOK_SECRET_OLD"
"#,
    );
    env.set("TEST_HOOK_SECRET_OLD", "whsec_short");
    let run = env.run(&["--config", &file, "check"]).expect(0);
    assert_has(
        &run.stdout,
        "warn  channels.webhook: the secret variable TEST_HOOK_SECRET is not set here",
    );
    assert_has(
        &run.stdout,
        "warn  channels.webhook: TEST_HOOK_SECRET_OLD: ",
    );
    assert_lacks(&run.stdout, "whsec_short");
    assert_has(&run.stdout, "warn  api.public_url is not set");
    // `run` refuses to start without the secret, naming the variable.
    let run = env.run(&["--config", &file, "run"]).expect(CONFIG_ERROR);
    assert_has(&run.stderr, "TEST_HOOK_SECRET");

    env.set("RAPPORT__API__PUBLIC_URL", "https://rapport.example");
    let run = env.run(&["check"]).expect(0);
    assert_lacks(&run.stdout, "api.public_url is not set");
    assert_has(
        &run.stdout,
        "warn  api.public_url: https://rapport.example/u/... (one-click unsubscribe), https://rapport.example/c/... (click tracking) and https://rapport.example/v1/twilio/... (SMS replies and delivery reports) must route",
    );
    assert_has(&run.stdout, "warn  channels.email.dkim is not set");
}

#[test]
fn preview_shows_the_sms_and_its_segments() {
    let env = Env::new();
    env.import(
        "c.csv",
        "id,first_name,email,phone,tier,sms_consent\nf1,Ada,ada@example.com,+15550000001,family,no\n",
    )
    .expect(0);
    let run = env
        .run(&["preview", "birthday", "--contact", "f1", "--channel", "sms"])
        .expect(0);
    assert_has(&run.stdout, "To: +15550000001");
    assert_has(&run.stdout, "Happy birthday, dear Ada!");
    assert_has(&run.stderr, "withdrawn SMS consent");
    let run = env
        .run(&[
            "preview",
            "birthday",
            "--contact",
            "f1",
            "--channel",
            "pigeon",
        ])
        .failed();
    assert_has(
        &run.stderr,
        "unknown channel \"pigeon\" (known: email, sms, webhook)",
    );
}

#[test]
fn import_rejects_phone_numbers_that_are_not_e164() {
    let env = Env::new();
    let run = env
        .import(
            "c.csv",
            "id,email,phone\nok1,a@example.com,+44 7700 900123\nbad1,b@example.com,07700 900123\n",
        )
        .expect(DATA_ERROR);
    assert_has(&run.stderr, "phone");
    assert_has(&run.stderr, "E.164");
    assert_lacks(&run.stderr, "07700 900123");
    assert_has(&run.stdout, "1 contact(s) imported, 1 row(s) rejected");
}

/// Three touches in the ledger: two failed (one already past its expiry), one sent.
fn ledger_with_dead_letters(env: &Env) -> Vec<TouchId> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(&env.db_url()).await.unwrap();
        let now = Utc::now();
        let touch = |contact: &str, expires| {
            let contact_id = ContactId::parse(contact).unwrap();
            NewTouch {
                id: TouchId::derive("birthday", &contact_id, "2026"),
                occasion: "birthday".into(),
                contact_id,
                occurrence: "2026".into(),
                channel: Channel::Email,
                priority: 100,
                scheduled_at: now - Duration::hours(1),
                due: now - Duration::hours(1),
                expires_at: expires,
                status: TouchStatus::Planned,
                reason: None,
            }
        };
        let touches = vec![
            touch("d1", now + Duration::hours(6)),
            touch("d2", now + Duration::seconds(2)),
            touch("s1", now + Duration::hours(6)),
        ];
        let ids: Vec<TouchId> = touches.iter().map(|t| t.id.clone()).collect();
        store.plan_touches(&touches, 10, now).await.unwrap();
        store
            .claim(&ids, "w", now, now + Duration::minutes(5))
            .await
            .unwrap();
        let outcomes = [
            Outcome::Failed {
                id: ids[0].clone(),
                reason: "gave up after 6 attempts: smtp 421 (transient)".into(),
            },
            Outcome::Failed {
                id: ids[1].clone(),
                reason: "failed permanently: email: smtp 550 (permanent)".into(),
            },
            Outcome::Sent { id: ids[2].clone() },
        ];
        store.record(&outcomes, "w", now).await.unwrap();
        store.close().await;
        ids
    })
}

#[test]
fn dead_letters_are_listed_without_personal_data_and_retried_once() {
    let env = Env::new();
    let run = env.run(&["dead-letters", "list"]).expect(0);
    assert_has(&run.stdout, "no dead letters");
    env.import(
        "c.csv",
        "id,first_name,email\nd1,Ada,ada.secret@example.com\n",
    )
    .expect(0);
    let ids = ledger_with_dead_letters(&env);

    let run = env.run(&["dead-letters", "list"]).expect(0);
    let line = |id: &TouchId| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(id.as_str()))
            .unwrap_or_else(|| panic!("{id} not listed:\n{}", run.stdout))
            .to_owned()
    };
    let d1 = line(&ids[0]);
    assert!(
        d1.contains("gave up after 6 attempts") && d1.contains("smtp 421 (transient)"),
        "{d1}"
    );
    let d2 = line(&ids[1]);
    assert!(
        d2.contains("failed permanently") && d2.contains("email: smtp 550"),
        "{d2}"
    );
    assert_lacks(&run.stdout, ids[2].as_str());
    assert_lacks(&run.stdout, "ada.secret");

    // One by id: queued again, gone from the list; again: not a dead letter any more.
    let run = env
        .run(&["dead-letters", "retry", ids[0].as_str()])
        .expect(0);
    assert_has(&run.stdout, &format!("queued again: {}", ids[0]));
    let run = env
        .run(&["dead-letters", "retry", ids[0].as_str()])
        .expect(DATA_ERROR);
    assert_has(&run.stderr, "is planned, not a dead letter");
    let run = env
        .run(&["dead-letters", "retry", "birthday:nobody:2026"])
        .expect(DATA_ERROR);
    assert_has(&run.stderr, "no touch with id birthday:nobody:2026");

    // --all: d2 has expired meanwhile, so it stays, and says why.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let run = env.run(&["dead-letters", "retry", "--all"]).expect(0);
    assert_has(&run.stderr, &format!("not retried: {} expired at", ids[1]));
    assert_has(
        &run.stdout,
        "0 touch(es) queued again, 1 past expiry left as dead letters",
    );
    let run = env.run(&["dead-letters", "list"]).expect(0);
    assert_has(&run.stdout, ids[1].as_str());
    assert_lacks(&run.stdout, &format!("{} ", ids[0]));

    let run = env.run(&["dead-letters", "retry"]).failed();
    assert_has(&run.stderr, "required arguments were not provided");
}
