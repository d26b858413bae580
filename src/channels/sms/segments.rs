//! How many SMS segments a text takes (GSM-7 or UCS-2).
//!
//! Providers bill per segment, and one character outside the GSM 03.38 alphabet (an
//! emoji, a curly quote) switches the whole message to UCS-2 and cuts a segment from 160
//! characters to 70. A long message travels as parts of 153 septets or 67 UCS-2 units:
//! each part gives up room for the header that joins them, and no part may split an
//! escape sequence or a surrogate pair.

/// How the text is encoded on the air.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// GSM 03.38: 7-bit septets.
    Gsm7,
    /// UTF-16 code units.
    Ucs2,
}

/// The size of a text as an SMS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segments {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 code units (UCS-2).
    pub units: usize,
    /// Segments sent (and billed); an empty text still takes one.
    pub count: usize,
}

/// The GSM 03.38 basic table: one septet each.
const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
                     ¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The extension table: an escape septet plus one, so two each.
const EXTENSION: &str = "^{}\\[~]|€\u{0C}";

/// Septets for `c` in GSM-7, or `None` if the alphabet lacks it.
fn septets(c: char) -> Option<usize> {
    if BASIC.contains(c) {
        Some(1)
    } else if EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// Segment count and encoding for `text`.
pub fn count(text: &str) -> Segments {
    let gsm: Option<Vec<usize>> = text.chars().map(septets).collect();
    let (encoding, sizes, single, part) = match gsm {
        Some(sizes) => (Encoding::Gsm7, sizes, 160, 153),
        None => (
            Encoding::Ucs2,
            text.chars().map(char::len_utf16).collect(),
            70,
            67,
        ),
    };
    let units = sizes.iter().sum();
    let count = if units <= single {
        1
    } else {
        parts(&sizes, part)
    };
    Segments {
        encoding,
        units,
        count,
    }
}

/// Parts of at most `capacity` units, filled in order; a character that does not fit
/// whole starts the next part.
fn parts(sizes: &[usize], capacity: usize) -> usize {
    let (mut count, mut used) = (1, 0);
    for &size in sizes {
        if used + size > capacity {
            count += 1;
            used = 0;
        }
        used += size;
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(encoding: Encoding, units: usize, count: usize) -> Segments {
        Segments {
            encoding,
            units,
            count,
        }
    }

    #[test]
    fn gsm7_boundaries() {
        let a = |n| "a".repeat(n);
        let cases = [
            (String::new(), seg(Encoding::Gsm7, 0, 1)),
            (a(1), seg(Encoding::Gsm7, 1, 1)),
            (a(160), seg(Encoding::Gsm7, 160, 1)),
            (a(161), seg(Encoding::Gsm7, 161, 2)),
            (a(306), seg(Encoding::Gsm7, 306, 2)),
            (a(307), seg(Encoding::Gsm7, 307, 3)),
        ];
        for (text, want) in cases {
            assert_eq!(count(&text), want, "{} chars", text.len());
        }
    }

    #[test]
    fn ucs2_boundaries() {
        let d = |n| "д".repeat(n);
        let cases = [
            (d(70), seg(Encoding::Ucs2, 70, 1)),
            (d(71), seg(Encoding::Ucs2, 71, 2)),
            (d(134), seg(Encoding::Ucs2, 134, 2)),
            (d(135), seg(Encoding::Ucs2, 135, 3)),
        ];
        for (text, want) in cases {
            assert_eq!(count(&text), want, "{} chars", text.chars().count());
        }
    }

    #[test]
    fn extension_characters_take_two_septets() {
        assert_eq!(count("€"), seg(Encoding::Gsm7, 2, 1));
        assert_eq!(count(EXTENSION), seg(Encoding::Gsm7, 20, 1));
        // 159 + 2 = 161: the euro pushes it over one segment.
        let text = format!("{}€", "a".repeat(159));
        assert_eq!(count(&text), seg(Encoding::Gsm7, 161, 2));
        let text = format!("{}€", "a".repeat(158));
        assert_eq!(count(&text), seg(Encoding::Gsm7, 160, 1));
    }

    #[test]
    fn an_escape_pair_is_never_split_across_parts() {
        // 152 + 2 would end a part in the middle of the euro: it moves to the next,
        // so 306 septets take three parts, not two.
        let text = format!("{}€{}", "a".repeat(152), "a".repeat(152));
        assert_eq!(count(&text), seg(Encoding::Gsm7, 306, 3));
        // 151 + 2 fills the part exactly.
        let text = format!("{}€{}", "a".repeat(151), "a".repeat(153));
        assert_eq!(count(&text), seg(Encoding::Gsm7, 306, 2));
    }

    #[test]
    fn an_emoji_is_two_units_and_never_split() {
        assert_eq!(count("🎂"), seg(Encoding::Ucs2, 2, 1));
        let text = format!("{}🎂", "д".repeat(68));
        assert_eq!(count(&text), seg(Encoding::Ucs2, 70, 1));
        let text = format!("{}🎂", "д".repeat(69));
        assert_eq!(count(&text), seg(Encoding::Ucs2, 71, 2));
        let text = format!("{}🎂{}", "д".repeat(66), "д".repeat(66));
        assert_eq!(count(&text), seg(Encoding::Ucs2, 134, 3));
    }

    #[test]
    fn one_character_outside_the_alphabet_switches_everything_to_ucs2() {
        let text = format!("{}’", "a".repeat(69));
        assert_eq!(count(&text), seg(Encoding::Ucs2, 70, 1));
        for c in ['`', 'á', 'ë', '’', '\t', 'д'] {
            assert_eq!(count(&c.to_string()).encoding, Encoding::Ucs2, "{c:?}");
        }
    }

    #[test]
    fn the_whole_basic_table_is_one_septet_each() {
        assert_eq!(BASIC.chars().count(), 128 - 1, "all but the escape");
        assert_eq!(count(BASIC), seg(Encoding::Gsm7, 127, 1));
        assert_eq!(
            count("Hi Zoé, alles Gute! ¿Qué tal? 1+1=2 @home £5 §3"),
            seg(Encoding::Gsm7, 47, 1)
        );
    }
}
