//! Paths to a value in the config document, as serde's error helpers print them.

/// A path as serde_path_to_error prints it (`tiers.friend.caps[0].count`), as table
/// keys and array indexes.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for seg in path.split('.') {
        let (key, mut rest) = seg.split_once('[').map_or((seg, ""), |(k, r)| (k, r));
        if !key.is_empty() {
            out.push(Step::Key(key));
        }
        while let Some((n, after)) = rest.split_once(']') {
            if let Ok(i) = n.parse() {
                out.push(Step::Index(i));
            }
            rest = after.trim_start_matches('[');
        }
    }
    out
}

pub(super) fn remove_path(doc: &mut toml::Value, path: &str) -> bool {
    let steps = steps(path);
    let Some((last, parents)) = steps.split_last() else {
        return false;
    };
    let mut cursor = doc;
    for step in parents {
        let next = match step {
            Step::Key(k) => cursor.get_mut(*k),
            Step::Index(i) => cursor.get_mut(*i),
        };
        match next {
            Some(n) => cursor = n,
            None => return false,
        }
    }
    match last {
        Step::Key(k) => cursor.as_table_mut().and_then(|t| t.remove(*k)).is_some(),
        Step::Index(i) => match cursor.as_array_mut() {
            Some(a) if *i < a.len() => {
                a.remove(*i);
                true
            }
            _ => false,
        },
    }
}

/// serde_ignored prints an array element as `caps.?.0`... or `caps.0`; shown as
/// `caps[0]`, the form every other message uses.
pub(super) fn ignored_path(raw: &str) -> String {
    let mut out = String::new();
    for seg in raw.split('.').filter(|s| *s != "?") {
        if seg.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}
