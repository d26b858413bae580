use std::path::Path;

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Tz;

mod learning;

use super::*;
use crate::{
    domain::{Birthday, ContactId, EventId, Touch},
    render::sample_contact,
};

fn cfg() -> Config {
    let env = [(
        "RAPPORT__TEMPLATES__DIR".to_owned(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/templates").to_owned(),
    )];
    let default = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config/rapport.toml"));
    Config::load_with(default, None, env).unwrap()
}

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

const START: DateTime<Utc> = DateTime::from_timestamp(1_767_225_600, 0).unwrap(); // 2026-01-01T00:00:00Z

/// A year from `START` of contacts who never answer, learning off: the policy alone.
fn year() -> SimOptions {
    SimOptions {
        start: START,
        days: 365,
        model: ResponseModel::silent(),
        learning: false,
    }
}

fn run(cfg: &Config, contacts: &[Contact], events: &[Event], opts: &SimOptions) -> SimReport {
    super::run(cfg, contacts, events, opts).unwrap()
}

fn person(id: &str, tier: &str, zone: Tz, birthday: Option<&str>) -> Contact {
    let mut c = sample_contact(tier);
    c.id = ContactId::parse(id).unwrap();
    c.timezone = Some(zone);
    c.birthday = birthday.map(|b| Birthday::parse(b).unwrap());
    c.customer_since = None;
    c
}

fn purchase(contact: &str, id: &str, at: DateTime<Utc>) -> Event {
    Event {
        contact_id: ContactId::parse(contact).unwrap(),
        id: EventId::parse(id).unwrap(),
        kind: "purchase".into(),
        at,
        data: serde_json::Map::new(),
    }
}

/// The report, and the ledger the simulation ended with.
fn simulate(
    cfg: &Config,
    contacts: &[Contact],
    events: &[Event],
    opts: &SimOptions,
) -> (SimReport, Vec<Touch>) {
    let cfg = effective(cfg, opts);
    let mut sim = engine::Sim::new(&cfg, contacts, events, opts).unwrap();
    sim.run();
    let touches = sim.touches().cloned().collect();
    (sim.report(), touches)
}

/// When `contact` was sent `occasion`, in order.
fn sent(touches: &[Touch], contact: &str, occasion: &str) -> Vec<DateTime<Utc>> {
    let mut at: Vec<_> = touches
        .iter()
        .filter(|t| t.contact_id.as_str() == contact && t.occasion == occasion)
        .filter_map(|t| t.sent_at)
        .collect();
    at.sort();
    at
}

/// `n` contacts: tiers mixed, birthdays and zones spread over the year and the world,
/// half with a customer-since date, and every fourth a regular buyer.
fn population(n: usize) -> (Vec<Contact>, Vec<Event>) {
    let tiers = ["family", "friend", "acquaintance", "acquaintance"];
    let zones = [
        chrono_tz::UTC,
        chrono_tz::Europe::Paris,
        chrono_tz::America::New_York,
        chrono_tz::Asia::Tokyo,
        chrono_tz::Pacific::Kiritimati,
        chrono_tz::Pacific::Pago_Pago,
        chrono_tz::Australia::Sydney,
    ];
    let (mut contacts, mut events) = (Vec::with_capacity(n), Vec::new());
    for i in 0..n {
        let day = NaiveDate::from_yo_opt(2024, (i * 7919 % 366) as u32 + 1).unwrap();
        let birthday = day
            .format("1980-%m-%d")
            .to_string()
            .replace("1980-02-29", "--02-29");
        let id = format!("c{i}");
        let mut c = person(&id, tiers[i % 4], zones[i % 7], Some(&birthday));
        if i % 2 == 0 {
            c.customer_since = NaiveDate::from_yo_opt(2020, (i * 31 % 365) as u32 + 1);
        }
        if i % 4 == 1 || i % 4 == 2 {
            let every = 5 + (i % 20) as i64;
            let mut at = START + Duration::hours((i % 400) as i64 * 7);
            while at < START + Duration::days(365) {
                events.push(purchase(&id, &format!("o{}", events.len()), at));
                at += Duration::days(every);
            }
        }
        contacts.push(c);
    }
    (contacts, events)
}

#[test]
fn an_acquaintance_never_gets_more_than_its_caps_in_a_year() {
    let cfg = cfg();
    let (contacts, events) = population(240);
    let (report, touches) = simulate(&cfg, &contacts, &events, &year());
    let json = serde_json::to_value(&report).unwrap();
    let tier = json["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tier"] == "acquaintance")
        .unwrap();
    assert_eq!(tier["caps"].as_array().unwrap().len(), 3, "{tier:#}");
    for cap in tier["caps"].as_array().unwrap() {
        assert!(
            cap["max_in_window"].as_u64() <= cap["count"].as_u64(),
            "{cap}"
        );
        assert!(cap["max_in_window"].as_u64() > Some(0), "{cap}");
    }
    let gap = &tier["min_gap"];
    assert!(gap["observed_min_secs"].as_u64() >= gap["min_gap_secs"].as_u64());
    assert!(gap["observed_min_secs"].as_u64().is_some());
    assert!(
        !tier["caps_hit"].as_object().unwrap().is_empty(),
        "the regular buyers should run into the caps: {tier:#}"
    );
    assert!(
        report.tiers.iter().all(TierReport::within_limits),
        "{report}"
    );
    // Checked again from the ledger, not the report: 1 per 14d, 2 per 30d.
    for c in contacts.iter().filter(|c| c.tier == "acquaintance") {
        let mut at: Vec<_> = touches
            .iter()
            .filter(|t| t.contact_id == c.id)
            .filter_map(|t| t.sent_at)
            .collect();
        at.sort();
        assert!(at.windows(2).all(|w| w[1] - w[0] >= Duration::days(14)));
        assert!(at.windows(3).all(|w| w[2] - w[0] >= Duration::days(30)));
    }
}

#[test]
fn birthdays_go_out_on_the_day_in_the_contacts_own_zone() {
    let cfg = cfg();
    let contacts = vec![
        person(
            "kiri",
            "friend",
            chrono_tz::Pacific::Kiritimati,
            Some("1990-07-15"),
        ),
        person(
            "pago",
            "family",
            chrono_tz::Pacific::Pago_Pago,
            Some("--07-14"),
        ),
        person("tokyo", "friend", chrono_tz::Asia::Tokyo, Some("--01-01")),
        person(
            "la",
            "acquaintance",
            chrono_tz::America::Los_Angeles,
            Some("--12-31"),
        ),
        person(
            "leap",
            "family",
            chrono_tz::Europe::London,
            Some("2000-02-29"),
        ),
        person("may", "acquaintance", chrono_tz::UTC, Some("--05-05")),
    ];
    // At the start it is still Dec 31 in Los Angeles: that birthday goes out too.
    let expected = [
        ("07-15", 1),
        ("07-14", 1),
        ("01-01", 1),
        ("12-31", 2),
        ("02-28", 1),
        ("05-05", 1),
    ];
    let (report, touches) = simulate(&cfg, &contacts, &[], &year());
    for (c, (day, count)) in contacts.iter().zip(expected) {
        let at = sent(&touches, c.id.as_str(), "birthday");
        assert_eq!(at.len(), count, "{}: {at:?}", c.id);
        let hours = if c.tier == "acquaintance" {
            10..17
        } else {
            9..18
        };
        for t in at {
            let local = t.with_timezone(&c.timezone.unwrap());
            assert_eq!(local.format("%m-%d").to_string(), day, "{}", c.id);
            assert!(hours.contains(&local.hour()), "{}: {local}", c.id);
        }
    }
    // "may" is due a check-in on May 1 (120 days in): it yields to the birthday.
    let skipped = &report.tier("acquaintance").unwrap().skipped;
    assert!(
        skipped.keys().any(|k| k.starts_with("yields to birthday")),
        "{report}"
    );
}

#[test]
fn check_ins_follow_the_tier_cadence_when_nothing_else_happens() {
    let cfg = cfg();
    let contacts = vec![
        person("fam", "family", chrono_tz::Europe::London, None),
        person("fri", "friend", chrono_tz::UTC, None),
        person("acq", "acquaintance", chrono_tz::UTC, None),
    ];
    let (report, touches) = simulate(&cfg, &contacts, &[], &year());
    for (id, days, count) in [("fam", 30, 12), ("fri", 60, 6), ("acq", 120, 3)] {
        let at = sent(&touches, id, "check_in");
        assert_eq!(at.len(), count, "{id}: {at:?}");
        assert!(at[0] - START >= Duration::days(days), "{id}: {at:?}");
        for w in at.windows(2) {
            let gap = w[1] - w[0];
            assert!(
                gap >= Duration::days(days) && gap < Duration::days(days + 1),
                "{id}: {at:?}"
            );
        }
    }
    let family = report.tier("family").unwrap().occasion("check_in").unwrap();
    assert_eq!((family.sent, family.skipped, family.expired), (12, 0, 0));
    assert!((family.per_contact_per_month - 12.0 / (365.0 * 12.0 / 365.25)).abs() < 1e-9);
}

#[test]
fn a_purchase_brings_one_thank_you_and_resets_the_check_in_clock() {
    let cfg = cfg();
    let contacts = vec![person("ada", "family", chrono_tz::UTC, None)];
    let bought = utc("2026-01-20T12:00:00Z");
    // The same event twice (a retried API call) is still one purchase.
    let events = vec![
        purchase("ada", "order-1", bought),
        purchase("ada", "order-1", bought),
    ];
    let (report, touches) = simulate(&cfg, &contacts, &events, &year());
    assert_eq!(
        sent(&touches, "ada", "thank_you"),
        [utc("2026-01-20T14:00:00Z")]
    );
    let check_ins = sent(&touches, "ada", "check_in");
    // Not 30 days after the start (Jan 31), but 30 days after the thank-you.
    assert_eq!(check_ins[0], utc("2026-02-19T14:00:00Z"), "{check_ins:?}");
    let family = report.tier("family").unwrap();
    assert_eq!(family.events, 2);
    assert_eq!(family.occasion("thank_you").unwrap().planned, 1);
}

#[test]
fn the_same_input_gives_the_same_report() {
    let cfg = cfg();
    let (contacts, events) = population(120);
    let a = run(&cfg, &contacts, &events, &year());
    let b = run(&cfg, &contacts, &events, &year());
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert_eq!(a.to_string(), b.to_string());
}

#[test]
fn no_consent_or_no_address_is_suppressed_and_unknown_events_are_ignored() {
    let cfg = cfg();
    let mut quiet = person("quiet", "family", chrono_tz::UTC, Some("--03-03"));
    quiet.email_consent = false;
    let mut nowhere = person("nowhere", "family", chrono_tz::UTC, Some("--03-03"));
    nowhere.email = None;
    let events = [purchase("ghost", "o1", utc("2026-02-01T00:00:00Z"))];
    let report = run(&cfg, &[quiet, nowhere], &events, &year());
    let family = report.tier("family").unwrap();
    assert_eq!(family.occasions.iter().map(|o| o.sent).sum::<u64>(), 0);
    assert_eq!(family.suppressed["no email consent"], 13);
    assert_eq!(family.suppressed["no email address"], 13);
    assert_eq!((report.events, report.ignored_events), (0, 1));
}

#[test]
fn contacts_read_from_a_file_simulate_as_imported() {
    let cfg = cfg();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("contacts.csv");
    std::fs::write(
        &csv,
        "id,email,timezone,birthday,tier\n\
         ada,ada@example.com,Europe/London,--03-10,family\n\
         bob,bob@example.com,UTC,--04-01,nosuchtier\n\
         ada,ada@example.com,Europe/London,--03-10,acquaintance\n",
    )
    .unwrap();
    let (contacts, errors) = crate::ingest::read_contacts(&cfg, &csv).unwrap();
    assert_eq!((contacts.len(), errors.len()), (2, 1), "{errors:?}");
    let report = run(&cfg, &contacts, &[], &year());
    // The later row for an id wins, as an import upserts.
    assert_eq!(report.contacts, 1);
    assert_eq!(report.tier("acquaintance").unwrap().contacts, 1);
    assert_eq!(report.tier("family").unwrap().contacts, 0);
}

/// `SIMULATE_CONTACTS=10000 cargo test --release --lib simulate::tests::a_population -- --nocapture`
/// times the full-size run.
#[test]
fn a_population_runs_quickly_and_within_its_limits() {
    let n = std::env::var("SIMULATE_CONTACTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let cfg = cfg();
    let (contacts, events) = population(n);
    let began = std::time::Instant::now();
    let report = run(&cfg, &contacts, &events, &year());
    let took = began.elapsed();
    println!(
        "{report}\n{n} contacts, {} events, 365 days: {took:?}",
        events.len()
    );
    assert_eq!(report.contacts, n);
    assert!(
        report.tiers.iter().all(TierReport::within_limits),
        "{report}"
    );
    for t in &report.tiers {
        // Every contact has a birthday; a few fall in the last hours, after the end.
        let birthdays = t.occasion("birthday").unwrap();
        assert!(
            birthdays.sent + birthdays.pending >= t.contacts as u64,
            "{t}"
        );
    }
}
