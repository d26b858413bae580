//! Time: the clock seam, send windows and DST-safe local-time arithmetic.

use std::{fmt, str::FromStr, sync::Mutex};

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Where "now" comes from. Pure code takes a `DateTime<Utc>`; the daemon reads it from a
/// `Clock` so tests can pin it.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FixedClock(Mutex<DateTime<Utc>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Mutex::new(at))
    }
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += by;
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Minutes after local midnight, `0..=1440` (1440 is `24:00`, the end of the day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalMinute(u32);

impl LocalMinute {
    fn parse(s: &str) -> Option<Self> {
        let (h, m) = s.trim().split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m) = (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?);
        if m > 59 || h > 24 || (h == 24 && m != 0) {
            return None;
        }
        Some(Self(h * 60 + m))
    }
}

impl LocalMinute {
    /// Minutes after local midnight (`1440`: the next midnight).
    pub fn minutes(self) -> u32 {
        self.0
    }
}

impl fmt::Display for LocalMinute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// The hours of the contact's own day in which a message may go out, `HH:MM-HH:MM`
/// (`00:00-24:00` is the whole day).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    pub start: LocalMinute,
    pub end: LocalMinute,
}

/// Why a text is not a send window.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadWindow {
    #[error("{0:?} is not a send window (expected HH:MM-HH:MM, e.g. 09:00-18:00)")]
    Shape(String),
    #[error("send window {0:?} ends before it starts")]
    Backwards(String),
}

impl FromStr for SendWindow {
    type Err = BadWindow;
    fn from_str(s: &str) -> Result<Self, BadWindow> {
        let bad = || BadWindow::Shape(s.to_owned());
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (start, end) = (
            LocalMinute::parse(a).ok_or_else(bad)?,
            LocalMinute::parse(b).ok_or_else(bad)?,
        );
        if start >= end {
            return Err(BadWindow::Backwards(s.to_owned()));
        }
        Ok(Self { start, end })
    }
}

impl fmt::Display for SendWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

impl SendWindow {
    pub const ALL_DAY: SendWindow = SendWindow {
        start: LocalMinute(0),
        end: LocalMinute(1440),
    };

    /// The window on `date` in `zone`, as instants.
    pub fn on(&self, date: NaiveDate, zone: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        (
            local_instant(date, self.start.0, zone),
            local_instant(date, self.end.0, zone),
        )
    }

    /// The first whole second, from the one `at` falls in, inside the window (in `zone`)
    /// and before `expires_at`; `None` if there is none. Whole seconds, as the queue
    /// schedules: a touch due now gets the current second, so its job is due at once
    /// rather than up to a second later.
    pub fn fit(
        &self,
        at: DateTime<Utc>,
        zone: Tz,
        expires_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let at = DateTime::from_timestamp(at.timestamp(), 0)?;
        let mut day = at.with_timezone(&zone).date_naive();
        // A window is at least a minute long every day, so a few days always settle it.
        for _ in 0..3 {
            let (start, end) = self.on(day, zone);
            let candidate = at.max(start);
            if candidate >= expires_at {
                return None;
            }
            if candidate < end {
                return Some(candidate);
            }
            day = day.succ_opt()?;
        }
        None
    }

    /// As [`SendWindow::fit`], never before `at` itself: for an instant that is a lower
    /// bound (a retry, a hold, a rate-limit place), which must not be rounded down to
    /// the second it falls in.
    pub fn fit_not_before(
        &self,
        at: DateTime<Utc>,
        zone: Tz,
        expires_at: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let at = DateTime::from_timestamp(not_before(at), 0)?;
        self.fit(at, zone, expires_at)
    }
}

/// When a touch for local `date` stops being sendable: `expires` after the start of that
/// day in `zone`. Whole days are counted on the wall clock, so "1d" is the next local
/// midnight even on a 23- or 25-hour DST day.
pub fn expiry(date: NaiveDate, zone: Tz, expires: std::time::Duration) -> DateTime<Utc> {
    let secs = expires.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let end_day = date
        .checked_add_days(chrono::Days::new(days))
        .unwrap_or(NaiveDate::MAX);
    local_midnight(end_day, zone) + Duration::seconds(rest as i64)
}

/// `t` as the whole second the store keeps for a "not before" instant (a retry, a hold,
/// a planned send), rounded *up*: rounding down would let a `Retry-After: 6` come back
/// after 5.4 s. The store and the queue count whole seconds and take a touch only once
/// that second has begun, so a send never happens before the instant it was given.
pub fn not_before(t: DateTime<Utc>) -> i64 {
    t.timestamp() + i64::from(t.timestamp_subsec_nanos() > 0)
}

/// The instant at `minute` minutes of the wall clock on `date` in `zone`.
///
/// Why not just add minutes to midnight: on a DST day the wall clock skips or repeats an
/// hour. A time inside a spring-forward gap maps to the first valid instant after the
/// gap; a repeated time maps to its first occurrence. `1440` is the next local midnight.
pub fn local_instant(date: NaiveDate, minute: u32, zone: Tz) -> DateTime<Utc> {
    let (date, minute) = if minute >= 1440 {
        (date.succ_opt().unwrap_or(date), minute - 1440)
    } else {
        (date, minute)
    };
    let time = NaiveTime::from_hms_opt(minute / 60, minute % 60, 0).unwrap_or(NaiveTime::MIN);
    let mut naive = date.and_time(time);
    // Gaps are at most a few hours (2 h at most in the tz database); step over them a
    // minute at a time, landing on the first wall-clock minute that exists.
    for _ in 0..(24 * 60) {
        match zone.from_local_datetime(&naive) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(a, _) => return a.with_timezone(&Utc),
            LocalResult::None => naive += Duration::minutes(1),
        }
    }
    Utc.from_utc_datetime(&date.and_time(time))
}

/// The start of `date` in `zone`.
pub fn local_midnight(date: NaiveDate, zone: Tz) -> DateTime<Utc> {
    local_instant(date, 0, zone)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn fitting_into_windows() {
        let w: SendWindow = "09:00-18:00".parse().unwrap();
        let z = chrono_tz::UTC;
        let exp = utc("2026-01-02T00:00:00Z");
        assert_eq!(
            w.fit(utc("2026-01-01T08:00:00Z"), z, exp),
            Some(utc("2026-01-01T09:00:00Z"))
        );
        // Due now: the current second, so the job runs at once.
        assert_eq!(
            w.fit(utc("2026-01-01T12:00:00.2Z"), z, exp),
            Some(utc("2026-01-01T12:00:00Z"))
        );
        assert_eq!(
            w.fit(utc("2026-01-01T08:59:59.7Z"), z, exp),
            Some(utc("2026-01-01T09:00:00Z"))
        );
        assert_eq!(
            w.fit(utc("2026-01-01T17:59:59.5Z"), z, exp),
            Some(utc("2026-01-01T17:59:59Z"))
        );
        assert_eq!(w.fit(utc("2026-01-01T18:00:00Z"), z, exp), None);
        // A lower bound is never rounded down to its second.
        assert_eq!(
            w.fit_not_before(utc("2026-01-01T12:00:00.2Z"), z, exp),
            Some(utc("2026-01-01T12:00:01Z"))
        );
        assert_eq!(
            w.fit_not_before(utc("2026-01-01T12:00:00Z"), z, exp),
            Some(utc("2026-01-01T12:00:00Z"))
        );
        // A longer expiry moves the attempt to the next day's window.
        let exp2 = utc("2026-01-03T00:00:00Z");
        assert_eq!(
            w.fit(utc("2026-01-01T19:00:00Z"), z, exp2),
            Some(utc("2026-01-02T09:00:00Z"))
        );
    }

    #[test]
    fn windows_parse_and_reject() {
        let w: SendWindow = "09:00-18:00".parse().unwrap();
        assert_eq!(w.to_string(), "09:00-18:00");
        assert_eq!(
            "00:00-24:00".parse::<SendWindow>().unwrap(),
            SendWindow::ALL_DAY
        );
        for bad in [
            "9-18",
            "18:00-09:00",
            "09:00-09:00",
            "09:60-10:00",
            "24:30-25:00",
            "09:00",
        ] {
            assert!(bad.parse::<SendWindow>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn window_instants_follow_the_contact_zone() {
        let w: SendWindow = "09:00-18:00".parse().unwrap();
        let d = NaiveDate::from_ymd_opt(2026, 7, 14).unwrap();
        let (s, e) = w.on(d, chrono_tz::Asia::Tokyo);
        assert_eq!(s, utc("2026-07-14T00:00:00Z"));
        assert_eq!(e, utc("2026-07-14T09:00:00Z"));
        let (_, e) = SendWindow::ALL_DAY.on(d, chrono_tz::America::Los_Angeles);
        assert_eq!(e, utc("2026-07-15T07:00:00Z"));
    }

    #[test]
    fn dst_gap_and_overlap() {
        // 2026-03-29: Paris skips 02:00-03:00.
        let d = NaiveDate::from_ymd_opt(2026, 3, 29).unwrap();
        assert_eq!(
            local_instant(d, 2 * 60 + 30, chrono_tz::Europe::Paris),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            local_instant(d, 2 * 60 + 10, chrono_tz::Europe::Paris),
            utc("2026-03-29T01:00:00Z")
        );
        // The day is 23 hours long: the next midnight is 23 h after this one.
        let day = local_midnight(d.succ_opt().unwrap(), chrono_tz::Europe::Paris)
            - local_midnight(d, chrono_tz::Europe::Paris);
        assert_eq!(day, Duration::hours(23));
        // 2026-10-25: 02:30 happens twice; the first one counts.
        let d = NaiveDate::from_ymd_opt(2026, 10, 25).unwrap();
        assert_eq!(
            local_instant(d, 2 * 60 + 30, chrono_tz::Europe::Paris),
            utc("2026-10-25T00:30:00Z")
        );
    }
}
