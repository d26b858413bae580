//! `rapport store status|adopt` and what an adoption does to `rapport plan`: the same
//! adoption rule as the planners (what was due before it, for the contacts present at
//! it, is skipped; contacts added later are planned as usual).

use chrono::{Datelike, Utc};

#[path = "support/cli_env.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_env;

use cli_env::{Env, assert_has, assert_lacks};

/// Contacts whose birthday is `now`'s day in UTC.
fn today(ids: &[&str], now: chrono::DateTime<Utc>) -> String {
    let mut csv = String::from("id,first_name,email,timezone,birthday,tier\n");
    for id in ids {
        csv.push_str(&format!(
            "{id},{id},{id}@example.com,UTC,--{:02}-{:02},friend\n",
            now.month(),
            now.day()
        ));
    }
    csv
}

fn env() -> Env {
    let mut env = Env::new();
    env.set("RAPPORT__DEFAULTS__SEND_WINDOW", "00:00-24:00");
    env.set("RAPPORT__TIERS__FRIEND__SEND_WINDOW", "00:00-24:00");
    env
}

#[test]
fn an_adoption_skips_what_was_due_for_contacts_present_and_plans_later_ones() {
    // One instant for the whole test: the birthdays are its day, the plan is at it
    // (the adoption comes a moment later, after the day's window opened).
    let now = Utc::now();
    let env = env();
    env.import("before.csv", &today(&["ada"], now)).expect(0);
    let status = env.run(&["store", "status"]).expect(0);
    assert_has(&status.stdout, "held:     no");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let adopt = env.run(&["store", "adopt"]).expect(0);
    assert_has(&adopt.stdout, "store adopted at");
    assert_has(&adopt.stdout, "is not sent again");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    env.import("after.csv", &today(&["bob"], now)).expect(0);

    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let plan = env.run(&["plan", "--at", &at]).expect(0);
    let line = |who: &str| {
        plan.stdout
            .lines()
            .find(|l| l.contains(&format!("birthday:{who}:")))
            .unwrap_or_else(|| panic!("no {who} line in:\n{}", plan.stdout))
            .to_owned()
    };
    assert_has(&line("ada"), "skipped");
    assert_has(&line("ada"), "due before the store was adopted");
    assert_has(&line("bob"), "would go out");
    assert_lacks(&line("bob"), "adopted");
    let status = env.run(&["store", "status"]).expect(0);
    assert_has(&status.stdout, "adopted:");
    assert_has(&status.stdout, "is not sent again");

    // With --resend-due nothing is skipped.
    env.run(&["store", "adopt", "--resend-due"]).expect(0);
    let plan = env.run(&["plan", "--at", &at]).expect(0);
    assert_lacks(&plan.stdout, "due before the store was adopted");
}
