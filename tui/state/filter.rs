//! `/`: show only the pods whose name contains some text. While it is being
//! typed, keys go to the text, not to the key table.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// Longest filter kept: a pod name is at most 253 characters.
const MAX_LEN: usize = 64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    text: String,
    editing: bool,
}

impl Filter {
    /// The text rows must contain; `None` when every row is shown.
    pub fn text(&self) -> Option<&str> {
        (!self.text.is_empty()).then_some(self.text.as_str())
    }

    /// Keys are going to the filter.
    pub fn editing(&self) -> bool {
        self.editing
    }

    pub fn start(&mut self) {
        self.editing = true;
    }

    /// Whether `name` is shown (case-insensitive).
    pub fn matches(&self, name: &str) -> bool {
        self.text.is_empty() || name.to_lowercase().contains(&self.text.to_lowercase())
    }

    /// A key while editing: characters add, Backspace removes, Enter keeps
    /// the filter, Esc clears it. Ctrl-C is left to the key table (quit).
    pub fn on_key(&mut self, key: KeyEvent) -> bool {
        if !self.editing || key.kind == KeyEventKind::Release {
            return false;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return false;
        }
        match key.code {
            KeyCode::Char(c) if !c.is_control() && self.text.chars().count() < MAX_LEN => self.text.push(c),
            KeyCode::Char(_) => {}
            KeyCode::Backspace => {
                self.text.pop();
            }
            KeyCode::Enter => self.editing = false,
            KeyCode::Esc => *self = Filter::default(),
            _ => {}
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(filter: &mut Filter, keys: &[KeyCode]) {
        for code in keys {
            assert!(filter.on_key(KeyEvent::from(*code)), "{code:?} goes to the filter");
        }
    }

    #[test]
    fn typing_narrows_enter_keeps_esc_clears() {
        let mut filter = Filter::default();
        assert!(
            !filter.on_key(KeyEvent::from(KeyCode::Char('a'))),
            "not editing: keys are commands"
        );
        filter.start();
        typed(
            &mut filter,
            &[
                KeyCode::Char('W'),
                KeyCode::Char('e'),
                KeyCode::Char('x'),
                KeyCode::Backspace,
                KeyCode::Char('b'),
            ],
        );
        assert_eq!(filter.text(), Some("Web"));
        assert!(filter.matches("greet-web-1") && !filter.matches("greet-db-1"));
        typed(&mut filter, &[KeyCode::Enter]);
        assert!(!filter.editing());
        assert_eq!(filter.text(), Some("Web"), "Enter keeps it");
        filter.start();
        typed(&mut filter, &[KeyCode::Esc]);
        assert_eq!((filter.text(), filter.editing()), (None, false));
        assert!(filter.matches("anything"));
    }

    #[test]
    fn control_keys_are_not_text_and_length_is_bounded() {
        let mut filter = Filter::default();
        filter.start();
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(!filter.on_key(ctrl_c), "Ctrl-C still quits");
        for _ in 0..100 {
            filter.on_key(KeyEvent::from(KeyCode::Char('p')));
        }
        assert_eq!(filter.text().map(str::len), Some(MAX_LEN));
    }
}
