//! The key bindings: one table from which key handling
//! ([`super::App::on_key`]), the footer hints and the help overlay are all
//! derived, so a key cannot be handled without being listed, or listed
//! without being handled.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use greet_proto::Mode;

/// What a key asks for; [`super::App`] carries it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    /// Closes the help when it is open, else quits.
    Escape,
    ToggleHelp,
    /// Moves the pods table by this many rows (`isize::MIN`: to the top).
    Scroll(isize),
    SwitchMode,
    /// Opens the mode menu: a digit then picks the mode ([`MODE_MENU`]).
    ModeMenu,
    ToggleLoad,
    RateUp,
    RateDown,
    Reset,
    Freeze,
    /// The next time window (10 s, 1 min, since the reset).
    CycleWindow,
    /// The next sort key of the rows.
    CycleSort,
    /// Type a filter for the rows (`/`).
    Filter,
    AddPod,
    SlowPod,
    /// Demo: a max connection age on every pod, or none.
    ConnectionAge,
    KillPod,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct Binding {
    /// The keys that do it (any modifiers, unless `ctrl`).
    pub keys: &'static [KeyCode],
    /// Only with Control held.
    pub ctrl: bool,
    pub command: Command,
    /// Its part of the footer hint line, if it has one.
    pub hint: Option<&'static str>,
    /// Its line in the help overlay: the keys as shown, and what they do.
    pub help: Option<(&'static str, &'static str)>,
    /// Only in `greet-top demo`.
    pub demo_only: bool,
    /// Only with a load generator to control (else the footer says so).
    pub needs_load: bool,
}

const fn bind(keys: &'static [KeyCode], command: Command) -> Binding {
    Binding {
        keys,
        ctrl: false,
        command,
        hint: None,
        help: None,
        demo_only: false,
        needs_load: false,
    }
}

impl Binding {
    const fn hint(self, hint: &'static str) -> Self {
        Binding {
            hint: Some(hint),
            ..self
        }
    }

    const fn help(self, keys: &'static str, what: &'static str) -> Self {
        Binding {
            help: Some((keys, what)),
            ..self
        }
    }

    const fn ctrl(self) -> Self {
        Binding { ctrl: true, ..self }
    }

    const fn demo_only(self) -> Self {
        Binding {
            demo_only: true,
            ..self
        }
    }

    const fn needs_load(self) -> Self {
        Binding {
            needs_load: true,
            ..self
        }
    }

    fn shown(&self, demo: bool) -> bool {
        demo || !self.demo_only
    }
}

/// Every key, in the order the footer and the help list them.
pub const BINDINGS: &[Binding] = &[
    bind(&[KeyCode::Char('c')], Command::Quit).ctrl(),
    bind(&[KeyCode::Char('m')], Command::SwitchMode)
        .hint("m/M mode")
        .help("m", "next mode: sticky, balanced, least-loaded, dns"),
    bind(&[KeyCode::Char('M')], Command::ModeMenu).help("M", "mode menu: 1-4 picks one, any other key cancels"),
    bind(&[KeyCode::Char('l')], Command::ToggleLoad)
        .hint("l load")
        .help("l", "load generator on / off")
        .needs_load(),
    bind(&[KeyCode::Char('+'), KeyCode::Char('=')], Command::RateUp)
        .hint("+/- rate")
        .help("+ / -", "load rate up / down")
        .needs_load(),
    bind(&[KeyCode::Char('-'), KeyCode::Char('_')], Command::RateDown).needs_load(),
    bind(&[KeyCode::Char('r')], Command::Reset)
        .hint("r reset")
        .help("r", "reset counters (and forget gone pods)"),
    bind(&[KeyCode::Char(' ')], Command::Freeze)
        .hint("spc freeze")
        .help("space", "freeze the view (counting continues)"),
    bind(&[KeyCode::Char('w')], Command::CycleWindow)
        .hint("w window")
        .help("w", "time window: 10 s, 1 min, since reset"),
    bind(&[KeyCode::Char('s')], Command::CycleSort)
        .hint("s sort")
        .help("s", "sort rows by rate, name, errors, p99"),
    bind(&[KeyCode::Char('/')], Command::Filter)
        .hint("/ filter")
        .help("/", "filter pods by name as you type (Esc clears)"),
    bind(&[KeyCode::Down, KeyCode::Char('j')], Command::Scroll(1))
        .help("↑ ↓ j k", "scroll the pods when they do not all fit"),
    bind(&[KeyCode::Up, KeyCode::Char('k')], Command::Scroll(-1)),
    bind(&[KeyCode::PageDown], Command::Scroll(10)).help("PgUp PgDn", "a page up / down (Home, End: top, end)"),
    bind(&[KeyCode::PageUp], Command::Scroll(-10)),
    bind(&[KeyCode::Home], Command::Scroll(isize::MIN)),
    bind(&[KeyCode::End], Command::Scroll(isize::MAX)),
    bind(&[KeyCode::Char('a')], Command::AddPod)
        .hint("a add")
        .help("a", "add a pod")
        .demo_only(),
    bind(&[KeyCode::Char('x')], Command::KillPod)
        .hint("x kill")
        .help("x", "kill the busiest pod (press twice)")
        .demo_only(),
    // No footer hint: the footer is full; the help lists it.
    bind(&[KeyCode::Char('d')], Command::SlowPod)
        .help("d", "make one pod 25 ms slower, or back")
        .demo_only(),
    // No footer hint either: the help lists it, the header shows it while set.
    bind(&[KeyCode::Char('g')], Command::ConnectionAge)
        .help("g", "max connection age 3 s on every pod, or off")
        .demo_only(),
    bind(&[KeyCode::Char('?')], Command::ToggleHelp)
        .hint("? help")
        .help("?", "this help"),
    bind(&[KeyCode::Char('q')], Command::Quit)
        .hint("q quit")
        .help("q, Esc, Ctrl-C", "quit"),
    bind(&[KeyCode::Esc], Command::Escape),
];

/// The mode menu (`M`): the key that picks each mode, in the order shown.
pub const MODE_MENU: [(char, Mode); 4] = [
    ('1', Mode::Sticky),
    ('2', Mode::Balanced),
    ('3', Mode::LeastLoaded),
    ('4', Mode::Dns),
];

/// The mode `key` picks in the open mode menu; `None` cancels it.
pub fn mode_menu_choice(key: KeyEvent) -> Option<Mode> {
    let KeyCode::Char(c) = key.code else { return None };
    MODE_MENU.iter().find(|(k, _)| *k == c).map(|(_, mode)| *mode)
}

/// The footer while the mode menu is open; `current` is marked.
pub fn mode_menu_line(current: Option<Mode>) -> String {
    let choices: Vec<String> = MODE_MENU
        .iter()
        .map(|(key, mode)| {
            let now = if Some(*mode) == current { " (now)" } else { "" };
            format!("{key} {mode}{now}")
        })
        .collect();
    format!("switch to: {}  Esc cancels", choices.join("  "))
}

/// The binding `key` triggers, if any (`demo`: demo-only keys count).
pub fn binding_for(key: KeyEvent, demo: bool) -> Option<&'static Binding> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    BINDINGS
        .iter()
        .filter(|b| b.shown(demo) && (ctrl || !b.ctrl))
        .find(|b| b.keys.contains(&key.code))
}

/// The footer's key hints for a line `width` wide. When they do not all
/// fit, quit and help come first: the ones a user must never lose.
pub fn footer_hints(demo: bool, width: usize) -> String {
    let hints: Vec<&str> = BINDINGS
        .iter()
        .filter(|b| b.shown(demo))
        .filter_map(|b| b.hint)
        .collect();
    let line = hints.join("  ");
    if line.chars().count() <= width {
        return line;
    }
    let first = |h: &&str| matches!(*h, "q quit" | "? help");
    let (mut urgent, rest): (Vec<&str>, Vec<&str>) = hints.into_iter().partition(first);
    urgent.reverse();
    urgent.extend(rest);
    // Whole hints only: a cut one ("s sor") reads as a typo.
    let mut line = String::new();
    for hint in urgent {
        let sep = if line.is_empty() { 0 } else { 2 };
        if line.chars().count() + sep + hint.chars().count() > width {
            break;
        }
        if sep > 0 {
            line.push_str("  ");
        }
        line.push_str(hint);
    }
    line
}

/// The help overlay's lines: keys as shown, and what they do.
pub fn help_lines(demo: bool) -> impl Iterator<Item = (&'static str, &'static str)> {
    BINDINGS.iter().filter(move |b| b.shown(demo)).filter_map(|b| b.help)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(key: KeyEvent, demo: bool) -> Option<Command> {
        binding_for(key, demo).map(|b| b.command)
    }

    #[test]
    fn footer_hints_list_the_keys_in_order() {
        assert_eq!(
            footer_hints(false, 100),
            "m/M mode  l load  +/- rate  r reset  spc freeze  w window  s sort  / filter  ? help  q quit"
        );
        assert_eq!(
            footer_hints(true, 112),
            "m/M mode  l load  +/- rate  r reset  spc freeze  w window  s sort  / filter  a add  x kill  ? help  q quit"
        );
        // Too narrow for all: quit and help first, then as many whole hints as fit.
        assert_eq!(
            footer_hints(true, 80),
            "q quit  ? help  m/M mode  l load  +/- rate  r reset  spc freeze  w window"
        );
        assert_eq!(footer_hints(true, 20), "q quit  ? help");
    }

    #[test]
    fn help_lists_demo_keys_only_in_the_demo() {
        let keys = |demo| help_lines(demo).map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(false),
            [
                "m",
                "M",
                "l",
                "+ / -",
                "r",
                "space",
                "w",
                "s",
                "/",
                "↑ ↓ j k",
                "PgUp PgDn",
                "?",
                "q, Esc, Ctrl-C"
            ]
        );
        assert_eq!(
            keys(true),
            [
                "m",
                "M",
                "l",
                "+ / -",
                "r",
                "space",
                "w",
                "s",
                "/",
                "↑ ↓ j k",
                "PgUp PgDn",
                "a",
                "x",
                "d",
                "g",
                "?",
                "q, Esc, Ctrl-C"
            ]
        );
    }

    #[test]
    fn capital_m_opens_the_mode_menu_and_a_digit_picks_each_mode() {
        assert_eq!(
            command(KeyEvent::from(KeyCode::Char('m')), false),
            Some(Command::SwitchMode)
        );
        let shift_m = KeyEvent::new(KeyCode::Char('M'), KeyModifiers::SHIFT);
        assert_eq!(command(shift_m, false), Some(Command::ModeMenu));
        let picked: Vec<Option<Mode>> = ['1', '2', '3', '4', '5', 'q']
            .into_iter()
            .map(|c| mode_menu_choice(KeyEvent::from(KeyCode::Char(c))))
            .collect();
        assert_eq!(
            picked,
            [
                Some(Mode::Sticky),
                Some(Mode::Balanced),
                Some(Mode::LeastLoaded),
                Some(Mode::Dns),
                None,
                None
            ]
        );
        assert_eq!(mode_menu_choice(KeyEvent::from(KeyCode::Esc)), None);
        assert_eq!(
            mode_menu_line(Some(Mode::Balanced)),
            "switch to: 1 sticky  2 balanced (now)  3 least-loaded  4 dns  Esc cancels"
        );
        // Every mode has its key.
        assert!(Mode::ALL.iter().all(|m| MODE_MENU.iter().any(|(_, mode)| mode == m)));
    }

    #[test]
    fn control_c_quits_but_c_alone_does_nothing() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(command(ctrl_c, false), Some(Command::Quit));
        assert_eq!(command(KeyEvent::from(KeyCode::Char('c')), false), None);
        // Other keys ignore modifiers.
        let ctrl_q = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::CONTROL);
        assert_eq!(command(ctrl_q, false), Some(Command::Quit));
    }

    #[test]
    fn key_releases_and_unbound_keys_do_nothing() {
        let mut release = KeyEvent::from(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(command(release, false), None);
        assert_eq!(command(KeyEvent::from(KeyCode::Char('x')), false), None);
        assert_eq!(command(KeyEvent::from(KeyCode::Char('z')), true), None);
    }

    #[test]
    fn demo_keys_need_the_demo_and_rate_keys_have_aliases() {
        assert_eq!(command(KeyEvent::from(KeyCode::Char('a')), false), None);
        assert_eq!(command(KeyEvent::from(KeyCode::Char('g')), false), None);
        assert_eq!(
            command(KeyEvent::from(KeyCode::Char('g')), true),
            Some(Command::ConnectionAge)
        );
        assert_eq!(
            command(KeyEvent::from(KeyCode::Char('x')), true),
            Some(Command::KillPod)
        );
        assert_eq!(
            command(KeyEvent::from(KeyCode::Char('k')), true),
            Some(Command::Scroll(-1))
        );
        assert_eq!(
            command(KeyEvent::from(KeyCode::Char('=')), false),
            Some(Command::RateUp)
        );
        assert_eq!(
            command(KeyEvent::from(KeyCode::Char('_')), false),
            Some(Command::RateDown)
        );
        assert!(binding_for(KeyEvent::from(KeyCode::Char('-')), false).is_some_and(|b| b.needs_load));
        assert_eq!(
            command(KeyEvent::from(KeyCode::Home), false),
            Some(Command::Scroll(isize::MIN))
        );
    }
}
