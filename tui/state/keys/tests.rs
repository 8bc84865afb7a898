use super::*;

fn scope(demo: bool) -> Scope {
    Scope {
        demo,
        views: false,
        gateway: true,
        replay: false,
    }
}

fn command(key: KeyEvent, demo: bool) -> Option<Command> {
    binding_for(key, scope(demo)).map(|b| b.command)
}

#[test]
fn footer_hints_list_the_keys_in_order() {
    assert_eq!(
        footer_hints(scope(false), 100),
        "m/M mode  l load  +/- rate  r reset  spc freeze  w window  s sort  / filter  ? help  q quit"
    );
    assert_eq!(
        footer_hints(scope(true), 112),
        "m/M mode  l load  +/- rate  r reset  spc freeze  w window  s sort  / filter  a add  x kill  ? help  q quit"
    );
    // Too narrow for all: quit and help first, then as many whole hints as fit.
    assert_eq!(
        footer_hints(scope(true), 80),
        "q quit  ? help  m/M mode  l load  +/- rate  r reset  spc freeze  w window"
    );
    assert_eq!(footer_hints(scope(true), 20), "q quit  ? help");
}

#[test]
fn help_lists_demo_keys_only_in_the_demo() {
    let keys = |demo| help_lines(scope(demo)).map(|(k, _)| k).collect::<Vec<_>>();
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
            "b",
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
    assert!(binding_for(KeyEvent::from(KeyCode::Char('-')), scope(false)).is_some_and(|b| b.needs_load));
    assert_eq!(
        command(KeyEvent::from(KeyCode::Home), false),
        Some(Command::Scroll(isize::MIN))
    );
}

#[test]
fn the_view_key_is_there_only_with_two_views() {
    let v = KeyEvent::from(KeyCode::Char('v'));
    assert_eq!(binding_for(v, scope(true)).map(|b| b.command), None);
    let both = Scope {
        demo: false,
        views: true,
        gateway: true,
        replay: false,
    };
    assert_eq!(binding_for(v, both).map(|b| b.command), Some(Command::CycleView));
    assert!(footer_hints(both, 200).contains("v view"));
    assert!(!footer_hints(scope(true), 200).contains("v view"));
}

#[test]
fn the_pods_own_metrics_alone_have_no_mode_keys() {
    let pods_only = Scope {
        demo: false,
        views: false,
        gateway: false,
        replay: false,
    };
    assert_eq!(
        binding_for(KeyEvent::from(KeyCode::Char('m')), pods_only).map(|b| b.command),
        None
    );
    assert!(!footer_hints(pods_only, 200).contains("mode"));
    assert!(help_lines(pods_only).all(|(key, _)| key != "m" && key != "M"));
}

#[test]
fn a_replay_has_its_own_keys_and_lists_none_that_act() {
    let replay = Scope {
        replay: true,
        ..Scope::ALL
    };
    let command = |key: KeyEvent| replay_command(key, replay);
    assert_eq!(command(KeyEvent::from(KeyCode::Char(' '))), Some(Command::Pause));
    assert_eq!(command(KeyEvent::from(KeyCode::Char('g'))), Some(Command::GoTo));
    assert_eq!(command(KeyEvent::from(KeyCode::Left)), Some(Command::Seek(-10)));
    assert_eq!(
        command(KeyEvent::new(KeyCode::Right, KeyModifiers::SHIFT)),
        Some(Command::Seek(60))
    );
    assert_eq!(command(KeyEvent::from(KeyCode::Char('['))), Some(Command::Seek(-60)));
    assert_eq!(command(KeyEvent::from(KeyCode::Char('>'))), Some(Command::Speed(true)));
    // Found, so the replay can say it is read-only; never listed.
    assert_eq!(command(KeyEvent::from(KeyCode::Char('m'))), Some(Command::SwitchMode));
    assert_eq!(
        footer_hints(replay, 200),
        "spc pause  ←/→ seek  g go to  </> speed  w window  s sort  v view  / filter  ? help  q quit"
    );
    assert!(help_lines(replay).all(|(keys, _)| !matches!(keys, "m" | "x" | "r" | "l")));
    // Live, none of the replay's keys.
    assert_eq!(
        binding_for(KeyEvent::from(KeyCode::Char(' ')), Scope::ALL).map(|b| b.command),
        Some(Command::Freeze)
    );
    assert!(!footer_hints(Scope::ALL, 200).contains("seek"));
}
