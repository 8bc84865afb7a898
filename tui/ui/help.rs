//! The help overlay: the keys, and what every figure on the screen means.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::theme::Theme;
use crate::state::{App, keys};

/// What each figure means, a line each.
const FIGURES: &[&str] = &[
    // One line for the modes: the header describes the current one.
    "STICKY one pod, BALANCED/DNS round robin, LEAST-LOADED p2c.",
    "Every figure: over the window in the title (w); OK%: succeeded.",
    "fairness: Jain's index, 1.00 even, 1/n all on one pod.",
    "READY hung?: waits 5x p99; skip: routed around; down: unhealthy.",
    "INFL requests unanswered, CONN connections (120 columns up).",
    "Recent requests: mode (S, B, L, D), gRPC status and latency.",
    // Below what 24 rows show: the rows above stay where they were.
    "DNS (m after LEAST-LOADED, D): round robin over the last DNS",
    "answer: in the demo a pod added (a) waits for the next resolve",
    "(every 5 s) while BALANCED sends to it at once.",
];

/// The overlay's width: it fits 80 columns with the screen around it.
const WIDTH: u16 = 66;
/// The key column: the key right-aligned, then two spaces.
const KEY_COLUMN: usize = 17;

pub(super) fn render(app: &App, replay: bool, frame: &mut Frame, area: Rect, theme: Theme) {
    let scope = keys::Scope {
        replay,
        ..app.key_scope()
    };
    let mut lines: Vec<Line> = keys::help_lines(scope)
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:>w$}  ", w = KEY_COLUMN - 2), theme.title()),
                Span::raw(what),
            ])
        })
        .collect();
    // The blank line between keys and figures goes first when rows are short.
    if lines.len() + FIGURES.len() + 3 <= usize::from(area.height) {
        lines.push(Line::raw(""));
    }
    lines.extend(FIGURES.iter().map(|line| Line::styled(*line, theme.dim())));
    let width = WIDTH.min(area.width);
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    let block = Block::new()
        .borders(Borders::ALL)
        .title(Span::styled(" Keys (? or Esc to close) ", theme.title()));
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inside the borders, every line fits whole: a cut line loses the
    /// end of what a key does.
    #[test]
    fn every_help_line_fits_the_overlay() {
        let inner = usize::from(WIDTH) - 2;
        for replay in [false, true] {
            let scope = keys::Scope {
                replay,
                ..keys::Scope::ALL
            };
            for (key, what) in keys::help_lines(scope) {
                let width = KEY_COLUMN + what.chars().count();
                assert!(width <= inner, "`{key}`: {what:?} needs {width} columns of {inner}");
            }
        }
        for line in FIGURES {
            assert!(line.chars().count() <= inner, "{line:?}");
        }
    }
}
