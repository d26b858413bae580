//! `rapport simulate` with answering contacts, end to end: `--seed`, `--learning`,
//! `sim_*` columns in the contacts file, and the report's text and JSON.

use std::fmt::Write as _;

#[path = "support/cli_env.rs"]
#[allow(dead_code, unreachable_pub)]
mod cli_env;

use cli_env::{Env, assert_has};

const DATA_ERROR: i32 = 65;

/// 60 contacts: family, friends and acquaintances, every other one with a phone, a few
/// with their preferences fixed by `sim_*` columns.
fn contacts() -> String {
    let tiers = ["family", "friend", "acquaintance"];
    let zones = ["UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo"];
    let mut csv = String::from(
        "id,email,phone,timezone,birthday,tier,sim_channel,sim_hour,sim_rate,sim_opt_out\n",
    );
    for i in 0..60 {
        let phone = if i % 2 == 0 {
            format!("+1555{i:07}")
        } else {
            String::new()
        };
        let sim = match i % 10 {
            0 => "sms,19,0.9,0",
            5 => ",,0,0",
            _ => ",,,",
        };
        writeln!(
            csv,
            "c{i},c{i}@example.com,{phone},{},--{:02}-{:02},{},{sim}",
            zones[i % 4],
            i % 12 + 1,
            i % 28 + 1,
            tiers[i % 3]
        )
        .unwrap();
    }
    csv
}

fn args<'a>(file: &'a str, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "simulate",
        "--contacts",
        file,
        "--start",
        "2027-01-01",
        "--days",
        "365",
    ];
    v.extend_from_slice(more);
    v
}

fn json(env: &Env, args: &[&str]) -> serde_json::Value {
    let run = env.run(args).expect(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

#[test]
fn both_prints_learning_off_and_on_side_by_side_and_a_seed_repeats() {
    let env = Env::new();
    let file = env.write("c.csv", &contacts());
    let text = env
        .run(&args(&file, &["--learning", "both", "--seed", "5"]))
        .expect(0)
        .stdout;
    for part in [
        "=== learning off ===",
        "Contacts answer as drawn from seed 5; learning off.",
        "=== learning on ===",
        "Contacts answer as drawn from seed 5; learning on.",
        "=== learning off vs on (seed 5, the same contacts) ===",
        "  responses: ",
        "    hour     right for ",
        "nothing was sent or stored",
    ] {
        assert_has(&text, part);
    }
    let table = &text[text.find("=== learning off vs on").unwrap()..];
    for row in ["family", "friend", "acquaintance", "(all)"] {
        assert!(
            table.lines().any(|l| l.trim_start().starts_with(row)),
            "{row}: {table}"
        );
    }
    let both = args(&file, &["--learning", "both", "--seed", "5", "--json"]);
    let a = json(&env, &both);
    assert_eq!(a, json(&env, &both));
    assert_eq!(a["seed"], 5);
    assert_eq!(
        (&a["off"]["learning"], &a["on"]["learning"]),
        (&false.into(), &true.into())
    );
    assert!(a["off"]["learned"].is_null() && a["on"]["learned"].is_object());
    for run in ["off", "on"] {
        let r = &a[run]["responses"];
        assert!(r["sent"].as_u64() > Some(100), "{r}");
        assert!(r["responses"].as_u64() > Some(0), "{r}");
        for t in a[run]["tiers"].as_array().unwrap() {
            assert!(t["responses"]["response_rate"].is_f64(), "{t}");
        }
    }
    let other = json(
        &env,
        &args(&file, &["--learning", "both", "--seed", "6", "--json"]),
    );
    assert_ne!(a["on"]["responses"], other["on"]["responses"]);
}

#[test]
fn learning_follows_the_config_unless_the_flag_says() {
    let mut env = Env::new();
    let file = env.write("c.csv", &contacts());
    assert_eq!(json(&env, &args(&file, &["--json"]))["learning"], true);
    env.set("RAPPORT__LEARNING__ENABLED", "false");
    let off = json(&env, &args(&file, &["--json"]));
    assert_eq!(off["learning"], false);
    assert!(off["learned"].is_null());
    assert_eq!(off["seed"], 1);
    assert_eq!(
        json(&env, &args(&file, &["--json", "--learning", "on"]))["learning"],
        true
    );
    let text = env.run(&args(&file, &[])).expect(0).stdout;
    assert_has(&text, "Contacts answer as drawn from seed 1; learning off.");
}

#[test]
fn bad_sim_columns_are_named_and_nothing_is_simulated() {
    let env = Env::new();
    let file = env.write(
        "bad.csv",
        "id,email,tier,sim_hour,sim_rate\n\
         a,a@example.com,family,25,0.5\n\
         b,b@example.com,friend,9,often\n\
         c,c@example.com,friend,9,0.2\n",
    );
    let run = env
        .run(&args(&file, &["--learning", "both"]))
        .expect(DATA_ERROR);
    assert_has(
        &run.stderr,
        "contact a: sim_hour: \"25\" is not an hour (0 to 23)",
    );
    assert_has(
        &run.stderr,
        "contact b: sim_rate: \"often\" is not a probability (0 to 1)",
    );
    assert_has(&run.stderr, "rapport: 2 bad sim_* attribute(s)");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    let run = env.run(&args(&file, &["--learning", "sometimes"]));
    assert_eq!(run.code, 2, "{run:?}");
    assert_has(&run.stderr, "possible values: on, off, both");
}
