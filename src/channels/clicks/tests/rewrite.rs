//! The rewrites over whole bodies, as a template renders them.

use super::*;

const UNSUBSCRIBE: &str = "https://u.rapport.example/u/";
const CLICK: &str = "https://r.rapport.example/c/";

const HTML: &str = r##"<!DOCTYPE html>
<html><head><title>Happy birthday, Ada</title>
<style>a[href^="tel"] { color: inherit; }</style></head>
<body>
<p>Dear Ada, <a href="https://shop.example/birthday?utm_source=email&amp;utm_medium=birthday">your gift</a> is waiting.</p>
<p><A HREF='https://shop.example/a?b=1&amp;c=2#top' class="btn">Shop</A>
<a class="plain" href = "http://blog.example/post/42">the blog</a>,
<a href="mailto:help@shop.example">write</a> or <a href="tel:+441234567">call</a>.</p>
<p><a href="#top">Back to top</a> <a href="/account">Account</a>
<a href="https://shop.example/birthday?utm_source=email&amp;utm_medium=birthday">again</a></p>
<p>Or paste https://shop.example/plain or <code>&lt;a href="https://shop.example/code"&gt;</code>.</p>
<p><img src="https://cdn.example/logo.png" alt="logo"></p>
<!-- <a href="https://shop.example/old">old offer</a> -->
<p><a href="https://u.rapport.example/u/YWRh.c2ln">Unsubscribe</a></p>
</body></html>
"##;

/// The links in `HTML` we track, as the browser would follow them.
const TRACKED: [&str; 3] = [
    "https://shop.example/birthday?utm_source=email&utm_medium=birthday",
    "https://shop.example/a?b=1&c=2#top",
    "http://blog.example/post/42",
];

#[test]
fn an_email_gets_every_web_link_replaced_and_nothing_else() {
    let mut seen = Vec::new();
    let out = rewrite_html(HTML, Some(UNSUBSCRIBE), |url| {
        seen.push(url.to_owned());
        Some(format!("{CLICK}{}", seen.len()))
    });
    assert_eq!(seen, [TRACKED[0], TRACKED[1], TRACKED[2], TRACKED[0]]);
    let expected = r##"<!DOCTYPE html>
<html><head><title>Happy birthday, Ada</title>
<style>a[href^="tel"] { color: inherit; }</style></head>
<body>
<p>Dear Ada, <a href="https://r.rapport.example/c/1">your gift</a> is waiting.</p>
<p><A HREF='https://r.rapport.example/c/2' class="btn">Shop</A>
<a class="plain" href = "https://r.rapport.example/c/3">the blog</a>,
<a href="mailto:help@shop.example">write</a> or <a href="tel:+441234567">call</a>.</p>
<p><a href="#top">Back to top</a> <a href="/account">Account</a>
<a href="https://r.rapport.example/c/4">again</a></p>
<p>Or paste https://shop.example/plain or <code>&lt;a href="https://shop.example/code"&gt;</code>.</p>
<p><img src="https://cdn.example/logo.png" alt="logo"></p>
<!-- <a href="https://shop.example/old">old offer</a> -->
<p><a href="https://u.rapport.example/u/YWRh.c2ln">Unsubscribe</a></p>
</body></html>
"##;
    assert_eq!(out, expected);
}

#[test]
fn tracked_html_links_resolve_to_their_originals_and_no_original_remains() {
    let out = rewrite_html(HTML, Some(UNSUBSCRIBE), |url| {
        token(KEY, TOUCH, url).map(|t| format!("{CLICK}{t}"))
    });
    let clicks: Vec<_> = out
        .split(CLICK)
        .skip(1)
        .map(|rest| {
            let end = rest.find(['"', '\'']).unwrap();
            verify(KEY, &rest[..end]).unwrap()
        })
        .collect();
    let urls: Vec<_> = clicks.iter().map(|c| c.url.as_str()).collect();
    assert_eq!(urls, [TRACKED[0], TRACKED[1], TRACKED[2], TRACKED[0]]);
    assert!(clicks.iter().all(|c| c.touch == TOUCH));
    for url in TRACKED {
        let escaped = url.replace('&', "&amp;");
        assert!(
            !out.contains(url) && !out.contains(&escaped),
            "{url} left in"
        );
    }
    assert!(out.contains("https://u.rapport.example/u/YWRh.c2ln"));
}

#[test]
fn replacements_are_escaped_for_their_quotes() {
    let html = r#"<a href="https://a.example/">a</a><a href='https://b.example/'>b</a><a href=https://c.example/>c</a>"#;
    let out = rewrite_html(html, None, |_| {
        Some("https://t.example/?a=1&b=\"'<>".into())
    });
    let value = "https://t.example/?a=1&amp;b=&quot;&#39;&lt;&gt;";
    let expected =
        format!(r#"<a href="{value}">a</a><a href='{value}'>b</a><a href="{value}">c</a>"#);
    assert_eq!(out, expected);
}

#[test]
fn declined_and_odd_links_are_left_byte_for_byte() {
    let html = concat!(
        r#"<a href="https://a.example/">a</a>"#,
        r#"<a href=" https://b.example/ ">b</a>"#,
        r#"<a href="javascript:alert('https://c.example/')">c</a>"#,
        r#"<a href="https&#58;//d.example/">d</a>"#,
        r#"<a href="https://u.rapport.example/u/x">u</a>"#,
        r#"<a href="https://e.example/"#,
    );
    assert_eq!(rewrite_html(html, Some(UNSUBSCRIBE), |_| None), html);
    let mut seen = Vec::new();
    rewrite_html(html, Some(UNSUBSCRIBE), |url| {
        seen.push(url.to_owned());
        None
    });
    assert_eq!(
        seen,
        [
            "https://a.example/",
            "https://b.example/",
            "https://d.example/"
        ]
    );
}

#[test]
fn text_urls_are_replaced_and_the_sentence_around_them_kept() {
    let text = "Dear Ada,\r\n\r\nyour gift: https://shop.example/birthday?utm_source=email&utm_medium=birthday.\r\n\
        Browse (https://shop.example/a?b=1#top), or read \"http://blog.example/post/42\"!\r\n\
        Rust: https://en.wikipedia.org/wiki/Rust_(programming_language); <https://shop.example/x>?\r\n\
        Also https://shop.example/q?, https://shop.example/e!\r\n\
        Not: mailto:help@shop.example, /account, www.shop.example, ftp://shop.example, xhttps://no\r\n\
        Unsubscribe: https://u.rapport.example/u/YWRh.c2ln\r\n";
    let out = rewrite_text(text, Some(UNSUBSCRIBE), |url| Some(format!("[{url}]")));
    let expected = "Dear Ada,\r\n\r\nyour gift: [https://shop.example/birthday?utm_source=email&utm_medium=birthday].\r\n\
        Browse ([https://shop.example/a?b=1#top]), or read \"[http://blog.example/post/42]\"!\r\n\
        Rust: [https://en.wikipedia.org/wiki/Rust_(programming_language)]; <[https://shop.example/x]>?\r\n\
        Also [https://shop.example/q]?, [https://shop.example/e]!\r\n\
        Not: mailto:help@shop.example, /account, www.shop.example, ftp://shop.example, xhttps://no\r\n\
        Unsubscribe: https://u.rapport.example/u/YWRh.c2ln\r\n";
    assert_eq!(out, expected);
}

#[test]
fn tracked_text_links_resolve_to_their_originals() {
    let urls = [
        "https://shop.example/birthday?utm_source=email&utm_medium=birthday",
        "https://bücher.example/straße?q=ü#äbschnitt",
    ];
    let text = format!("Gift: {}.\nBooks ({})\n", urls[0], urls[1]);
    let out = rewrite_text(&text, None, |url| {
        token(KEY, TOUCH, url).map(|t| format!("{CLICK}{t}"))
    });
    let resolved: Vec<_> = out
        .split(CLICK)
        .skip(1)
        .map(|rest| {
            let end = rest.find(['.', ')']).unwrap();
            verify(KEY, &rest[..end]).unwrap().url
        })
        .collect();
    assert_eq!(resolved, urls);
    assert!(urls.iter().all(|url| !out.contains(url)));
    assert!(out.starts_with("Gift: ") && out.ends_with(")\n"));
}

#[test]
fn bodies_without_links_are_unchanged() {
    for body in ["", "plain text", "<p>no links</p>", "http://", "https:// x"] {
        let fail = |url: &str| -> Option<String> { panic!("asked for {url}") };
        assert_eq!(rewrite_html(body, None, fail), body);
        assert_eq!(rewrite_text(body, None, fail), body);
    }
}
