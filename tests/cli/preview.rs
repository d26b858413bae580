//! `rapport preview`: the message each tier would receive, and unknown contacts and
//! occasions refused clearly.

use chrono::{Datelike, Utc};

use crate::cli_env::{Env, assert_has};
use crate::shared::{CONTACTS, unfold_qp};

fn year_in(zone: chrono_tz::Tz) -> i32 {
    Utc::now().with_timezone(&zone).year()
}

#[test]
fn preview_prints_the_message_each_tier_would_receive() {
    use chrono_tz::{Asia::Tokyo, Europe::Paris, UTC};
    let env = Env::new();
    env.import("c.csv", CONTACTS).expect(0);
    for (id, zone, subject, greeting) in [
        (
            "fam1",
            Tokyo,
            "Subject: Happy birthday, dear Fiona!",
            "Dear Fiona,",
        ),
        ("fri1", UTC, "Subject: Happy birthday, Fred!", "Hi Fred,"),
        (
            "acq1",
            Paris,
            "Subject: Best wishes on your birthday",
            "Dear Alan Acquaint,",
        ),
    ] {
        let before = year_in(zone);
        let run = env.run(&["preview", "birthday", "--contact", id]).expect(0);
        let years = [before, year_in(zone)];
        let (head, body) = run.stdout.split_once("\r\n\r\n").expect("headers, body");
        assert_has(head, subject);
        assert_has(head, "From: \"Rapport Demo Co\" <hello@rapport.example>");
        let message_id = |y| format!("Message-ID: <birthday.{id}.{y}@rapport.example>");
        assert!(
            years.iter().any(|y| head.contains(&message_id(y))),
            "{years:?}:\n{head}"
        );
        let body = unfold_qp(body);
        assert_has(&body, greeting);
        let family = body.contains("family to Rapport Demo Co");
        let brief = body.contains("Best wishes on your birthday from Rapport Demo Co.");
        assert_eq!(
            (family, brief),
            (id == "fam1", id == "acq1"),
            "{id}:\n{body}"
        );
    }
}

#[test]
fn preview_rejects_unknown_contacts_and_occasions_clearly() {
    let env = Env::new();
    env.import("c.csv", CONTACTS).expect(0);
    let run = env
        .run(&["preview", "birthday", "--contact", "nobody"])
        .failed();
    assert_has(&run.stderr, "no contact with id nobody");
    let run = env
        .run(&["preview", "wedding", "--contact", "fam1"])
        .failed();
    assert_has(
        &run.stderr,
        "unknown occasion \"wedding\" (known: birthday, anniversary, thank_you, check_in)",
    );
}
