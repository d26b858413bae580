//! `rapport simulate` on a population ops would tune for: 10,000 contacts (tiers mixed,
//! seven zones, birthdays and customer anniversaries spread over the year, a quarter
//! of them buying every ~12 days) over 365 days. The issue's target: "finishes in
//! seconds". Runs the release binary end to end (file parsing included) and prints the
//! wall time and peak RSS.
//!
//! `cargo bench --bench simulate_year` (SIM_N=contacts, SIM_DAYS=days to change the size).

use std::{fmt::Write as _, process::Command, time::Instant};

fn main() {
    let n: usize = env_or("SIM_N", 10_000);
    let days: u32 = env_or("SIM_DAYS", 365);
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "--bin", "rapport"])
        .status()
        .expect("cargo build");
    assert!(status.success(), "cargo build --release failed");
    let repo = env!("CARGO_MANIFEST_DIR");
    let dir = tempfile::tempdir().expect("a temp dir for the generated files");
    let zones = [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "America/Los_Angeles",
        "Asia/Tokyo",
        "Australia/Sydney",
        "Pacific/Kiritimati",
    ];
    let tiers = ["family", "friend", "acquaintance", "acquaintance"];
    // Fixed epochs for the generated dates (valid literals).
    let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).expect("valid literal");
    let (born, since0, start) = (day(1980, 1, 1), day(2015, 1, 1), day(2027, 1, 1));
    let mut csv = String::from("id,first_name,email,timezone,birthday,customer_since,tier\n");
    let mut events = String::new();
    for i in 0..n {
        let birthday = born + chrono::Days::new((i * 37 % 366) as u64);
        let since = if i % 2 == 0 {
            (since0 + chrono::Days::new((i * 53 % 3000) as u64)).to_string()
        } else {
            String::new()
        };
        writeln!(
            csv,
            "c{i},Person{i},p{i}@example.com,{},{birthday},{since},{}",
            zones[i % zones.len()],
            tiers[i % tiers.len()]
        )
        .expect("writing to a String");
        if i % 4 == 0 {
            for k in 0..days / 12 {
                let at = start + chrono::Days::new(u64::from(k) * 12 + (i % 12) as u64);
                writeln!(
                    events,
                    r#"{{"contact": "c{i}", "type": "purchase", "id": "o{k}", "at": "{at}T14:00:00Z"}}"#
                )
                .expect("writing to a String");
            }
        }
    }
    let contacts = dir.path().join("contacts.csv");
    let events_file = dir.path().join("events.jsonl");
    std::fs::write(&contacts, csv).expect("write the contacts file");
    std::fs::write(&events_file, events).expect("write the events file");
    let began = Instant::now();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(format!("{repo}/target/release/rapport"))
        .args(["simulate", "--contacts"])
        .arg(&contacts)
        .arg("--events")
        .arg(&events_file)
        .args(["--start", "2027-01-01", "--days", &days.to_string()])
        .env("RAPPORT__TEMPLATES__DIR", format!("{repo}/templates"))
        .current_dir(dir.path())
        .output()
        .expect("run rapport simulate");
    let took = began.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "simulate failed:\n{stdout}\n{stderr}");
    let rss_kib: u64 = stderr
        .trim()
        .lines()
        .last()
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    println!("{stdout}");
    println!(
        "simulate: {n} contacts x {days} days: {:.2} s wall, peak RSS {} MiB",
        took.as_secs_f64(),
        rss_kib / 1024
    );
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
