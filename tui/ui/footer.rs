//! The footer: the latest message, else the key hints.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::Chrome;
use super::theme::Theme;
use super::wrap::wrap_ends;
use crate::state::{App, keys};

/// Most lines a message takes: a notice ("no Kubernetes access (…)") is
/// read whole, the panels above keep their room.
const MESSAGE_LINES: usize = 2;

/// The latest message in lines of the terminal's `width`, wrapped; too
/// long, its middle gives way (it leads with the cause and ends with what
/// it means). Empty when the footer shows something else, in one line.
pub(super) fn lines(app: &App, width: u16) -> Vec<String> {
    match app.message() {
        _ if app.filter().editing() || app.mode_menu_open() => Vec::new(),
        Some(message) => wrap_ends(&message.text, usize::from(width), MESSAGE_LINES),
        None => Vec::new(),
    }
}

pub(super) fn render(
    app: &App,
    message_lines: Vec<String>,
    chrome: &Chrome,
    frame: &mut Frame,
    area: Rect,
    theme: Theme,
) {
    if let Some((_, error)) = &chrome.footer {
        let style = if *error { theme.bad() } else { theme.title() };
        let lines: Vec<Line> = message_lines.into_iter().map(|l| Line::styled(l, style)).collect();
        frame.render_widget(Paragraph::new(lines), area);
        return;
    }
    let scope = keys::Scope {
        replay: chrome.replay,
        ..app.key_scope()
    };
    let line = match app.message() {
        _ if app.filter().editing() => Line::from(vec![
            Span::styled(format!("/{}▏", app.filter().text().unwrap_or_default()), theme.title()),
            Span::styled("  Enter keeps it, Esc clears it", theme.dim()),
        ]),
        _ if app.mode_menu_open() => Line::from(Span::styled(keys::mode_menu_line(app.mode()), theme.title())),
        Some(message) => {
            let style = if message.error { theme.bad() } else { theme.good() };
            let lines: Vec<Line> = message_lines.into_iter().map(|l| Line::styled(l, style)).collect();
            frame.render_widget(Paragraph::new(lines), area);
            return;
        }
        None => Line::from(Span::styled(
            keys::footer_hints(scope, usize::from(area.width)),
            theme.dim(),
        )),
    };
    frame.render_widget(Paragraph::new(line), area);
}
