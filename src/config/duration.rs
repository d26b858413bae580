//! Human durations as ops write them: `500ms`, `30s`, `5m`, `2h`, `7d`, `1h30m`.

use std::time::Duration;

pub(crate) fn parse_duration(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let bad = || format!("{raw:?} is not a duration (expected e.g. 30s, 5m, 2h, 7d, 1h30m)");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.chars().take_while(|c| c.is_ascii_alphabetic()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let part = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "d" => Duration::from_secs(n.saturating_mul(86_400)),
            _ => return Err(bad()),
        };
        total = total.saturating_add(part);
    }
    // Far beyond any sensible setting, and keeps date arithmetic from overflowing.
    if total > Duration::from_secs(3650 * 86_400) {
        return Err(format!("{raw:?} is longer than 10 years"));
    }
    Ok(total)
}

/// The shortest form [`parse_duration`] reads back: `14d`, `1h30m`, `45s`, `0s`.
pub fn format_duration(d: Duration) -> String {
    let mut secs = d.as_secs();
    if secs == 0 {
        return if d.is_zero() {
            "0s".into()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    let mut out = String::new();
    for (unit, len) in [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)] {
        if secs >= len {
            out.push_str(&format!("{}{unit}", secs / len));
            secs %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "10", "s", "5 minutes", "1w", "-1s", "1.5h", "99999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        for s in ["14d", "1h30m", "45s", "0s", "1d2h3m4s"] {
            assert_eq!(format_duration(parse_duration(s).unwrap()), s);
        }
    }
}
