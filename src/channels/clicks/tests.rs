use super::*;

const KEY: &[u8] = b"a test key, 32 bytes or so long!";
const TOUCH: &str = "birthday:ada:2026";

fn tok(touch: &str, url: &str) -> String {
    token(KEY, touch, url).unwrap()
}

fn click(touch: &str, url: &str) -> Option<Click> {
    Some(Click {
        touch: touch.into(),
        url: url.into(),
    })
}

/// A token over any body, signed with `KEY`: what someone holding the key could make.
fn signed(mut body: Vec<u8>) -> String {
    let tag = mac(KEY, &body).finalize().into_bytes();
    body.extend_from_slice(&tag[..TAG_LEN]);
    URL_SAFE_NO_PAD.encode(body)
}

#[test]
fn a_token_verifies_to_its_touch_and_url() {
    let long = format!("https://shop.example/p?{}#frag", "k=v&".repeat(400));
    let longest_touch = "t".repeat(MAX_TOUCH_LEN);
    let longest_url = format!("https://x/{}", "u".repeat(MAX_URL_LEN - 10));
    let cases = [
        (TOUCH, "https://shop.example/birthday"),
        (TOUCH, "HTTP://SHOP.EXAMPLE"),
        (TOUCH, "https://shop.example/a?b=1&c=%20d#top"),
        (
            "anniversaire:zoë:2026",
            "https://bücher.example/straße?q=ü&r=日本#äbschnitt",
        ),
        ("", "http://x"),
        (TOUCH, long.as_str()),
        (longest_touch.as_str(), longest_url.as_str()),
    ];
    for (touch, url) in cases {
        let t = tok(touch, url);
        assert!(t.len() <= MAX_TOKEN_LEN, "{} chars", t.len());
        // Compact: the bytes of touch and URL plus 19, in base64.
        assert_eq!(
            t.len(),
            ((HEADER_LEN + TAG_LEN + touch.len() + url.len()) * 4).div_ceil(3)
        );
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')),
            "{t} is not one URL path segment"
        );
        assert_eq!(verify(KEY, &t), click(touch, url), "{url}");
    }
}

#[test]
fn a_token_is_stable_and_differs_per_touch_and_url() {
    let url = "https://shop.example/";
    assert_eq!(tok(TOUCH, url), tok(TOUCH, url));
    assert_ne!(tok(TOUCH, url), tok("birthday:bob:2026", url));
    assert_ne!(tok(TOUCH, url), tok(TOUCH, "https://shop.example/x"));
    // The length prefix keeps the boundary: moving bytes between touch and URL shows.
    assert_ne!(seal(KEY, "a", "http://x"), seal(KEY, "", "ahttp://x"));
}

#[test]
fn only_http_urls_get_a_token() {
    let refused = [
        "javascript:alert(1)",
        "JavaScript://x.example/%0aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "mailto:ada@example.com",
        "ftp://x.example/",
        "//x.example/",
        "/relative",
        "#top",
        "https:x.example",
        "https://",
        "https:///x",
        "http://?q",
        " https://x.example",
        "https://x.example/a b",
        "https://x.example/\n",
        "",
    ];
    for url in refused {
        assert_eq!(token(KEY, TOUCH, url), None, "{url:?}");
    }
    let too_long = format!("https://x/{}", "u".repeat(MAX_URL_LEN));
    assert_eq!(token(KEY, TOUCH, &too_long), None);
    assert_eq!(
        token(KEY, &"t".repeat(MAX_TOUCH_LEN + 1), "https://x"),
        None
    );
}

#[test]
fn any_changed_character_is_rejected() {
    let t = tok(TOUCH, "https://shop.example/a?b=1");
    for i in 0..t.len() {
        let mut bytes = t.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(KEY, &flipped), None, "position {i}: {flipped}");
    }
}

#[test]
fn any_changed_bit_is_rejected() {
    let t = tok(TOUCH, "https://shop.example/a?b=1");
    let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
    for i in 0..raw.len() {
        for bit in 0..8 {
            let mut bytes = raw.clone();
            bytes[i] ^= 1 << bit;
            let flipped = URL_SAFE_NO_PAD.encode(bytes);
            assert_eq!(verify(KEY, &flipped), None, "byte {i} bit {bit}");
        }
    }
}

#[test]
fn truncated_and_extended_tokens_are_rejected() {
    let t = tok(TOUCH, "https://shop.example/");
    for n in 0..t.len() {
        assert_eq!(verify(KEY, &t[..n]), None, "first {n} characters");
    }
    for extra in ["A", "AA", "AAAA", "=", "==", ".", "/"] {
        assert_eq!(verify(KEY, &format!("{t}{extra}")), None, "{extra}");
    }
}

#[test]
fn another_key_or_another_tag_is_rejected() {
    let url = "https://shop.example/";
    let t = tok(TOUCH, url);
    assert_eq!(verify(b"another key", &t), None);
    assert_eq!(verify(b"", &t), None);
    // The unsubscribe token of the same key is no click token.
    let ada_id = crate::domain::ContactId::parse("ada").unwrap();
    let unsubscribe = crate::channels::unsubscribe::token(KEY, &ada_id);
    assert_eq!(verify(KEY, &unsubscribe), None);
    let ada = URL_SAFE_NO_PAD.decode(&t).unwrap();
    let bob = URL_SAFE_NO_PAD
        .decode(tok("birthday:bob:2026", url))
        .unwrap();
    let mut spliced = ada[..ada.len() - TAG_LEN].to_vec();
    spliced.extend_from_slice(&bob[bob.len() - TAG_LEN..]);
    assert_eq!(verify(KEY, &URL_SAFE_NO_PAD.encode(spliced)), None);
}

#[test]
fn garbage_is_rejected() {
    let t = tok(TOUCH, "https://shop.example/");
    let cases = [
        String::new(),
        "A".into(),
        "!!!!".into(),
        " ".into(),
        format!(" {t}"),
        format!("{}=", &t[..t.len() - 1]),
        t.replace('-', "+").replace('_', "/") + "+/",
        URL_SAFE_NO_PAD.encode([0u8; TAG_LEN]),
        URL_SAFE_NO_PAD.encode([VERSION; TAG_LEN + 3]),
        "x".repeat(MAX_TOKEN_LEN + 1),
        "x".repeat(100_000),
    ];
    for case in cases {
        assert_eq!(verify(KEY, &case), None, "{case:?}");
    }
}

/// Someone with the key still cannot make us redirect anywhere but http(s), nor get a
/// malformed body through.
#[test]
fn signed_but_unacceptable_bodies_are_rejected() {
    let body = |version: u8, touch_len: u16, rest: &[u8]| {
        let mut body = vec![version];
        body.extend_from_slice(&touch_len.to_be_bytes());
        body.extend_from_slice(rest);
        body
    };
    // The helper itself makes valid tokens.
    assert_eq!(
        verify(KEY, &signed(body(VERSION, 1, b"ahttp://x"))),
        click("a", "http://x")
    );
    let cases = [
        seal(KEY, TOUCH, "javascript:alert(1)"),
        seal(KEY, TOUCH, "data:text/html,<script>alert(1)</script>"),
        seal(KEY, TOUCH, "https://x.example/\r\nSet-Cookie: a=b"),
        seal(KEY, TOUCH, ""),
        signed(body(2, 1, b"ahttp://x")),
        signed(body(0, 1, b"ahttp://x")),
        signed(body(VERSION, 10, b"ahttp://x")),
        signed(body(VERSION, 1, b"\xffhttp://x")),
        signed(body(VERSION, 1, b"ahttp://\xff")),
        signed(vec![VERSION, 0]),
        signed(vec![VERSION]),
        signed(Vec::new()),
    ];
    for case in cases {
        assert_eq!(verify(KEY, &case), None, "{case}");
    }
}

#[test]
fn trackable_is_http_and_not_unsubscribe() {
    let unsubscribe = Some("https://u.rapport.example/u/");
    let cases = [
        ("https://shop.example/", None, true),
        ("http://shop.example", None, true),
        ("HTTPS://shop.example/a?b#c", unsubscribe, true),
        (
            "https://u.rapport.example/unsubscribe-faq",
            unsubscribe,
            true,
        ),
        ("https://u.rapport.example/u/YWRh.c2ln", None, true),
        ("https://u.rapport.example/u/YWRh.c2ln", unsubscribe, false),
        ("HTTPS://U.Rapport.Example/u/YWRh.c2ln", unsubscribe, false),
        ("mailto:ada@example.com", None, false),
        ("tel:+441234567", None, false),
        ("/account", None, false),
        ("#top", None, false),
        ("javascript:alert(1)", None, false),
        ("https://", None, false),
    ];
    for (url, skip, expected) in cases {
        assert_eq!(trackable(url, skip), expected, "{url} skipping {skip:?}");
    }
}

mod rewrite;
