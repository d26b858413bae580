//! The HTTP client the SMS API and webhooks share: no redirects, one deadline per
//! request, and no connections to internal networks (SSRF), checked on the addresses
//! actually connected to so a DNS answer that changes between check and use (rebinding)
//! cannot slip through.

use crate::channels::SetupError;
use std::{
    error::Error as StdError,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    header::{HeaderMap, RETRY_AFTER},
    redirect,
};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The longest `Retry-After` honoured: a provider asking for more is waited on for a
/// day, then the retry schedule takes over again.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);
/// Connecting (DNS, TCP, TLS) gets its own, shorter deadline: a timeout there means
/// nothing was sent, which the SMS channel must tell apart from a timeout afterwards.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client that follows no redirects (a 3xx is the receiver's answer, and following it
/// could lead inside the network), gives up after `timeout` for the whole request, and
/// unless `allow_private` connects only to public addresses.
pub(crate) fn client(
    timeout: Duration,
    allow_private: bool,
) -> Result<reqwest::Client, SetupError> {
    let mut builder = reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout((timeout / 2).min(MAX_CONNECT_TIMEOUT))
        // A proxy would resolve the target itself, past our resolver's check.
        .no_proxy()
        .user_agent(concat!("rapport/", env!("CARGO_PKG_VERSION")));
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnly));
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}").into())
}

/// Parses an endpoint URL: http(s) with a host, and an IP-literal host must pass the
/// same address rule as resolved names (reqwest does not resolve literals). Messages
/// show the URL without userinfo, path or query, which may carry credentials.
pub(crate) fn check_url(url: &str, allow_private: bool) -> Result<url::Url, SetupError> {
    let parsed = url::Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
    let shown = redacted(&parsed);
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{shown}: the scheme must be http or https").into());
    }
    let ip = match parsed.host() {
        None => return Err(format!("{shown}: the URL has no host").into()),
        Some(url::Host::Domain(_)) => None,
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
    };
    if let Some(kind) = ip.filter(|_| !allow_private).and_then(refused_kind) {
        return Err(format!(
            "{shown}: the host is a {kind} address, refused unless allow_private is set"
        )
        .into());
    }
    Ok(parsed)
}

/// `scheme://host[:port]`: enough to tell which endpoint, nothing that may be secret.
pub(crate) fn redacted(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or("");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// The wait a `Retry-After` header asks for, as delta-seconds or an HTTP-date (a date in
/// the past means now), capped at a day. `None` when absent or unreadable.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too long for u64: far beyond the cap anyway.
        Duration::from_secs(value.parse().unwrap_or(u64::MAX))
    } else {
        let at = http_date(value)?;
        (at - now).to_std().unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms recipients
/// must still accept.
fn http_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(dt.with_timezone(&Utc));
    }
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .map(|naive| naive.and_utc())
}

/// Why an address may not be connected to, or `None` for a public one.
pub(crate) fn refused_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let kind = match (a, b, c) {
        (0, ..) => "unspecified (0.0.0.0/8)",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (100, 64..=127, _) => "shared (CGNAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) => "IETF protocol assignment",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "benchmarking",
        (224..=239, ..) => "multicast",
        _ if ip.is_broadcast() => "broadcast",
        (240..=255, ..) => "reserved",
        _ => return None,
    };
    Some(kind)
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return refused_v4(v4);
    }
    let kind = match seg[0] {
        0xfc00..=0xfdff => "unique-local",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0xff00..=0xffff => "multicast",
        0x2001 if seg[1] == 0x0db8 => "documentation",
        0x3fff if seg[1] <= 0x0fff => "documentation",
        0x0100 if seg[1..4] == [0, 0, 0] => "discard-only",
        _ => return None,
    };
    Some(kind)
}

/// The IPv4 address an IPv6 one stands for: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) and 6to4 (`2002:AABB:CCDD::/48`). Each would
/// otherwise be a way around the IPv4 rule.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let tail = || Ipv4Addr::from((u32::from(seg[6]) << 16) | u32::from(seg[7]));
    match seg {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0, 0, 0, 0, 0, 0, _, _] => Some(tail()),
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail()),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))),
        _ => None,
    }
}

/// The resolver behind `client`: resolves with the system resolver and fails the
/// connection when any answer is refused, rather than silently dropping it, so a name
/// pointing at an internal address gives a clear error.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if let Some(kind) = addrs.iter().find_map(|a| refused_kind(a.ip())) {
                return Err(Box::new(RefusedAddress { kind }) as BoxError);
            }
            Ok::<Addrs, BoxError>(Box::new(addrs.into_iter()))
        })
    }
}

/// A host resolved to an address outside the public internet.
#[derive(Debug)]
pub(crate) struct RefusedAddress {
    pub(crate) kind: &'static str,
}

impl fmt::Display for RefusedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the host resolves to a {} address", self.kind)
    }
}

impl StdError for RefusedAddress {}

/// The refused address behind a failed request, if that is why it failed.
pub(crate) fn refused_address(err: &reqwest::Error) -> Option<&RefusedAddress> {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return Some(refused);
        }
        source = e.source();
    }
    None
}

/// A loggable name for a transport failure: the I/O error kind when there is one, never
/// the error's text, which names the URL.
pub(crate) fn failure_kind(err: &reqwest::Error) -> String {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return io.kind().to_string();
        }
        source = e.source();
    }
    let kind = if err.is_connect() {
        "connection failed"
    } else if err.is_body() {
        "body error"
    } else if err.is_decode() {
        "decode error"
    } else {
        "request error"
    };
    kind.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn v4(s: &str) -> Option<&'static str> {
        refused_kind(s.parse().unwrap())
    }

    #[test]
    fn refuses_internal_ipv4() {
        let cases = [
            ("0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("0.1.2.3", "unspecified (0.0.0.0/8)"),
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("100.127.255.254", "shared (CGNAT)"),
            ("169.254.169.254", "link-local"),
            ("192.0.0.8", "IETF protocol assignment"),
            ("192.0.2.1", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.9", "documentation"),
            ("198.18.0.1", "benchmarking"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
        ];
        for (ip, kind) in cases {
            assert_eq!(v4(ip), Some(kind), "{ip}");
        }
    }

    #[test]
    fn allows_public_ipv4_at_range_edges() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.0.1",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.167.0.1",
            "192.169.0.1",
            "198.17.0.1",
            "198.20.0.1",
            "223.255.255.255",
        ] {
            assert_eq!(v4(ip), None, "{ip}");
        }
    }

    #[test]
    fn refuses_internal_ipv6_and_embedded_ipv4() {
        let cases = [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("100::1", "discard-only"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:0.0.0.0", "unspecified (0.0.0.0/8)"),
            ("::192.168.0.1", "private"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::10.0.0.1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("2002:c0a8:101::1", "private"),
        ];
        for (ip, kind) in cases {
            assert_eq!(v4(ip), Some(kind), "{ip}");
        }
    }

    #[test]
    fn allows_public_ipv6_and_mapped_public_ipv4() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::1.1.1.1",
            "2002:0808:0808::1",
            "2001:db9::1",
            "fbff::1",
        ] {
            assert_eq!(v4(ip), None, "{ip}");
        }
    }

    #[test]
    fn check_url_refuses_literals_bad_schemes_and_hides_secrets() {
        let refused = check_url("http://user:hunter2@127.0.0.1:8080/x?token=abc", false)
            .expect_err("loopback literal")
            .to_string();
        assert!(refused.contains("loopback"), "{refused}");
        assert!(refused.contains("http://127.0.0.1:8080"), "{refused}");
        for secret in ["hunter2", "user", "token", "abc", "/x"] {
            assert!(!refused.contains(secret), "{refused} shows {secret}");
        }
        assert!(check_url("http://[::ffff:10.0.0.1]/", false).is_err());
        // The url crate reads a bare number as an IPv4 address, so it is checked too.
        assert!(check_url("http://2130706433/", false).is_err());
        assert!(check_url("http://127.0.0.1:8080/", true).is_ok());
        assert!(check_url("https://hooks.example.com/in", false).is_ok());
        let scheme = check_url("ftp://a:pw@example.com/", false)
            .unwrap_err()
            .to_string();
        assert!(
            scheme.contains("http or https") && !scheme.contains("pw"),
            "{scheme}"
        );
        assert!(check_url("not a url", true).is_err());
        assert!(check_url("mailto:ops@example.com", true).is_err());
    }

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc3339("2015-10-21T07:28:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let secs = Duration::from_secs;
        let cases = [
            ("7", Some(secs(7))),
            (" 120 ", Some(secs(120))),
            ("0", Some(secs(0))),
            ("999999999", Some(MAX_RETRY_AFTER)),
            ("99999999999999999999999", Some(MAX_RETRY_AFTER)),
            ("Wed, 21 Oct 2015 07:28:30 GMT", Some(secs(30))),
            ("Wednesday, 21-Oct-15 07:29:00 GMT", Some(secs(60))),
            ("Wed Oct 21 07:30:00 2015", Some(secs(120))),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(secs(0))),
            ("Fri, 30 Oct 2015 07:28:00 GMT", Some(MAX_RETRY_AFTER)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(retry_after(&headers(value), now), want, "{value:?}");
        }
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }
}
