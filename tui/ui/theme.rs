//! Colours and emphasis, or none when `NO_COLOR` is set.

use ratatui::style::{Color, Modifier, Style};

use greet_proto::Mode;

/// Colours, or none when `NO_COLOR` is set.
#[derive(Clone, Copy, Debug)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Honours `NO_COLOR` (any non-empty value), per no-color.org.
    pub fn from_env() -> Self {
        Theme::from_no_color(std::env::var_os("NO_COLOR").as_deref())
    }

    /// The theme for a `NO_COLOR` value (`None`: unset).
    pub fn from_no_color(no_color: Option<&std::ffi::OsStr>) -> Self {
        Theme {
            color: no_color.is_none_or(|v| v.is_empty()),
        }
    }

    pub(super) fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub(super) fn badge(self, mode: Option<Mode>) -> Style {
        let style = Style::new().add_modifier(Modifier::BOLD);
        match (self.color, mode) {
            (false, _) => style.add_modifier(Modifier::REVERSED),
            (true, Some(Mode::Sticky)) => style.fg(Color::Black).bg(Color::Yellow),
            (true, Some(Mode::Balanced)) => style.fg(Color::Black).bg(Color::Green),
            (true, Some(Mode::LeastLoaded)) => style.fg(Color::Black).bg(Color::Cyan),
            (true, Some(Mode::Dns)) => style.fg(Color::Black).bg(Color::Magenta),
            (true, None) => style.fg(Color::Black).bg(Color::Gray),
        }
    }

    pub(super) fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub(super) fn good(self) -> Style {
        self.fg(Color::Green)
    }

    pub(super) fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub(super) fn changed(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }

    pub(super) fn title(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::*;

    #[test]
    fn no_color_with_a_value_turns_colours_off() {
        assert!(Theme::from_no_color(None).color);
        assert!(Theme::from_no_color(Some(OsStr::new(""))).color, "empty means unset");
        assert!(!Theme::from_no_color(Some(OsStr::new("1"))).color);
        let plain = Theme { color: false };
        assert_eq!(plain.bad(), Style::new().add_modifier(Modifier::BOLD));
        assert_eq!(plain.dim(), Style::new().add_modifier(Modifier::DIM));
    }
}
