//! greet-top gives the terminal back however it ends: SIGTERM, SIGHUP and
//! SIGINT (exit 128 + the signal, as a shell reports it) and a panic (101),
//! each in a real pseudo-terminal.

use std::time::Duration;

use greet_tests::pty;
use pty::{Dashboard, start_dashboard};

/// The demo dashboard, drawn and in raw mode.
fn running_dashboard(env: &[(&str, &str)]) -> Dashboard {
    let dashboard = start_dashboard(&["demo", "--rate", "20"], env);
    dashboard
        .screen
        .wait_for("the dashboard", Duration::from_secs(30), |s| s.contains("STICKY"));
    assert!(!dashboard.canonical(), "the dashboard runs in raw mode");
    dashboard
}

fn signal_restores_the_terminal(name: &str, number: u32) {
    let mut dashboard = running_dashboard(&[]);
    let pid = dashboard.child.process_id().expect("greet-top's pid");
    let sent = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = dashboard.exit_status(name);
    assert_eq!(status.exit_code(), 128 + number, "{status:?}");
    dashboard.assert_restored();
    let screen = dashboard.screen.text();
    assert!(screen.contains(&format!("greet-top: stopped by SIG{name}")), "{screen}");
}

#[test]
fn sigterm_restores_the_terminal_and_exits_143() {
    signal_restores_the_terminal("TERM", 15);
}

#[test]
fn sighup_restores_the_terminal_and_exits_129() {
    signal_restores_the_terminal("HUP", 1);
}

#[test]
fn sigint_restores_the_terminal_and_exits_130() {
    signal_restores_the_terminal("INT", 2);
}

#[test]
fn a_panic_restores_the_terminal_and_prints_the_panic() {
    let mut dashboard = running_dashboard(&[("GREET_TOP_TEST_PANIC", "1"), ("RUST_BACKTRACE", "0")]);
    dashboard.press(b"!");
    let status = dashboard.exit_status("the panic");
    assert_eq!(status.exit_code(), 101, "{status:?}");
    dashboard.assert_restored();
    // Printed after the restore, so it is on the main screen, readable.
    let screen = dashboard.screen.text();
    assert!(
        screen.contains("GREET_TOP_TEST_PANIC: the test asked for a panic"),
        "{screen}"
    );
}

#[test]
fn without_the_test_variable_the_panic_key_does_nothing() {
    let mut dashboard = running_dashboard(&[]);
    dashboard.press(b"!");
    // Still running and still drawing: q quits cleanly afterwards.
    dashboard
        .screen
        .wait_for("the dashboard after !", Duration::from_secs(5), |s| {
            s.contains("STICKY")
        });
    dashboard.quit();
}
