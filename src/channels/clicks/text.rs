//! The links of a plain-text body: bare http(s) URLs, found the way mail clients
//! linkify them, so the URL we replace is the one a reader would have clicked.

use super::{starts_with_ignore_case, trackable};

/// Every bare http(s) URL in `text` that is [`trackable`](super::trackable) (not under
/// `skip_prefix`) is replaced by what `link` returns for it; when `link` returns `None`
/// it stays. Everything else is kept byte for byte.
///
/// A URL starts at `http://` or `https://` (any case) not preceded by a letter or digit,
/// and ends before whitespace, a control character, `<`, `>`, `"`, or a `)` that closes
/// no `(` opened inside the URL (so `(see https://x.example/a)` and
/// `https://en.wikipedia.org/wiki/Rust_(programming_language)` both come out right).
/// Trailing `.,;:!?` are punctuation of the sentence, not part of the URL.
pub fn rewrite_text(
    text: &str,
    skip_prefix: Option<&str>,
    mut link: impl FnMut(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 4);
    let mut copied = 0;
    let mut from = 0;
    while let Some(start) = next_url(text, from) {
        let end = start + url_len(&text[start..]);
        from = end.max(start + 1);
        let url = &text[start..end];
        if !trackable(url, skip_prefix) {
            continue;
        }
        let Some(replacement) = link(url) else {
            continue;
        };
        out.push_str(&text[copied..start]);
        out.push_str(&replacement);
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Where the next URL starts, from byte `from` on.
fn next_url(text: &str, from: usize) -> Option<usize> {
    let b = text.as_bytes();
    (from..b.len()).find(|&i| {
        // An ASCII `h` is always a character boundary, so `text[i..]` is safe below.
        matches!(b[i], b'h' | b'H')
            && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            && ["http://", "https://"]
                .iter()
                .any(|scheme| starts_with_ignore_case(&text[i..], scheme))
    })
}

/// The length of the URL at the start of `s`.
fn url_len(s: &str) -> usize {
    let mut open = 0usize;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        let ends = match c {
            '(' => {
                open += 1;
                false
            }
            ')' if open > 0 => {
                open -= 1;
                false
            }
            ')' | '<' | '>' | '"' => true,
            c => c.is_whitespace() || c.is_control(),
        };
        if ends {
            end = i;
            break;
        }
    }
    s[..end]
        .trim_end_matches(['.', ',', ';', ':', '!', '?'])
        .len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ends_where_a_reader_would_end_it() {
        let cases = [
            ("https://x.example/a b", "https://x.example/a"),
            ("https://x.example/a.", "https://x.example/a"),
            ("https://x.example/a?!...", "https://x.example/a"),
            ("https://x.example/a.b,c", "https://x.example/a.b,c"),
            ("https://x.example/a).", "https://x.example/a"),
            ("https://x.example/a_(b)_c).", "https://x.example/a_(b)_c"),
            ("https://x.example/a>b", "https://x.example/a"),
            ("https://x.example/\"a", "https://x.example/"),
            ("https://x.example/a\u{a0}b", "https://x.example/a"),
            ("https://x.example/ü?q=ß#é", "https://x.example/ü?q=ß#é"),
            ("https://x.example/a\tb", "https://x.example/a"),
        ];
        for (s, url) in cases {
            assert_eq!(&s[..url_len(s)], url, "{s:?}");
        }
    }

    #[test]
    fn urls_start_at_a_scheme_after_a_non_word_character() {
        let starts = |s: &str| {
            let mut found = Vec::new();
            let mut from = 0;
            while let Some(i) = next_url(s, from) {
                found.push(i);
                from = i + 1;
            }
            found
        };
        assert_eq!(starts("http://a (https://b) <HTTPS://c>"), [0, 10, 22]);
        assert_eq!(
            starts("xhttp://a 1https://b ftp://c http:/d httpx://e"),
            [] as [usize; 0]
        );
        assert_eq!(starts("é:https://a"), [3]);
    }
}
