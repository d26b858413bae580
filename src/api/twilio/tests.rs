use super::*;

// RELIABILITY.md 3.1; the other expected signatures below were computed apart from this
// code, with Python's hmac over the string Twilio's validator builds.
const TOKEN: &str = "12345";
const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
        .collect()
}

/// The reference parameters, deliberately out of order.
fn params() -> Vec<(String, String)> {
    pairs(&[
        ("To", "+18005551212"),
        ("CallSid", "CA1234567890ABCDE"),
        ("From", "+12349013030"),
        ("Digits", "1234"),
        ("Caller", "+12349013030"),
    ])
}

#[test]
fn signs_the_reference_vector() {
    assert_eq!(signature(TOKEN, URL, &params()), SIGNATURE);
    assert!(verify(TOKEN, URL, &params(), SIGNATURE));
    let mut reversed = params();
    reversed.reverse();
    assert_eq!(signature(TOKEN, URL, &reversed), SIGNATURE);
}

#[test]
fn any_change_to_the_parameters_fails() {
    let changed = |name: &str, value: &str| {
        params()
            .into_iter()
            .map(|(n, v)| {
                if n == name {
                    (n, value.to_owned())
                } else {
                    (n, v)
                }
            })
            .collect::<Vec<_>>()
    };
    let mut extra = params();
    extra.push(("Body".into(), "".into()));
    let mut missing = params();
    missing.retain(|(n, _)| n != "Digits");
    let mut renamed = params();
    renamed[3].0 = "digits".into();
    for (case, p) in [
        ("one digit", changed("Digits", "1235")),
        ("a sender", changed("From", "+12349013031")),
        ("an empty field added", extra),
        ("a field dropped", missing),
        ("a name's case", renamed),
        ("none at all", Vec::new()),
    ] {
        assert!(!verify(TOKEN, URL, &p, SIGNATURE), "{case}");
    }
}

#[test]
fn any_other_url_or_token_fails() {
    for url in [
        "http://mycompany.com/myapp.php?foo=1&bar=2",
        "https://mycompany.com/myapp.php?bar=2&foo=1",
        "https://mycompany.com/myapp.php?foo=1&bar=2&",
        "https://mycompany.com/myapp.php",
        "https://mycompany.com/myapp.php/?foo=1&bar=2",
        "https://MyCompany.com/myapp.php?foo=1&bar=2",
        "https://evil.example/myapp.php?foo=1&bar=2",
        "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
    ] {
        assert!(!verify(TOKEN, url, &params(), SIGNATURE), "{url}");
    }
    for token in ["12346", "1234", "123456", " 12345", ""] {
        assert!(!verify(token, URL, &params(), SIGNATURE), "{token:?}");
    }
}

#[test]
fn an_empty_token_verifies_nothing() {
    let forged = signature("", URL, &params());
    assert!(!verify("", URL, &params(), &forged));
}

#[test]
fn missing_or_malformed_headers_fail() {
    let wrong_length = STANDARD.encode([0u8; 19]);
    let mut flipped = SIGNATURE.to_owned();
    flipped.replace_range(0..1, "1");
    for header in [
        "",
        " ",
        "garbage",
        "not base64 at all!",
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ",   // padding dropped
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ= ", // trailing space
        " 0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
        "0/kctr6dlpkmkaf8muzzqo1ndgq=",
        "0_KCTR6DLpKmkAf8muzZqo1nDgQ=", // URL-safe alphabet
        "sha1=0/KCTR6DLpKmkAf8muzZqo1nDgQ=",
        wrong_length.as_str(),
        flipped.as_str(),
    ] {
        assert!(!verify(TOKEN, URL, &params(), header), "{header:?}");
    }
}

#[test]
fn default_ports_are_tried_both_ways() {
    let with_443 = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    let sig_443 = "EpDEmp1PyjDYp77YxYU3GILBWzE=";
    assert_eq!(signature(TOKEN, with_443, &params()), sig_443);
    // Twilio signed with the port, we rebuilt the URL without it; and the reverse.
    assert!(verify(TOKEN, URL, &params(), sig_443));
    assert!(verify(TOKEN, with_443, &params(), SIGNATURE));
    assert!(verify(TOKEN, with_443, &params(), sig_443));

    let http = "http://mycompany.com/myapp.php?foo=1&bar=2";
    let http_80 = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
    let (sig_http, sig_http_80) = (
        "FYMaGAU6nPbB9h2pncMl4aJ4vns=",
        "boT12oXXJ0BuzO2U/6iCqFdh2Do=",
    );
    assert!(verify(TOKEN, http, &params(), sig_http_80));
    assert!(verify(TOKEN, http_80, &params(), sig_http));
    // A port is only ever the scheme's own default.
    assert!(!verify(TOKEN, http, &params(), sig_443));
    assert!(!verify(TOKEN, URL, &params(), sig_http_80));
}

#[test]
fn other_ports_are_kept() {
    let url = "https://mycompany.com:8443/myapp.php?foo=1&bar=2";
    let sig = "SffuNP6bC3hHFCUbsco6GyaPyas=";
    assert!(verify(TOKEN, url, &params(), sig));
    assert!(!verify(TOKEN, URL, &params(), sig));
    // Twilio's own validator would also try the URL without :8443; this one does not.
    assert!(!verify(TOKEN, url, &params(), SIGNATURE));
}

#[test]
fn port_variants_find_the_authority() {
    for (url, variant) in [
        ("https://h/p", Some("https://h:443/p")),
        ("https://h", Some("https://h:443")),
        ("https://h?q=1", Some("https://h:443?q=1")),
        ("https://h#f", Some("https://h:443#f")),
        ("HTTPS://h/p", Some("HTTPS://h:443/p")),
        ("http://h/p", Some("http://h:80/p")),
        ("https://h:443/p", Some("https://h/p")),
        (
            "http://h:80/p?u=http://x:80/",
            Some("http://h/p?u=http://x:80/"),
        ),
        (
            "https://h/p?u=https://x:443/",
            Some("https://h:443/p?u=https://x:443/"),
        ),
        ("https://u:pw@h/p", Some("https://u:pw@h:443/p")),
        ("https://u:443@h:443/p", Some("https://u:443@h/p")),
        ("https://[::1]/p", Some("https://[::1]:443/p")),
        ("https://[::1]:443/p", Some("https://[::1]/p")),
        ("https://h:8443/p", None),
        ("https://h:80/p", None),
        ("http://h:443/p", None),
        ("https://[::443]/p", Some("https://[::443]:443/p")),
        ("ftp://h/p", None),
        ("/relative/path", None),
    ] {
        assert_eq!(toggle_default_port(url).as_deref(), variant, "{url}");
        let expected = 1 + usize::from(variant.is_some());
        assert_eq!(url_variants(url).len(), expected, "{url}");
        assert_eq!(url_variants(url)[0], url);
    }
}

#[test]
fn repeated_names_sign_every_value_in_order() {
    let url = "https://example.com/twilio/inbound";
    let p = pairs(&[
        ("aLower", "1"),
        ("MediaUrl0", "https://a/2"),
        ("NumMedia", "2"),
        ("MediaUrl0", "https://a/1"),
        ("Body", "héllo 👋"),
    ]);
    // url + Body… + MediaUrl0 https://a/1 + MediaUrl0 https://a/2 + NumMedia… + aLower…:
    // upper case sorts before lower case, as in Python.
    let sig = "x+EroFPIWxFYlEy+/cCoxT4YFQU=";
    assert_eq!(signature(TOKEN, url, &p), sig);
    let mut swapped = p.clone();
    swapped.swap(1, 3);
    assert!(verify(TOKEN, url, &swapped, sig));
    // A repeated value is signed twice, never deduplicated.
    let mut one_value = p.clone();
    one_value.remove(1);
    assert_eq!(
        signature(TOKEN, url, &one_value),
        "aGR7AeIorX4TRdInz6TuSkl80OM="
    );
    assert!(!verify(TOKEN, url, &one_value, sig));
}

#[test]
fn keywords_are_the_whole_body() {
    use Keyword::*;
    for (body, expected) in [
        ("STOP", Some(OptOut)),
        ("stop", Some(OptOut)),
        ("  Stop \n", Some(OptOut)),
        ("StopAll", Some(OptOut)),
        ("unsubscribe", Some(OptOut)),
        ("cancel", Some(OptOut)),
        ("END", Some(OptOut)),
        ("quit", Some(OptOut)),
        ("Revoke", Some(OptOut)),
        ("optout", Some(OptOut)),
        ("START", Some(OptIn)),
        ("unstop", Some(OptIn)),
        ("Yes", Some(OptIn)),
        (" yes ", Some(OptIn)),
        ("HELP", Some(Help)),
        ("info", Some(Help)),
        // Replies, not keywords.
        ("Please stop messaging me", None),
        ("STOP PLEASE", None),
        ("stop it", None),
        ("STOPP", None),
        ("opt out", None),
        ("OPT-OUT", None),
        ("ARRET", None),
        ("yes please", None),
        ("", None),
        ("   ", None),
        ("!!!", None),
        ("¡STOP", None),
    ] {
        assert_eq!(keyword(body, None), expected, "{body:?}");
    }
}

#[test]
fn trailing_punctuation_counts_for_opt_out_and_help_only() {
    use Keyword::*;
    for (body, expected) in [
        ("STOP.", Some(OptOut)),
        ("Stop!", Some(OptOut)),
        ("stop!!! ", Some(OptOut)),
        ("Unsubscribe. ", Some(OptOut)),
        ("Stop !", Some(OptOut)),
        ("help?", Some(Help)),
        ("Info.", Some(Help)),
        ("Yes!", None),
        ("START.", None),
        ("Unstop!", None),
        (".STOP", None),
    ] {
        assert_eq!(keyword(body, None), expected, "{body:?}");
    }
}

#[test]
fn twilios_opt_out_type_wins() {
    use Keyword::*;
    // A custom Advanced Opt-Out keyword Twilio acted on.
    assert_eq!(keyword("ARRET", Some("STOP")), Some(OptOut));
    assert_eq!(
        keyword("Please stop messaging me", Some("STOP")),
        Some(OptOut)
    );
    assert_eq!(keyword("STOP", Some("START")), Some(OptIn));
    assert_eq!(keyword("stop", Some("help")), Some(Help));
    assert_eq!(keyword("hello", Some(" HELP ")), Some(Help));
    // Empty or unknown: the body decides.
    assert_eq!(keyword("STOP", Some("")), Some(OptOut));
    assert_eq!(keyword("hello", Some("")), None);
    assert_eq!(keyword("yes", Some("SOMETHING_NEW")), Some(OptIn));
}

#[test]
fn twiml_replies_are_escaped() {
    let empty = r#"<?xml version="1.0" encoding="UTF-8"?><Response/>"#;
    assert_eq!(twiml_message(None), empty);
    assert_eq!(twiml_message(Some("")), empty);
    assert_eq!(twiml_message(Some(" \n")), empty);
    assert_eq!(
        twiml_message(Some("Thanks!")),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks!</Message></Response>"#
    );
    assert_eq!(
        twiml_message(Some(r#"Tom & Jerry <3 "quotes" it's ok"#)),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>Tom &amp; Jerry &lt;3 &quot;quotes&quot; it&apos;s ok</Message></Response>"#
    );
    assert_eq!(
        twiml_message(Some("</Message><Redirect>https://evil</Redirect>")),
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Message>&lt;/Message&gt;&lt;Redirect&gt;https://evil&lt;/Redirect&gt;</Message></Response>"#
    );
    // Escaping is not done twice.
    assert_eq!(xml_escape("&amp;"), "&amp;amp;");
}

#[test]
fn xml_keeps_text_and_drops_what_xml_cannot_carry() {
    assert_eq!(xml_escape("a\tb\nc\r\nd 👋 é"), "a\tb\nc\r\nd 👋 é");
    assert_eq!(
        xml_escape("a\u{0}b\u{1}c\u{b}d\u{1f}e\u{fffe}f\u{ffff}"),
        "abcdef"
    );
}

#[test]
fn statuses_map_to_what_the_daemon_learns() {
    use StatusOutcome::*;
    for status in [
        "queued",
        "accepted",
        "scheduled",
        "sending",
        "sent",
        "receiving",
        "",
    ] {
        assert_eq!(status_callback(status, None), InFlight, "{status}");
        // An error code means nothing on a status that is not a failure.
        assert_eq!(status_callback(status, Some("30003")), InFlight, "{status}");
    }
    for status in ["delivered", "read", "Delivered", " delivered "] {
        assert_eq!(status_callback(status, None), Delivered, "{status}");
        assert_eq!(
            status_callback(status, Some("30008")),
            Delivered,
            "{status}"
        );
    }
    let ours = Failed {
        kind: FailureKind::Ours,
    };
    assert_eq!(status_callback("canceled", None), ours);
    assert_eq!(
        DeliveryStatus::parse("UNDELIVERED"),
        Some(DeliveryStatus::Undelivered)
    );
    assert_eq!(DeliveryStatus::parse("cancelled"), None);
}

#[test]
fn failures_are_classified_by_error_code() {
    use FailureKind::*;
    for (code, kind) in [
        (Some("21610"), OptedOut),
        (Some("21211"), HardBounce),
        (Some("21612"), HardBounce),
        (Some("21614"), HardBounce),
        (Some("21635"), HardBounce),
        (Some("30005"), HardBounce),
        (Some("30006"), HardBounce),
        (Some("30003"), SoftBounce),
        (Some("30004"), SoftBounce),
        (Some("30008"), SoftBounce),
        (Some("21408"), Ours),
        (Some("21606"), Ours),
        (Some("21608"), Ours),
        (Some("30001"), Ours),
        (Some("30002"), Ours),
        (Some("30007"), Ours),
        (Some("30034"), Ours),
        (Some(" 30005 "), HardBounce),
        // Unknown, absent or unreadable: soft.
        (Some("39999"), SoftBounce),
        (Some("0"), SoftBounce),
        (Some(""), SoftBounce),
        (Some("abc"), SoftBounce),
        (Some("-21610"), SoftBounce),
        (None, SoftBounce),
    ] {
        for status in ["undelivered", "failed"] {
            assert_eq!(
                status_callback(status, code),
                StatusOutcome::Failed { kind },
                "{status} {code:?}"
            );
        }
    }
}
