//! `rapport simulate`: a year of the sample contacts keeps every tier within its caps
//! and stores nothing; bad input is refused clearly.

use crate::cli_env::{Env, assert_has};
use crate::shared::{BAD_ROWS_CSV, CONTACTS, DATA_ERROR, REPO};

#[test]
fn simulate_a_year_keeps_every_tier_within_its_caps() {
    let env = Env::new();
    let samples = format!("{REPO}/samples/contacts.csv");
    // Purchases for a few acquaintances every 3 days: thank-yous compete for their caps.
    let mut events = String::new();
    for (n, day) in (0..365).step_by(3).enumerate() {
        let at =
            chrono::NaiveDate::from_ymd_opt(2027, 1, 1).unwrap() + chrono::Days::new(day as u64);
        events.push_str(&format!(
            "{{\"contact\": \"c0003\", \"type\": \"purchase\", \"id\": \"o{n}\", \"at\": \"{at}T15:00:00Z\"}}\n"
        ));
    }
    let events = env.write("events.jsonl", &events);
    let args = [
        "simulate",
        "--contacts",
        &samples,
        "--events",
        &events,
        "--start",
        "2027-01-01",
        "--days",
        "365",
    ];
    let table = env.run(&args).expect(0).stdout;
    assert_has(&table, "tier acquaintance (122 contacts, 122 events)");
    let line = table
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("tier acquaintance cap 1 per 14d")
                && l.contains(" of ")
        })
        .unwrap_or_else(|| panic!("no line for the 14d cap in:\n{table}"));
    assert!(line.ends_with("1 of 1   ok"), "{line}");
    assert_has(&table, "nothing was sent or stored");
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let run = env.run(&json_args).expect(0);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let tiers = report["tiers"].as_array().unwrap();
    assert_eq!(tiers.len(), 3);
    for tier in tiers {
        let name = tier["tier"].as_str().unwrap();
        let caps = tier["caps"].as_array().unwrap();
        assert!(!caps.is_empty(), "{name} has caps");
        for cap in caps {
            assert!(
                cap["max_in_window"].as_u64() <= cap["count"].as_u64(),
                "{name}: {cap}"
            );
        }
        let gap = &tier["min_gap"];
        if let Some(seen) = gap["observed_min_secs"].as_u64() {
            assert!(
                seen >= gap["min_gap_secs"].as_u64().unwrap(),
                "{name}: {gap}"
            );
        }
    }
    let acq = tiers.iter().find(|t| t["tier"] == "acquaintance").unwrap();
    // The caps were really in play: the purchases asked for far more than they allow.
    assert!(
        acq["caps_hit"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
            > 50
    );
    let thanks = acq["occasions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["occasion"] == "thank_you")
        .unwrap();
    assert_eq!(thanks["planned"], 122);
    assert!(
        thanks["sent"].as_u64().unwrap() <= 27,
        "1 per 14d over a year: {thanks}"
    );
    // Nothing was stored.
    assert!(!env.path("r.db").exists());
}

#[test]
fn simulate_rejects_bad_input_clearly() {
    let env = Env::new();
    let contacts = env.write("c.csv", CONTACTS);
    let run = env
        .run(&["simulate", "--contacts", &contacts, "--start", "soon"])
        .expect(64);
    assert_has(
        &run.stderr,
        "--start \"soon\" is neither YYYY-MM-DD nor an RFC 3339 instant",
    );
    let bad = env.write("bad.csv", BAD_ROWS_CSV);
    let run = env
        .run(&["simulate", "--contacts", &bad])
        .expect(DATA_ERROR);
    assert_has(&run.stderr, "bad row(s)");
    let events = env.write(
        "e.jsonl",
        "{\"contact\": \"fri1\", \"type\": \"purchase\", \"id\": \"o1\"}\n",
    );
    let run = env
        .run(&["simulate", "--contacts", &contacts, "--events", &events])
        .expect(DATA_ERROR);
    assert_has(&run.stderr, "line 1: field `at`: missing");
}
