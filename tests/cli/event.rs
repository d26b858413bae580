//! `rapport event add`: an event recorded once, planning its thank-you; bad input refused
//! naming the flag, changing nothing.

use chrono::Utc;

use crate::cli_env::{Env, assert_has, assert_lacks};
use crate::shared::{CONTACTS, DATA_ERROR, unfold_qp};

#[test]
fn event_add_records_once_and_plans_the_thank_you() {
    let env = Env::new();
    env.import("c.csv", CONTACTS).expect(0);
    let at = (Utc::now() - chrono::Duration::minutes(30)).to_rfc3339();
    let add = |data: &str| {
        env.run(&[
            "event",
            "add",
            "--contact",
            "fri1",
            "--type",
            "purchase",
            "--id",
            "order-7",
            "--at",
            &at,
            "--data",
            data,
        ])
    };
    let run = add(r#"{"product": "the walnut desk"}"#).expect(0);
    assert_has(&run.stdout, "event order-7 (purchase) recorded for fri1");
    assert_has(&run.stdout, "thank_you:fri1:order-7: planned, to go out at");
    let run = add(r#"{"product": "something else"}"#).expect(0);
    assert_has(&run.stdout, "already recorded");
    assert_has(&run.stdout, "thank_you:fri1:order-7: already planned");

    let show = env.show("fri1").expect(0).stdout;
    assert_has(
        &show,
        r#"event  purchase order-7 {"product":"the walnut desk"}"#,
    );
    assert_has(&show, "1 event(s), 1 touch(es)");
    assert_has(&show, "touch  thank_you:fri1:order-7  planned");
    assert_lacks(&show, "something else");
    // The budget of a friend: its caps and gap, all free.
    assert_has(&show, "tier friend cap 1 per 7d");
    assert_has(&show, "0 used, 1 left");
    assert_has(&show, "min_gap 3d");
    assert_has(&show, "next place on email: now");
    // The thank-you uses the event's data.
    let preview = env
        .run(&["preview", "thank_you", "--contact", "fri1"])
        .expect(0);
    assert_has(&unfold_qp(&preview.stdout), "the walnut desk");
}

#[test]
fn event_add_rejects_bad_input_naming_the_flag_and_changes_nothing() {
    let env = Env::new();
    env.import("c.csv", CONTACTS).expect(0);
    let base = [
        "event",
        "add",
        "--contact",
        "fri1",
        "--type",
        "purchase",
        "--id",
        "o1",
    ];
    for (extra, code, message) in [
        (
            vec!["--at", "yesterday"],
            64,
            "--at: \"yesterday\" is not an RFC 3339 instant",
        ),
        (vec!["--data", "[1]"], 64, "--data: must be a JSON object"),
        (vec!["--data", "{nope"], 64, "--data is not valid JSON"),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra).collect();
        let run = env.run(&args).expect(code);
        assert_has(&run.stderr, message);
    }
    let run = env
        .run(&[
            "event",
            "add",
            "--contact",
            "fri1",
            "--type",
            "Big Sale",
            "--id",
            "o1",
        ])
        .expect(64);
    assert_has(
        &run.stderr,
        "--type: \"Big Sale\": event types use lower-case",
    );
    let run = env
        .run(&[
            "event",
            "add",
            "--contact",
            "fri1",
            "--type",
            "purchase",
            "--id",
            "a:b",
        ])
        .expect(64);
    assert_has(&run.stderr, "--id: character ':' is not allowed");
    let run = env
        .run(&[
            "event",
            "add",
            "--contact",
            "ghost",
            "--type",
            "purchase",
            "--id",
            "o1",
        ])
        .expect(DATA_ERROR);
    assert_has(&run.stderr, "no contact with id ghost");
    assert_has(
        &env.show("fri1").expect(0).stdout,
        "0 event(s), 0 touch(es)",
    );
}
