//! The footer: the latest message, else the key hints.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::theme::Theme;
use crate::tui::state::{App, keys};

pub(super) fn render(app: &App, frame: &mut Frame, area: Rect, theme: Theme) {
    let line = match app.message() {
        _ if app.filter().editing() => Line::from(vec![
            Span::styled(format!("/{}▏", app.filter().text().unwrap_or_default()), theme.title()),
            Span::styled("  Enter keeps it, Esc clears it", theme.dim()),
        ]),
        _ if app.mode_menu_open() => Line::from(Span::styled(keys::mode_menu_line(app.mode()), theme.title())),
        Some(message) => Line::from(Span::styled(
            message.text.clone(),
            if message.error { theme.bad() } else { theme.good() },
        )),
        None => Line::from(Span::styled(
            keys::footer_hints(app.demo(), usize::from(area.width)),
            theme.dim(),
        )),
    };
    frame.render_widget(Paragraph::new(line), area);
}
