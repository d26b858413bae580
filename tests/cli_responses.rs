//! `rapport response add` and what `rapport contacts show` then says about the
//! relationship: the responses, what changed, and what was learned, in words.

use chrono::{Duration, Utc};
use rapport::store::Coordination;
use rapport::{domain::TouchId, store::SqliteStore};

#[path = "support/cli_env.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_env;
#[path = "support/sent.rs"]
#[allow(dead_code, unreachable_pub)]
mod sent;

use cli_env::{Env, assert_has, assert_lacks};

const CONTACTS: &str = "id,first_name,email,phone,tier,timezone\n\
ada,Ada,ada@example.com,+14155550101,acquaintance,UTC\n";

/// Touches of `ada` sent on `channel`, `n` of them, the last an hour ago.
async fn sent(env: &Env, channel: &str, n: i64) -> Vec<TouchId> {
    let store = SqliteStore::open(&env.db_url()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..n {
        let at = Utc::now() - Duration::days(n - i) - Duration::hours(1);
        let occurrence = format!("{channel}{i}");
        ids.push(sent::sent(&store, "ada", "check_in", &occurrence, channel, at).await);
    }
    store.close().await;
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn responses_are_recorded_and_shown_in_words() {
    let env = Env::new();
    env.import("c.csv", CONTACTS).expect(0);
    let sms = sent(&env, "sms", 3).await;
    let reply = |touch: &TouchId, id: &str| {
        env.run(&[
            "response",
            "add",
            "--kind",
            "reply",
            "--touch",
            touch.as_str(),
            "--id",
            id,
        ])
    };
    let run = reply(&sms[0], "m1").expect(0);
    assert_has(&run.stdout, "recorded: reply from ada by sms");
    assert_has(&run.stdout, &format!("answering {}", sms[0]));
    assert_has(&reply(&sms[0], "m1").expect(0).stdout, "already recorded");
    reply(&sms[1], "m2").expect(0);
    let run = env
        .run(&[
            "response",
            "add",
            "--kind",
            "click",
            "--contact",
            "ada",
            "--channel",
            "sms",
        ])
        .expect(0);
    assert_has(&run.stdout, &format!("answering {}", sms[2]));
    assert_has(&run.stdout, "moved from acquaintance to friend");

    let show = env.show("ada").expect(0).stdout;
    assert_has(&show, "tier           friend");
    assert_has(&show, "prefers SMS (3 of 3 responses)");
    assert_has(&show, "friend since");
    assert_has(&show, "3 response(s)");
    assert_has(&show, "reply  click by sms");
    assert_has(&show, "note   moved from acquaintance to friend");

    // An unsubscribe withdraws consent at once, and says so.
    let run = env
        .run(&[
            "response",
            "add",
            "--kind",
            "stop",
            "--contact",
            "ada",
            "--channel",
            "sms",
        ])
        .expect(0);
    assert_has(&run.stdout, "consent withdrawn on SMS");
    assert_has(&env.show("ada").expect(0).stdout, "(no SMS consent)");
}

#[test]
fn bad_responses_name_the_flag_and_change_nothing() {
    let env = Env::new();
    env.import("c.csv", CONTACTS).expect(0);
    for (args, says) in [
        (
            &["--kind", "love", "--contact", "ada", "--channel", "sms"][..],
            "--kind",
        ),
        (
            &["--kind", "reply", "--contact", "ada"][..],
            "--contact and --channel",
        ),
        (
            &["--kind", "reply", "--contact", "nobody", "--channel", "sms"][..],
            "no contact with id nobody",
        ),
        (
            &["--kind", "reply", "--touch", "birthday:ada:1999"][..],
            "no touch with id birthday:ada:1999",
        ),
        (
            &[
                "--kind",
                "reply",
                "--contact",
                "ada",
                "--channel",
                "sms",
                "--at",
                "soon",
            ][..],
            "--at",
        ),
    ] {
        let mut all = vec!["response", "add"];
        all.extend_from_slice(args);
        let run = env.run(&all).expect(65);
        assert_has(&run.stderr, says);
    }
    assert_has(&env.show("ada").expect(0).stdout, "0 response(s)");
}

/// The line `rapport plan` prints for `touch`.
fn plan_line<'a>(plan: &'a str, touch: &str) -> &'a str {
    plan.lines()
        .find(|l| l.contains(touch))
        .unwrap_or_else(|| panic!("no {touch} in:\n{plan}"))
}

#[test]
fn plan_shows_what_consent_and_suppression_do() {
    let env = Env::new();
    // Tomorrow at noon UTC, inside the send window; birthdays on that day.
    let at = (Utc::now() + Duration::days(1))
        .date_naive()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc();
    let day = at.format("--%m-%d");
    env.import(
        "c.csv",
        &format!(
            "id,first_name,email,phone,tier,timezone,birthday\n\
             unsub,Una,una@example.com,,friend,UTC,{day}\n\
             bounced,Bo,bo@example.com,,friend,UTC,{day}\n\
             moved,Mo,mo@example.com,+14155550188,friend,UTC,\n"
        ),
    )
    .expect(0);
    // A thank-you planned on email while Mo could still get email.
    env.run(&[
        "event",
        "add",
        "--contact",
        "moved",
        "--type",
        "purchase",
        "--id",
        "o-1",
    ])
    .expect(0);
    let respond = |kind: &str, contact: &str| {
        let args = ["response", "add", "--kind", kind, "--contact", contact];
        env.run(&[&args[..], &["--channel", "email"]].concat())
            .expect(0)
    };
    respond("unsubscribe", "unsub");
    respond("bounce_hard", "bounced");
    respond("unsubscribe", "moved");

    let plan = env
        .run(&["plan", "--at", &at.to_rfc3339()])
        .expect(0)
        .stdout;
    let year = at.format("%Y");
    for who in ["unsub", "bounced"] {
        let line = plan_line(&plan, &format!("birthday:{who}:{year}"));
        assert_has(line, "suppressed: no email consent");
        assert_lacks(line, "would go out");
    }
    let moved = plan_line(&plan, "thank_you:moved:o-1");
    assert_has(
        moved,
        &format!(
            "would go out by sms at {} (email: no email consent; trying sms)",
            at.format("%Y-%m-%d %H:%M:%SZ")
        ),
    );
    assert_has(&plan, "1 would go out, 2 held or skipped");
    // Nothing was written: the thank-you is still planned on email.
    assert_has(
        &env.show("moved").expect(0).stdout,
        "touch  thank_you:moved:o-1  planned email",
    );
}
