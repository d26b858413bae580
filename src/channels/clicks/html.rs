//! The links of an HTML body: a small scanner that knows tags, attributes, comments and
//! raw-text elements well enough to find every `href` of an `<a>` or `<area>`, and
//! nothing else. Not a full HTML parser: email HTML is written by our own templates, and
//! the failure mode of a confused scan is a link left untracked, never a changed text.
//! Comments are skipped whole, Outlook's conditional ones (`<!--[if mso]>`) included, so
//! a link only Outlook shows stays untracked.

use std::{borrow::Cow, ops::Range};

use super::trackable;

/// Every `href` on an `<a>` or `<area>` tag whose value is an absolute http(s) URL
/// (after decoding its character references) and not under `skip_prefix` (see
/// [`trackable`](super::trackable)) is replaced by what `link` returns for the decoded
/// URL, HTML-escaped, in the same quotes (an unquoted value gets double quotes). When
/// `link` returns `None` the value stays as it is. Every byte outside those values is
/// kept: text, comments, other tags and attributes, `mailto:`, relative links, anchors.
pub fn rewrite_html(
    html: &str,
    skip_prefix: Option<&str>,
    mut link: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    let mut copied = 0;
    for href in hrefs(html) {
        let decoded = decode_references(&html[href.value.clone()]);
        // Browsers strip this whitespace before they resolve the URL.
        let url = decoded.trim_matches(|c: char| c.is_ascii_whitespace());
        if !trackable(url, skip_prefix) {
            continue;
        }
        let Some(replacement) = link(url) else {
            continue;
        };
        out.push_str(&html[copied..href.value.start]);
        let quote = if href.quoted { "" } else { "\"" };
        out.push_str(quote);
        push_escaped(&mut out, &replacement);
        out.push_str(quote);
        copied = href.value.end;
    }
    out.push_str(&html[copied..]);
    out
}

/// Where one `href` value sits in the source, quotes excluded.
#[derive(Debug, PartialEq, Eq)]
struct Href {
    value: Range<usize>,
    quoted: bool,
}

/// Elements whose content is text up to their end tag, never markup.
const RAW_TEXT: [&str; 4] = ["script", "style", "textarea", "title"];

/// The `href` values of `<a>` and `<area>` start tags, in order.
fn hrefs(html: &str) -> Vec<Href> {
    let b = html.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while let Some(lt) = find(b, i, b"<") {
        i = lt + 1;
        let rest = &b[i..];
        if rest.starts_with(b"!--") {
            i = find(b, i + 3, b"-->").map_or(b.len(), |end| end + 3);
            continue;
        }
        if rest.starts_with(b"!") || rest.starts_with(b"?") {
            // A doctype, CDATA or processing instruction: no attributes to look at.
            i = find(b, i, b">").map_or(b.len(), |end| end + 1);
            continue;
        }
        let closing = rest.starts_with(b"/");
        let name_start = i + usize::from(closing);
        if !b.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            continue; // a `<` in text
        }
        let name_end = scan(b, name_start, |c| !ends_name(c));
        let name = &html[name_start..name_end];
        let is_link = !closing && ["a", "area"].iter().any(|n| name.eq_ignore_ascii_case(n));
        i = attributes(b, name_end, |attr, href| {
            if is_link && attr.eq_ignore_ascii_case(b"href") {
                found.push(href);
            }
        });
        if !closing && RAW_TEXT.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            i = find_end_tag(b, i, name);
        }
    }
    found
}

/// Reads the attributes from `i` (just after the tag name) to the end of the tag,
/// handing each one with a value to `each`; returns the index after the closing `>`.
fn attributes(b: &[u8], mut i: usize, mut each: impl FnMut(&[u8], Href)) -> usize {
    loop {
        i = scan(b, i, |c| c.is_ascii_whitespace() || c == b'/');
        match b.get(i) {
            None => return b.len(),
            Some(b'>') => return i + 1,
            Some(_) => {}
        }
        // The first character belongs to the name even if it is `=` (as in HTML).
        let name_end = scan(b, i + 1, |c| !ends_name(c) && c != b'=');
        let name = &b[i..name_end];
        i = scan(b, name_end, |c| c.is_ascii_whitespace());
        if b.get(i) != Some(&b'=') {
            continue;
        }
        i = scan(b, i + 1, |c| c.is_ascii_whitespace());
        match b.get(i) {
            Some(&quote @ (b'"' | b'\'')) => {
                let Some(end) = find(b, i + 1, &[quote]) else {
                    return b.len(); // unterminated: the tag never ends
                };
                each(
                    name,
                    Href {
                        value: i + 1..end,
                        quoted: true,
                    },
                );
                i = end + 1;
            }
            _ => {
                let end = scan(b, i, |c| !c.is_ascii_whitespace() && c != b'>');
                each(
                    name,
                    Href {
                        value: i..end,
                        quoted: false,
                    },
                );
                i = end;
            }
        }
    }
}

fn ends_name(c: u8) -> bool {
    c.is_ascii_whitespace() || c == b'/' || c == b'>'
}

/// The first index from `i` whose byte does not satisfy `more` (or the end).
fn scan(b: &[u8], i: usize, more: impl Fn(u8) -> bool) -> usize {
    b[i.min(b.len())..]
        .iter()
        .position(|&c| !more(c))
        .map_or(b.len(), |n| i + n)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    b.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|n| from + n)
}

/// The index of `</name` (any case) from `from`, or the end: raw text runs until there.
fn find_end_tag(b: &[u8], from: usize, name: &str) -> usize {
    let needle_len = 2 + name.len();
    (from..b.len())
        .find(|&i| {
            b.get(i..i + needle_len).is_some_and(|w| {
                w.starts_with(b"</") && w[2..].eq_ignore_ascii_case(name.as_bytes())
            })
        })
        .unwrap_or(b.len())
}

/// Decodes the character references a URL in an attribute plausibly holds: `&amp;`,
/// `&quot;`, `&apos;`, `&lt;`, `&gt;` and numeric ones (`&#39;`, `&#x26;`). Anything
/// else, a bare `&` included, stays as written, which is also how browsers read a
/// query string like `?a=1&b=2`.
fn decode_references(s: &str) -> Cow<'_, str> {
    if !s.contains('&') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let (text, len) = reference(rest).unwrap_or(('&', 1));
        out.push(text);
        rest = &rest[len..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// The character the reference at the start of `s` (at its `&`) stands for, and the
/// reference's length.
fn reference(s: &str) -> Option<(char, usize)> {
    let semi = s.bytes().take(10).position(|b| b == b';')?;
    let name = &s[1..semi];
    let c = match name {
        "amp" => '&',
        "quot" => '"',
        "apos" => '\'',
        "lt" => '<',
        "gt" => '>',
        _ => {
            let number = name.strip_prefix('#')?;
            let (digits, radix) = match number.strip_prefix(['x', 'X']) {
                Some(hex) => (hex, 16),
                None => (number, 10),
            };
            if digits.is_empty() || !digits.chars().all(|d| d.is_digit(radix)) {
                return None;
            }
            char::from_u32(u32::from_str_radix(digits, radix).ok()?)?
        }
    };
    Some((c, semi + 1))
}

/// Escapes what could end the attribute value or be read as a reference.
fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(html: &str) -> Vec<&str> {
        hrefs(html).into_iter().map(|h| &html[h.value]).collect()
    }

    #[test]
    fn finds_hrefs_on_links_only() {
        let html = r#"<A HREF = 'x1'><area href=x2 alt=y><abbr href="n1"><link href="n2">
            <a data-href="n3" title='<a href="n4">' href="x3"></a href="n5">
            <!-- <a href="n6"> --><script>"<a href='n7'>"</script><a/href="x4">
            <title><a href="n8"></TITLE><a href="x5" href='x6'><a href="x7"#;
        assert_eq!(values(html), ["x1", "x2", "x3", "x4", "x5", "x6"]);
    }

    #[test]
    fn text_lookalikes_are_not_tags() {
        let html = "a < b, 1<2 <a href=\"x1\">&lt;a href=\"n1\"&gt;</a> <? href=\"n2\" >";
        assert_eq!(values(html), ["x1"]);
    }

    #[test]
    fn references_are_decoded() {
        let cases = [
            ("?a=1&amp;b=2", "?a=1&b=2"),
            ("&quot;&apos;&#39;&#x27;&#X27;&lt;&gt;", "\"''''<>"),
            ("&#233;t&#xE9;", "été"),
            ("?a=1&b=2&copy=3&amp", "?a=1&b=2&copy=3&amp"),
            (
                "&#;&#x;&#12a;&#xZZ;&#1114112;&amp;amp;",
                "&#;&#x;&#12a;&#xZZ;&#1114112;&amp;",
            ),
        ];
        for (raw, decoded) in cases {
            assert_eq!(decode_references(raw), decoded, "{raw}");
        }
    }

    #[test]
    fn escaping_undoes_decoding() {
        let url = "https://x.example/?a=1&b=\"2\"&c='3'<>";
        let mut escaped = String::new();
        push_escaped(&mut escaped, url);
        assert!(!escaped.contains(['"', '\'', '<', '>']));
        assert_eq!(decode_references(&escaped), url);
    }
}
