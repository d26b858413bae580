//! Contacts for daemon tests: spread over zones and tiers, with birthdays on their own
//! local today (due) or in ten days.

use std::collections::HashMap;

use chrono::{Datelike, Days, Timelike, Utc};
use chrono_tz::Tz;

use super::smtp::{Received, SmtpServer};

const ZONES: [&str; 10] = [
    "UTC",
    "Europe/Paris",
    "Asia/Tokyo",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Pacific/Auckland",
    "Pacific/Honolulu",
    "Pacific/Kiritimati",
    "Pacific/Pago_Pago",
];
const TIERS: [&str; 3] = ["family", "friend", "acquaintance"];

pub struct Person {
    pub id: String,
    pub first: String,
    pub tier: &'static str,
    pub email: String,
    pub due: bool,
    pub year: i32,
}

/// `n` contacts over zones and tiers. About two in three have their birthday on their
/// own local today; the rest in ten days. A zone within 30 minutes of its midnight gets
/// no due contacts, so the expectation cannot flip while the test runs.
pub fn people(n: usize) -> (String, Vec<Person>) {
    people_with(n, |i| i % 3 != 2)
}

/// `n` contacts; `due(i)` says which may be due today.
pub fn people_with(n: usize, due: impl Fn(usize) -> bool) -> (String, Vec<Person>) {
    let now = Utc::now();
    let mut csv = String::from("id,first_name,last_name,email,timezone,birthday,tier\n");
    let mut out = Vec::new();
    for i in 0..n {
        let zone: Tz = ZONES[i % ZONES.len()].parse().unwrap();
        let local = now.with_timezone(&zone);
        let minutes = local.hour() * 60 + local.minute();
        let near_midnight = !(30..=1410).contains(&minutes);
        let due = due(i) && !near_midnight;
        let day = if due {
            local.date_naive()
        } else {
            local.date_naive() + Days::new(10)
        };
        let (id, tier) = (format!("p{i:04}"), TIERS[(i / 3) % 3]);
        let first = format!("Name{i}");
        let email = format!("{id}@example.com");
        csv.push_str(&format!(
            "{id},{first},Tester,{email},{},--{:02}-{:02},{tier}\n",
            zone.name(),
            day.month(),
            day.day()
        ));
        out.push(Person {
            id,
            first,
            tier,
            email,
            due,
            year: local.year(),
        });
    }
    (csv, out)
}

pub fn by_recipient(msgs: &[Received]) -> HashMap<String, Vec<Received>> {
    let mut m: HashMap<String, Vec<Received>> = HashMap::new();
    for r in msgs {
        m.entry(r.rcpt_to.join(",")).or_default().push(r.clone());
    }
    m
}

/// Every due person got exactly one note (or, where `allow_resends`, at most two with
/// one Message-ID); returns how many got two.
pub fn check_deliveries(smtp: &SmtpServer, due: &[&Person], allow_resends: usize) -> usize {
    let got = by_recipient(&smtp.messages());
    let mut twice = 0;
    for p in due {
        let msgs = got.get(&p.email).map(Vec::as_slice).unwrap_or_default();
        assert!(!msgs.is_empty(), "{} never got its note", p.id);
        assert!(msgs.len() <= 2, "{} got {} copies", p.id, msgs.len());
        if msgs.len() == 2 {
            assert_eq!(
                msgs[0].message_id, msgs[1].message_id,
                "a resend must reuse the Message-ID"
            );
            twice += 1;
        }
    }
    assert!(
        twice <= allow_resends,
        "{twice} notes were sent twice (at most {allow_resends} allowed)"
    );
    twice
}
