//! The help overlay: the keys, and what the two modes mean.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

use super::theme::Theme;
use crate::tui::state::{App, keys};

pub(super) fn render(app: &App, frame: &mut Frame, area: Rect, theme: Theme) {
    let mut lines: Vec<Line> = keys::help_lines(app.demo())
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!("{key:>15}  "), theme.title()),
                Span::raw(what),
            ])
        })
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        "STICKY: one HTTP/2 connection, so one pod gets every request.",
        theme.dim(),
    ));
    lines.push(Line::styled(
        "BALANCED: round robin per request over the ready pods.",
        theme.dim(),
    ));
    let width = 66.min(area.width);
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
