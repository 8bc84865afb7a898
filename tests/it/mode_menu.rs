//! The mode menu in a real pseudo-terminal: `M` shows the four modes in the
//! footer, a digit switches the demo's gateway straight to that mode, and
//! Esc leaves the mode as it is (without quitting).

use std::time::Duration;

use greet_tests::pty;
use pty::start_dashboard;

#[test]
fn capital_m_then_a_digit_switches_straight_to_that_mode() {
    let mut dashboard = start_dashboard(&["demo", "--rate", "20"], &[]);
    dashboard
        .screen
        .wait_for("the STICKY badge", Duration::from_secs(30), |s| s.contains(" STICKY "));

    dashboard.press(b"M");
    dashboard
        .screen
        .wait_for("the menu in the footer", Duration::from_secs(5), |s| {
            s.contains("switch to: 1 sticky (now)  2 balanced  3 least-loaded  4 dns  Esc cancels")
        });
    // Straight from sticky to least-loaded, skipping balanced.
    dashboard.press(b"3");
    dashboard
        .screen
        .wait_for("the LEAST-LOADED badge", Duration::from_secs(10), |s| {
            s.contains(" LEAST-LOADED ") && !s.contains("switch to:")
        });
    dashboard.press(b"M");
    dashboard
        .screen
        .wait_for("the menu, least-loaded now", Duration::from_secs(5), |s| {
            s.contains("3 least-loaded (now)")
        });
    dashboard.press(b"4");
    dashboard
        .screen
        .wait_for("the DNS badge", Duration::from_secs(10), |s| s.contains(" DNS "));

    // Esc closes the menu: nothing switches, the dashboard keeps running.
    dashboard.press(b"M");
    dashboard
        .screen
        .wait_for("the menu, dns now", Duration::from_secs(5), |s| {
            s.contains("4 dns (now)")
        });
    dashboard.press(b"\x1b");
    let after = dashboard
        .screen
        .wait_for("the menu closed", Duration::from_secs(5), |s| {
            s.contains("mode unchanged")
        });
    assert!(after.contains(" DNS "), "{after}");
    dashboard.quit();
}
