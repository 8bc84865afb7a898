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
    /// Demo: a client that calls the pods straight, on or off.
    ToggleBypass,
    /// The next view: the gateway's, the pods' own metrics, both.
    CycleView,
    /// Replay: pause, or play on.
    Pause,
    /// Replay: this many seconds on (back when negative).
    Seek(i32),
    /// Replay: type a time to go to.
    GoTo,
    /// Replay: the next speed up (`true`) or down.
    Speed(bool),
}

impl Command {
    /// It acts on the gateways, the load or the demo, or changes what is
    /// counted: in a replay it is read-only.
    pub fn acts(self) -> bool {
        matches!(
            self,
            Command::SwitchMode
                | Command::ModeMenu
                | Command::ToggleLoad
                | Command::RateUp
                | Command::RateDown
                | Command::Reset
                | Command::Freeze
                | Command::AddPod
                | Command::SlowPod
                | Command::ConnectionAge
                | Command::KillPod
                | Command::ToggleBypass
        )
    }
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
    /// Only with a second view (the pods' own metrics beside a gateway).
    pub needs_views: bool,
    /// Only with a gateway to act on (not the pods' own metrics alone).
    pub needs_gateway: bool,
    /// Only in `greet-top replay`.
    pub replay_only: bool,
}

/// Which keys a screen has: the demo's, and the view key when there are
/// two views.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub demo: bool,
    pub views: bool,
    pub gateway: bool,
    /// `greet-top replay`: its own keys, and none that act.
    pub replay: bool,
}

impl Scope {
    /// Every key (the demo with both views): what the help documents.
    pub const ALL: Scope = Scope {
        demo: true,
        views: true,
        gateway: true,
        replay: false,
    };
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
        needs_views: false,
        needs_gateway: false,
        replay_only: false,
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

    const fn needs_gateway(self) -> Self {
        Binding {
            needs_gateway: true,
            ..self
        }
    }

    const fn needs_views(self) -> Self {
        Binding {
            needs_views: true,
            ..self
        }
    }

    const fn needs_load(self) -> Self {
        Binding {
            needs_load: true,
            ..self
        }
    }

    const fn replay_only(self) -> Self {
        Binding {
            replay_only: true,
            ..self
        }
    }

    /// Its keys do something (or, in a replay, say they cannot) here.
    fn available(&self, scope: Scope) -> bool {
        (scope.demo || !self.demo_only)
            && (scope.views || !self.needs_views)
            && (scope.gateway || !self.needs_gateway)
            && (scope.replay || !self.replay_only)
    }

    /// Listed in the footer and the help: a replay lists none that act.
    fn shown(&self, scope: Scope) -> bool {
        self.available(scope) && !(scope.replay && self.command.acts())
    }
}

/// Every key, in the order the footer and the help list them.
pub const BINDINGS: &[Binding] = &[
    bind(&[KeyCode::Char('c')], Command::Quit).ctrl(),
    // A replay's own keys come first: in a replay they win over the
    // live keys they share (space, g).
    bind(&[KeyCode::Char(' ')], Command::Pause)
        .hint("spc pause")
        .help("space", "replay: pause / play")
        .replay_only(),
    bind(&[KeyCode::Left], Command::Seek(-10))
        .hint("←/→ seek")
        .help("← →", "replay: 10 s back / on (shift or [ ]: 1 min)")
        .replay_only(),
    bind(&[KeyCode::Right], Command::Seek(10)).replay_only(),
    bind(&[KeyCode::Char('[')], Command::Seek(-60)).replay_only(),
    bind(&[KeyCode::Char(']')], Command::Seek(60)).replay_only(),
    bind(&[KeyCode::Char('g')], Command::GoTo)
        .hint("g go to")
        .help("g", "replay: go to HH:MM:SS (UTC) or +offset (+2m)")
        .replay_only(),
    bind(&[KeyCode::Char('<')], Command::Speed(false))
        .hint("</> speed")
        .help("< >", "replay: slower / faster (¼× … 16×)")
        .replay_only(),
    bind(&[KeyCode::Char('>')], Command::Speed(true)).replay_only(),
    bind(&[KeyCode::Char('m')], Command::SwitchMode)
        .hint("m/M mode")
        .help("m", "next mode: sticky, balanced, least-loaded, dns")
        .needs_gateway(),
    bind(&[KeyCode::Char('M')], Command::ModeMenu)
        .help("M", "mode menu: 1-4 picks one, any other key cancels")
        .needs_gateway(),
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
    bind(&[KeyCode::Char('v')], Command::CycleView)
        .hint("v view")
        .help("v", "view: the gateway's, the pods' own, both")
        .needs_views(),
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
    bind(&[KeyCode::Char('b')], Command::ToggleBypass)
        .help("b", "a client that bypasses the gateway, on / off")
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
pub fn binding_for(key: KeyEvent, scope: Scope) -> Option<&'static Binding> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    BINDINGS
        .iter()
        .filter(|b| b.available(scope) && (ctrl || !b.ctrl))
        .find(|b| b.keys.contains(&key.code))
}

/// The command `key` asks for in a replay: shift+←/→ seek a minute.
pub fn replay_command(key: KeyEvent, scope: Scope) -> Option<Command> {
    let shift = key.modifiers.contains(KeyModifiers::SHIFT) && key.kind != KeyEventKind::Release;
    match key.code {
        KeyCode::Left if shift => Some(Command::Seek(-60)),
        KeyCode::Right if shift => Some(Command::Seek(60)),
        _ => binding_for(key, Scope { replay: true, ..scope }).map(|b| b.command),
    }
}

/// The footer's key hints for a line `width` wide. When they do not all
/// fit, quit and help come first: the ones a user must never lose.
pub fn footer_hints(scope: Scope, width: usize) -> String {
    let hints: Vec<&str> = BINDINGS
        .iter()
        .filter(|b| b.shown(scope))
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
pub fn help_lines(scope: Scope) -> impl Iterator<Item = (&'static str, &'static str)> {
    BINDINGS.iter().filter(move |b| b.shown(scope)).filter_map(|b| b.help)
}

#[cfg(test)]
mod tests;
