//! Contacts and the newtypes their fields are parsed into.

use std::fmt;

use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// A field value that failed to parse; the message never echoes the whole value back
/// for personal fields (addresses), so it is safe to print and log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, FieldError> {
    Err(FieldError(msg.into()))
}

/// The integrator's own id for a contact. Restricted to a safe alphabet because it is
/// part of touch ids, Message-IDs, file names and logs: `:` is excluded so a touch id
/// (`occasion:contact:occurrence`) stays unambiguous, and `@` so an email address cannot
/// be used as an id and end up in logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ContactId(String);

impl ContactId {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.is_empty() {
            return err("must not be empty");
        }
        if s.len() > 128 {
            return err("longer than 128 characters");
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')))
        {
            return err(format!(
                "character {c:?} is not allowed (use letters, digits and . _ - +)"
            ));
        }
        Ok(Self(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ContactId {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}
impl From<ContactId> for String {
    fn from(c: ContactId) -> String {
        c.0
    }
}
impl fmt::Display for ContactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A syntactically plausible mailbox address. Deliverability is the mail server's job;
/// this only rejects what could never be an address (and header-injection attempts).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if s.len() > 254 {
            return err("longer than 254 characters");
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return err("not an email address (no @)");
        };
        if local.is_empty() || local.len() > 64 {
            return err("not an email address (bad local part)");
        }
        if local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | '@'))
        {
            return err("not an email address (bad character in local part)");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return err("not an email address (bad domain)");
        }
        Ok(Self(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }
    /// `a***@example.com`: enough to tell addresses apart in an operator's view, never
    /// the whole address.
    pub fn redacted(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", ""));
        let first: String = local.chars().take(1).collect();
        format!("{first}***@{domain}")
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}
impl From<EmailAddress> for String {
    fn from(e: EmailAddress) -> String {
        e.0
    }
}
/// Debug never prints the address: contacts end up in error chains and logs.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.redacted())
    }
}

/// An E.164 phone number (`+` and 7 to 15 digits).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
            .collect();
        let digits = s.strip_prefix('+').unwrap_or("");
        if digits.len() < 7
            || digits.len() > 15
            || digits.starts_with('0')
            || !digits.chars().all(|c| c.is_ascii_digit())
        {
            return err("not an E.164 phone number (expected + and 7 to 15 digits)");
        }
        Ok(Self(s))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for PhoneNumber {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s)
    }
}
impl From<PhoneNumber> for String {
    fn from(p: PhoneNumber) -> String {
        p.0
    }
}
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail: String = self
            .0
            .chars()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        write!(f, "PhoneNumber(+***{tail})")
    }
}

/// A calendar day without a year (`--MM-DD`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MonthDay {
    month: u32,
    day: u32,
}

impl MonthDay {
    pub fn new(month: u32, day: u32) -> Result<Self, FieldError> {
        // 2000 is a leap year, so Feb 29 is a valid month-day.
        if NaiveDate::from_ymd_opt(2000, month, day).is_none() {
            return err(format!("{month:02}-{day:02} is not a calendar day"));
        }
        Ok(Self { month, day })
    }
    pub fn of(date: NaiveDate) -> Self {
        Self {
            month: date.month(),
            day: date.day(),
        }
    }
    pub fn month(self) -> u32 {
        self.month
    }
    pub fn day(self) -> u32 {
        self.day
    }
    pub fn is_feb_29(self) -> bool {
        self.month == 2 && self.day == 29
    }
    /// The date this month-day falls on in `year`: Feb 29 is observed on Feb 28 in
    /// non-leap years, so nobody's birthday is skipped for three years.
    pub fn in_year(self, year: i32) -> NaiveDate {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
            .or_else(|| NaiveDate::from_ymd_opt(year, 2, 28))
            .unwrap_or(NaiveDate::MIN)
    }
    /// `MM-DD`, the form the store indexes.
    pub fn key(self) -> String {
        format!("{:02}-{:02}", self.month, self.day)
    }
}

/// A birthday: month-day, and the year when the contact gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Birthday {
    pub day: MonthDay,
    pub year: Option<i32>,
}

impl Birthday {
    /// `YYYY-MM-DD` or `--MM-DD`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let s = raw.trim();
        if let Some(md) = s.strip_prefix("--") {
            let (m, d) = md
                .split_once('-')
                .ok_or_else(|| FieldError("expected YYYY-MM-DD or --MM-DD".into()))?;
            let (Ok(m), Ok(d)) = (m.parse::<u32>(), d.parse::<u32>()) else {
                return err("expected YYYY-MM-DD or --MM-DD");
            };
            if m.to_string().len() > 2 || md.len() != 5 {
                return err("expected YYYY-MM-DD or --MM-DD");
            }
            return Ok(Self {
                day: MonthDay::new(m, d)?,
                year: None,
            });
        }
        let date = parse_date(s)?;
        Ok(Self {
            day: MonthDay::of(date),
            year: Some(date.year()),
        })
    }
    pub fn to_field(self) -> String {
        match self.year {
            Some(y) => format!("{y:04}-{}", self.day.key()),
            None => format!("--{}", self.day.key()),
        }
    }
}

/// A `YYYY-MM-DD` date.
pub fn parse_date(raw: &str) -> Result<NaiveDate, FieldError> {
    let s = raw.trim();
    if s.len() != 10 {
        return err(format!("{s:?} is not a date (expected YYYY-MM-DD)"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| FieldError(format!("{s:?} is not a date (expected YYYY-MM-DD)")))
}

/// An IANA time zone name such as `Europe/Paris`.
pub fn parse_timezone(raw: &str) -> Result<Tz, FieldError> {
    raw.trim()
        .parse::<Tz>()
        .map_err(|_| FieldError(format!("{:?} is not an IANA time zone", raw.trim())))
}

/// A BCP 47-ish language tag (`en`, `fr-CA`).
pub fn parse_locale(raw: &str) -> Result<String, FieldError> {
    let s = raw.trim();
    let mut parts = s.split(['-', '_']);
    let lang = parts.next().unwrap_or("");
    let ok_lang = (2..=3).contains(&lang.len()) && lang.chars().all(|c| c.is_ascii_alphabetic());
    let ok_rest =
        parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
    if !ok_lang || !ok_rest {
        return err(format!("{s:?} is not a locale (expected e.g. en or fr-CA)"));
    }
    Ok(s.replace('_', "-"))
}

/// A person the company has a relationship with.
#[derive(Debug, Clone, PartialEq)]
pub struct Contact {
    pub id: ContactId,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneNumber>,
    pub timezone: Option<Tz>,
    pub locale: Option<String>,
    pub birthday: Option<Birthday>,
    pub customer_since: Option<NaiveDate>,
    /// A tier name the config knows (checked at import).
    pub tier: String,
    /// Free attributes for templates.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Email consent: `false` once the contact opted out; nothing is sent by email then.
    pub email_consent: bool,
    /// SMS consent: `false` once the contact opted out (STOP, or the carrier's 21610).
    pub sms_consent: bool,
}

impl Contact {
    pub fn zone(&self, default: Tz) -> Tz {
        self.timezone.unwrap_or(default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdays_parse_both_forms_and_reject_bad_days() {
        let b = Birthday::parse("1990-07-14").unwrap();
        assert_eq!((b.day.month(), b.day.day(), b.year), (7, 14, Some(1990)));
        let b = Birthday::parse("--02-29").unwrap();
        assert_eq!((b.day.month(), b.day.day(), b.year), (2, 29, None));
        for bad in [
            "1990-02-30",
            "--02-30",
            "--13-01",
            "14/07/1990",
            "",
            "--7-14",
            "1990-7-14",
        ] {
            assert!(Birthday::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Birthday::parse("1991-02-29").is_err());
    }

    #[test]
    fn feb_29_is_observed_on_feb_28_in_common_years() {
        let d = MonthDay::new(2, 29).unwrap();
        assert_eq!(
            d.in_year(2024),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        assert_eq!(
            d.in_year(2026),
            NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()
        );
    }

    #[test]
    fn emails_are_checked_and_never_printed_whole() {
        let e = EmailAddress::parse(" Ada.Lovelace@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace@example.com");
        assert_eq!(format!("{e:?}"), "EmailAddress(A***@example.com)");
        for bad in [
            "ada",
            "ada@",
            "@x.com",
            "a b@x.com",
            "ada@x",
            "ada@-x.com",
            "a<b>@x.com",
            "a@x.com\r\nBcc: y@z.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ids_phones_zones_locales() {
        assert!(ContactId::parse("cus_42-a.b+d").is_ok());
        assert!(
            ContactId::parse("ada@example.com").is_err(),
            "an address is not an id"
        );
        assert!(ContactId::parse("a:b").is_err());
        assert!(ContactId::parse(" ").is_err());
        assert_eq!(
            PhoneNumber::parse("+33 6 12 34 56 78").unwrap().as_str(),
            "+33612345678"
        );
        assert!(PhoneNumber::parse("0612345678").is_err());
        assert!(parse_timezone("Europe/Paris").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
        assert_eq!(parse_locale("fr_CA").unwrap(), "fr-CA");
        assert!(parse_locale("french!").is_err());
    }
}
