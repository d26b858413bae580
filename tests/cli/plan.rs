//! `rapport plan`: the touches due at an instant, what is held and why, nothing written;
//! an instant that is not RFC 3339 is refused.

use chrono::Utc;

use crate::cli_env::{Env, assert_has, assert_lacks};
use crate::shared::CONTACTS;

#[test]
fn plan_lists_the_touches_due_at_an_instant_and_writes_nothing() {
    let env = Env::new();
    env.import("c.csv", CONTACTS).expect(0);
    // 01:00 on July 14 in Tokyo, still July 13 in New York.
    let run = env.run(&["plan", "--at", "2026-07-13T16:00:00Z"]).expect(0);
    assert_has(
        &run.stdout,
        "birthday:fam1:2026  [new]  would go out by email at 2026-07-14 00:00:00Z",
    );
    assert_has(
        &run.stdout,
        "1 would go out, 0 held or skipped, 0 already settled; nothing was written",
    );
    for other in ["ny1", "fri1", "acq1"] {
        assert_lacks(&run.stdout, other);
    }
    // A second before midnight in Tokyo: not due yet.
    let run = env.run(&["plan", "--at", "2026-07-13T14:59:59Z"]).expect(0);
    assert_lacks(&run.stdout, "fam1");
    assert_has(&run.stdout, "0 would go out");
    assert_has(&env.show("fam1").expect(0).stdout, "0 touch(es)");
}

/// `YYYY-MM-DD` of `days` from now (UTC), and the same day as `--MM-DD`.
fn days_from_now(days: i64) -> (chrono::DateTime<Utc>, String) {
    let at = Utc::now() + chrono::Duration::days(days);
    (at, at.format("--%m-%d").to_string())
}

#[test]
fn plan_shows_what_is_held_and_why() {
    let env = Env::new();
    // Forty days from now both family contacts are due a check-in (30d without an
    // interaction); kin's birthday is the day after, within the family min_gap (2d).
    let (at, _) = days_from_now(40);
    let at = at.date_naive().and_hms_opt(12, 0, 0).unwrap().and_utc();
    let birthday = (at + chrono::Duration::days(1)).format("--%m-%d");
    env.import(
        "c.csv",
        &format!(
            "id,first_name,email,timezone,birthday,tier\n\
             kin,Kim,kim@example.com,UTC,{birthday},family\n\
             pal,Pat,pat@example.com,UTC,,family\n"
        ),
    )
    .expect(0);
    let run = env.run(&["plan", "--at", &at.to_rfc3339()]).expect(0);
    assert_has(&run.stdout, "check_in:pal:");
    assert_has(&run.stdout, "[new]  would go out by email at");
    let kin = run
        .stdout
        .lines()
        .find(|l| l.contains("check_in:kin:"))
        .unwrap_or_else(|| panic!("no check-in for kin in:\n{}", run.stdout));
    assert_has(kin, "skipped: yields to birthday (priority 100)");
    assert_has(kin, "(min_gap 2d)");
    assert_has(&run.stdout, "1 would go out, 1 held or skipped");
    // Nothing was written.
    assert_has(&env.show("kin").expect(0).stdout, "0 touch(es)");
}

#[test]
fn plan_rejects_an_instant_that_is_not_rfc3339() {
    let env = Env::new();
    for bad in ["yesterday", "2026-07-13T16:00:00"] {
        let run = env.run(&["plan", "--at", bad]).failed();
        assert_has(
            &run.stderr,
            &format!("--at {bad:?} is not an RFC 3339 instant"),
        );
    }
}
