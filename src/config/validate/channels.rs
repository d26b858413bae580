//! The webhook channel's keys, `[api]`, and what every channel may take: a `rate`, the
//! URLs it calls (`[channels.sms]` is in `sms`, `[channels.email]` in `email`).

use std::time::Duration;

use super::Issues;
use crate::config::{
    ApiConfig, Rate, WebhookConfig, parse_duration,
    raw::{RawApi, RawWebhook},
};

/// Standard Webhooks' example schedule after the first attempt: 5 s, 5 min, 30 min, 2 h,
/// 5 h, 10 h, 14 h, 20 h, 24 h.
const WEBHOOK_SCHEDULE: [u64; 9] = [5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400];

impl Issues<'_> {
    /// `rate = "50/s"`: a count per second, minute, hour or day, or per a duration
    /// (`"100/10s"`).
    pub(super) fn rate(&mut self, path: &str, raw: Option<&str>) -> Option<Rate> {
        let raw = raw?;
        match parse_rate(raw) {
            Ok(r) => Some(r),
            Err(e) => {
                self.push(path, e.to_string());
                None
            }
        }
    }

    /// A URL rapport calls: [`Issues::url`], and https unless `allow_private` (a
    /// credential or a signed payload never crosses a network in clear), and not an
    /// address literal in a private range unless allowed (a name is checked on every
    /// connection).
    pub(super) fn endpoint(
        &mut self,
        path: &str,
        raw: &str,
        allow_private: bool,
    ) -> Option<String> {
        let https = (!allow_private)
            .then_some("plain http only with allow_private, for an endpoint on a private network");
        let url = self.url(path, raw, https)?;
        match crate::channels::http::check_url(&url, allow_private) {
            Ok(_) => Some(url),
            Err(e) => {
                self.push(path, e.to_string());
                None
            }
        }
    }

    /// A URL rapport calls or hands out: http(s), a host, no credentials, no spaces;
    /// https only when `https` gives the reason why.
    fn url(&mut self, path: &str, raw: &str, https: Option<&str>) -> Option<String> {
        let shown = crate::config::redact_url(raw);
        let bad = |why: &str| format!("{shown:?} {why}");
        let parsed = match url::Url::parse(raw) {
            Ok(u) => u,
            Err(e) => {
                self.push(path, bad(&format!("is not a URL ({e})")));
                return None;
            }
        };
        let problem = if !matches!(parsed.scheme(), "http" | "https") {
            Some("must be an http or https URL")
        } else if let Some(why) = https.filter(|_| parsed.scheme() != "https") {
            self.push(path, bad(&format!("must be an https URL ({why})")));
            return None;
        } else if parsed.host_str().is_none_or(str::is_empty) {
            Some("has no host")
        } else if !parsed.username().is_empty() || parsed.password().is_some() {
            Some("must not carry credentials (use the *_env keys)")
        } else {
            None
        };
        if let Some(p) = problem {
            self.push(path, bad(p));
            return None;
        }
        Some(raw.trim_end_matches('/').to_owned())
    }
}

/// A size in bytes: `65536`, `64KiB`, `1MiB` (also `KB`/`MB`, read as the binary units).
pub(super) fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: usize = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size (expected e.g. 65536, 64KiB, 1MiB)"))?;
    let factor = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "KB" | "K" => 1 << 10,
        "MiB" | "MB" | "M" => 1 << 20,
        _ => {
            return Err(format!(
                "{s:?} is not a size (expected e.g. 65536, 64KiB, 1MiB)"
            ));
        }
    };
    n.checked_mul(factor)
        .ok_or_else(|| format!("{s:?} is too large"))
}

pub(super) fn parse_rate(s: &str) -> Result<Rate, String> {
    let bad = || format!("{s:?} is not a rate (expected e.g. \"50/s\", \"300/m\" or \"100/10s\")");
    let (count, per) = s.trim().split_once('/').ok_or_else(bad)?;
    let count: u32 = count.trim().parse().map_err(|_| bad())?;
    if count == 0 {
        return Err(format!("{s:?}: the count must be at least 1"));
    }
    let per = match per.trim() {
        "s" => Duration::from_secs(1),
        "m" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        "d" => Duration::from_secs(86_400),
        other => parse_duration(other).map_err(|_| bad())?,
    };
    if per.is_zero() {
        return Err(bad());
    }
    Ok(Rate { count, per })
}

pub(super) fn api(issues: &mut Issues<'_>, raw: &RawApi) -> ApiConfig {
    let listen = match raw.listen.as_deref().unwrap_or("127.0.0.1:8080") {
        "" => None,
        addr => addr
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                issues.push(
                    "api.listen",
                    format!("{addr:?} is not an address and port (e.g. \"127.0.0.1:8080\", \"[::]:8080\"; \"\" for no API)"),
                )
            })
            .ok(),
    };
    let max_body = match raw.max_body.as_deref().map(parse_size) {
        None => 1 << 20,
        Some(Ok(n)) if n > 0 => n,
        Some(Ok(_)) => {
            issues.push("api.max_body", "must be at least 1 byte");
            1 << 20
        }
        Some(Err(e)) => {
            issues.push("api.max_body", e);
            1 << 20
        }
    };
    ApiConfig {
        listen,
        tokens_env: raw
            .tokens_env
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "RAPPORT_API_TOKENS".into()),
        max_body,
        public_url: raw.public_url.as_deref().and_then(|u| {
            issues.url(
                "api.public_url",
                u,
                Some("mail clients only use one-click unsubscribe over https"),
            )
        }),
        signing_secret_env: raw.signing_secret_env.clone().filter(|s| !s.is_empty()),
    }
}

pub(super) fn webhook(issues: &mut Issues<'_>, raw: Option<&RawWebhook>) -> Option<WebhookConfig> {
    let raw = raw?;
    // Before anything that returns early, so a bad rate is reported with the rest.
    let rate = issues.rate("channels.webhook.rate", raw.rate.as_deref());
    let allow_private = raw.allow_private.unwrap_or(false);
    let url = match raw.url.as_deref() {
        Some(u) => issues.endpoint("channels.webhook.url", u, allow_private),
        None => {
            issues.missing(
                "channels.webhook.url",
                "the endpoint, e.g. \"https://crm.example/hooks/rapport\"",
            );
            None
        }
    };
    let secret_env = raw.secret_env.clone().filter(|s| !s.is_empty());
    if secret_env.is_none() {
        issues.missing(
            "channels.webhook.secret_env",
            "the name of the environment variable holding the whsec_ signing secret",
        );
    }
    let timeout = issues.duration(
        "channels.webhook.timeout",
        raw.timeout.as_deref(),
        Duration::from_secs(15),
    );
    if timeout.is_zero() {
        issues.push("channels.webhook.timeout", "must be longer than 0s");
    }
    let retry_schedule = match &raw.retry_schedule {
        None => WEBHOOK_SCHEDULE
            .iter()
            .map(|s| Duration::from_secs(*s))
            .collect(),
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    issues.push(&format!("channels.webhook.retry_schedule[{i}]"), e);
                    None
                }
            })
            .collect(),
    };
    let max_age = issues.duration(
        "channels.webhook.max_age",
        raw.max_age.as_deref(),
        Duration::from_secs(3 * 86_400),
    );
    Some(WebhookConfig {
        url: url?,
        secret_env: secret_env?,
        previous_secret_env: raw.previous_secret_env.clone().filter(|s| !s.is_empty()),
        timeout,
        retry_schedule,
        max_age,
        rate,
        allow_private,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        let r = parse_rate("50/s").unwrap();
        assert_eq!((r.count, r.per), (50, Duration::from_secs(1)));
        assert_eq!(r.interval(), Duration::from_millis(20));
        assert_eq!(
            parse_rate("300/m").unwrap().interval(),
            Duration::from_millis(200)
        );
        assert_eq!(
            parse_rate("100/10s").unwrap().interval(),
            Duration::from_millis(100)
        );
        for bad in ["50", "0/s", "x/s", "5/fortnight", "5/0s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        for bad in ["", "1GiB", "-1", "lots"] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
    }
}
