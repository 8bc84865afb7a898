//! Text that arrives over the network never reaches a terminal raw.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal: a control character (C0, DEL, C1:
/// ESC and CSI start every escape sequence) or a bidirectional embedding,
/// override or isolate, which would make a pod name display as another.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `text` is printable ASCII only, which [`is_unsafe`] never names:
/// a byte test, for the method and pod names of every forwarded call.
fn printable_ascii(text: &str) -> bool {
    text.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Removes what [`is_unsafe`] names (so no terminal escape sequence
/// survives) from text that came over the network.
pub fn sanitize(text: &str) -> Cow<'_, str> {
    if printable_ascii(text) {
        return Cow::Borrowed(text);
    }
    if text.chars().any(is_unsafe) {
        Cow::Owned(text.chars().filter(|&c| !is_unsafe(c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// [`sanitize`], then cut to at most `max_chars` characters (an ellipsis marks the cut).
pub fn sanitize_truncated(text: &str, max_chars: usize) -> String {
    if text.len() <= max_chars && printable_ascii(text) {
        return text.to_owned();
    }
    let clean = sanitize(text);
    if clean.chars().count() <= max_chars {
        return clean.into_owned();
    }
    let mut cut: String = clean.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_escape_sequences_and_control_characters() {
        assert_eq!(sanitize("pod\u{1b}[2J-1\r\n\u{7}"), "pod[2J-1");
        assert_eq!(sanitize("\u{9b}31mred"), "31mred");
        assert_eq!(sanitize("pod-\u{202E}1-dab"), "pod-1-dab");
        assert_eq!(sanitize("\u{2066}a\u{2069}"), "a");
    }

    #[test]
    fn borrows_clean_text() {
        assert!(matches!(sanitize("greetserver-abc-1"), Cow::Borrowed(_)));
    }

    #[test]
    fn truncates_long_text_with_an_ellipsis() {
        assert_eq!(sanitize_truncated("abcdef", 4), "abc…");
        assert_eq!(sanitize_truncated("abcd", 4), "abcd");
        assert_eq!(sanitize_truncated("a\u{1b}bcd", 4), "abcd");
    }
}
