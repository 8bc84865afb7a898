//! Text that must not be cut at the terminal's edge (a cause, what to do,
//! a notice): wrapped at spaces, a word longer than a line broken at the
//! edge and continued on the next, and, where rows are few, ended with "…"
//! on purpose. Widths are in characters, as everywhere on this screen.
//! (By hand: ratatui wraps only while drawing, and the panels need the line
//! count first, to make room; textwrap starts a word longer than the line on
//! a line of its own, which costs a row of the 24 for every path or URL.)

/// `text` in lines of at most `width` characters.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for word in text.split(' ') {
        let word_len = word.chars().count();
        let with_space = if len == 0 { word_len } else { len + 1 + word_len };
        if with_space <= width {
            if len > 0 {
                line.push(' ');
            }
            line.push_str(word);
            len = with_space;
            continue;
        }
        if word_len <= width {
            lines.push(std::mem::take(&mut line));
            line.push_str(word);
            len = word_len;
            continue;
        }
        // Longer than a line: it starts where it would and breaks at the edge.
        if len > 0 && len + 1 < width {
            line.push(' ');
            len += 1;
        } else if len > 0 {
            lines.push(std::mem::take(&mut line));
            len = 0;
        }
        for c in word.chars() {
            if len == width {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            line.push(c);
            len += 1;
        }
    }
    lines.push(line);
    lines
}

/// [`wrap`] in at most `rows` lines, the last ending in "…" when text is left out.
pub(super) fn wrap_within(text: &str, width: usize, rows: usize) -> Vec<String> {
    let mut lines = wrap(text, width);
    if lines.len() > rows.max(1) {
        lines.truncate(rows.max(1));
        if let Some(last) = lines.last_mut() {
            *last = cut_for_more(last, width);
        }
    }
    lines
}

/// [`wrap`] in at most `rows` lines, for a message that leads with its
/// cause and ends with what it means or what to do (after its last "; " or
/// " — "): when it is too long, its middle gives way ("…") and both ends
/// stay; without such an end, its end does.
pub(super) fn wrap_ends(text: &str, width: usize, rows: usize) -> Vec<String> {
    let lines = wrap(text, width);
    if lines.len() <= rows.max(1) {
        return lines;
    }
    let end = ["; ", " — "]
        .iter()
        .filter_map(|sep| text.rfind(sep))
        .max()
        .map(|at| &text[at..])
        .filter(|end| end.chars().count() < width * rows.max(1) / 2);
    let Some(end) = end else {
        return wrap_within(text, width, rows);
    };
    let start: Vec<char> = text[..text.len() - end.len()].chars().collect();
    // Cut between words: a word cut short reads as another word.
    (0..start.len())
        .rev()
        .filter(|n| start[*n] == ' ')
        .map(|n| {
            let head: String = start[..n].iter().collect();
            wrap(&format!("{}…{end}", head.trim_end()), width)
        })
        .find(|lines| lines.len() <= rows.max(1))
        .unwrap_or_else(|| wrap_within(text, width, rows))
}

/// `text` within `width` characters, its end replaced by "…" when it is longer.
pub(super) fn ellipsis(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    cut_for_more(text, width)
}

/// `text`, which more text follows, ending in "…" within `width` characters.
fn cut_for_more(text: &str, width: usize) -> String {
    let mut out: String = text.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_break_at_spaces_and_long_words_at_the_edge() {
        assert_eq!(
            wrap("point --gateway at the port", 12),
            ["point", "--gateway at", "the port"]
        );
        assert_eq!(
            wrap("see ~/.kube/config-of-a-long-name now", 10),
            ["see ~/.kub", "e/config-o", "f-a-long-n", "ame now"]
        );
        assert_eq!(wrap("short", 80), ["short"]);
        assert_eq!(wrap("", 10), [""]);
    }

    #[test]
    fn too_many_lines_end_in_an_ellipsis() {
        assert_eq!(wrap_within("one two three four", 9, 2), ["one two", "three…"]);
        assert_eq!(wrap_within("one two three four", 5, 2), ["one", "two…"]);
        assert_eq!(wrap_within("one two", 9, 2), ["one two"]);
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abcd", 4), "abcd");
    }

    #[test]
    fn a_long_message_keeps_its_cause_and_what_it_means() {
        let text = "no access (a very long chain of causes here); pods come from the gateway";
        assert_eq!(
            wrap_ends(text, 30, 2),
            ["no access (a very long chain…;", "pods come from the gateway"]
        );
        assert_eq!(wrap_ends("short; fine", 30, 2), ["short; fine"]);
        assert_eq!(
            wrap_ends("no end to keep at all here", 10, 2),
            ["no end to", "keep at…"]
        );
    }
}
