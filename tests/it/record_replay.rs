//! `--record` and `greet-top replay` as a user runs them: the demo recorded
//! through a mode switch and a killed pod and replayed on a screen and as
//! reports; `--once` over a recording equals the live `--once`; a SIGKILL
//! loses less than a second; every kind of damage says what and where.
//! The live screen is caught at an instant by freezing it (space): what it
//! shows then stays, and the replay paused inside the freeze must show the
//! same, line for line, but for its badge and keys. (A scripted scenario is
//! compared the same way inside the tui crate, record/replay/tests.rs, with
//! insta snapshots; the demo's pod names and latencies differ every run.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use greet_tests::pty::{Dashboard, start_dashboard};

/// A fresh directory of this test's own, emptied at its start: under the
/// build's own scratch space, so runs leave nothing behind in /tmp.
fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("record-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn greet_top(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(args)
        .output()
        .unwrap()
}

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "greet-top failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

fn replay_report(path: &Path, window: &[&str]) -> Value {
    let path = path.to_str().unwrap();
    let mut args = vec!["replay", path, "--once", "--output", "json"];
    args.extend(window);
    json(&greet_top(&args))
}

/// Presses `key` and waits (30 s at most) until the screen shows `what`.
fn press(dashboard: &mut Dashboard, key: &[u8], what: &str, check: impl Fn(&str) -> bool) -> String {
    dashboard.press(key);
    dashboard.screen.wait_for(what, Duration::from_secs(30), check)
}

/// A pod's row says it is gone.
fn pod_gone(screen: &str) -> bool {
    screen
        .lines()
        .any(|l| l.contains("greetserver-demo-") && l.contains(" gone "))
}

/// Freezes the live screen, keeps what it shows, and lets it go on: when the
/// key was sent (it reached the model just after) and the frozen screen.
fn freeze(dashboard: &mut Dashboard) -> (SystemTime, String) {
    let pressed = SystemTime::now();
    dashboard.press(b" ");
    dashboard
        .screen
        .wait_for("frozen", Duration::from_secs(30), |s| s.contains(" FROZEN "));
    // Held a while, so the replay's seek lands inside the freeze.
    let shown = dashboard.screen.wait_for("1 s frozen", Duration::from_secs(30), |s| {
        s.contains(" FROZEN ") && pressed.elapsed().unwrap_or_default() >= Duration::from_millis(1500)
    });
    press(dashboard, b" ", "the freeze let go", |s| !s.contains(" FROZEN "));
    (pressed, shown)
}

/// A screen without what only the live or only the replay has: the top
/// border (its REC or REPLAY badge) and the keys under the last panel.
fn panels(screen: &str) -> Vec<&str> {
    let lines: Vec<&str> = screen.lines().collect();
    let last = lines.iter().rposition(|l| l.starts_with('└')).unwrap_or(lines.len());
    lines.get(1..=last).unwrap_or_default().to_vec()
}

/// `+12.345s`: an offset as --from and --to take it.
fn offset(d: Duration) -> String {
    format!("+{}ms", d.as_millis())
}

#[test]
fn the_demo_recorded_through_a_mode_switch_and_a_kill_replays_on_screen_and_as_reports() {
    let path = scratch("demo").join("incident.grt");
    let file = path.to_str().unwrap();
    let mut dashboard = start_dashboard(&["demo", "--rate", "100", "--record", file], &[]);
    dashboard
        .screen
        .wait_for("recording, connected", Duration::from_secs(30), |s| {
            s.contains("REC ") && s.contains("/incident.grt ") && s.contains("● connected") && s.contains("STICKY")
        });
    let started = Instant::now();
    // Some seconds of sticky traffic first.
    dashboard
        .screen
        .wait_for("6 s of sticky", Duration::from_secs(60), |_| {
            started.elapsed() >= Duration::from_secs(6)
        });
    let mut frozen = vec![freeze(&mut dashboard)];
    let switched = SystemTime::now();
    press(&mut dashboard, b"m", "balanced", |s| s.contains("BALANCED"));
    dashboard.screen.wait_for("3 s balanced", Duration::from_secs(30), |_| {
        switched.elapsed().unwrap_or_default() >= Duration::from_secs(3)
    });
    frozen.push(freeze(&mut dashboard));
    press(&mut dashboard, b"x", "the kill to ask first", |s| {
        s.contains("press x again")
    });
    press(&mut dashboard, b"x", "a pod gone", pod_gone);
    frozen.push(freeze(&mut dashboard));
    assert!(frozen[0].1.contains("mode  STICKY"), "{}", frozen[0].1);
    assert!(
        frozen[1].1.contains("mode  BALANCED") && !pod_gone(&frozen[1].1),
        "{}",
        frozen[1].1
    );
    assert!(pod_gone(&frozen[2].1), "{}", frozen[2].1);
    // About 20 s of incident.
    dashboard
        .screen
        .wait_for("20 s recorded", Duration::from_secs(60), |_| {
            started.elapsed() >= Duration::from_secs(20)
        });
    dashboard.quit();

    let (start, end) = greet_top::recorded_span(&path).unwrap();
    assert!(end >= Duration::from_secs(15), "only {end:?} recorded");
    let switch_at = switched.duration_since(start).unwrap();

    // The whole recording: balanced at the end, the killed pod gone.
    let whole = replay_report(&path, &[]);
    assert_eq!(whole["mode"], "balanced");
    let pods = whole["pods"].as_array().unwrap();
    assert_eq!(pods.iter().filter(|p| p["gone"] == true).count(), 1, "{whole}");
    assert!(whole["total"].as_u64().unwrap() > 500, "{whole}");
    // Windows before and after the switch.
    let before = replay_report(
        &path,
        &["--to", &offset(switch_at.saturating_sub(Duration::from_millis(500)))],
    );
    assert_eq!(before["mode"], "sticky", "{before}");
    let after = replay_report(&path, &["--from", &offset(switch_at + Duration::from_secs(2))]);
    assert_eq!(after["mode"], "balanced", "{after}");
    assert!(
        before["total"].as_u64().unwrap() + after["total"].as_u64().unwrap() <= whole["total"].as_u64().unwrap(),
        "{before} {after} {whole}"
    );

    // On a screen: paused, at a time typed, sticky before the switch and
    // balanced with the pod gone at the end; m only says it is read-only.
    let mut replay = start_dashboard(&["replay", file], &[]);
    replay
        .screen
        .wait_for("the replay", Duration::from_secs(20), |s| s.contains("REPLAY "));
    press(&mut replay, b" ", "paused", |s| s.contains("PAUSED"));
    let early = switch_at.saturating_sub(Duration::from_millis(500));
    let early = format!("g+{}ms\r", early.as_millis());
    press(&mut replay, early.as_bytes(), "sticky before the switch", |s| {
        s.contains("mode  STICKY") && !pod_gone(s)
    });
    let late = format!("g+{}ms\r", end.as_millis());
    let shown = press(&mut replay, late.as_bytes(), "balanced, a pod gone", |s| {
        s.contains("mode  BALANCED") && pod_gone(s)
    });
    let length = format!("of {}m{:02}s)", end.as_secs() / 60, end.as_secs() % 60);
    assert!(shown.contains(&length), "{length} not in:\n{shown}");
    // Inside each freeze, the replay shows what was live: sticky, balanced,
    // a pod gone.
    for (pressed, live) in &frozen {
        let at = pressed.duration_since(start).unwrap() + Duration::from_millis(500);
        eprintln!("the live screen frozen at {}:\n{live}", offset(at));
        let seek = format!("g{}\r", offset(at));
        press(&mut replay, seek.as_bytes(), "the live screen", |s| {
            panels(s) == panels(live)
        });
    }
    press(&mut replay, b"m", "read-only", |s| s.contains("replay: read-only"));
    replay.press(b"q");
    replay.exits_cleanly();
    replay.assert_restored();

    // --from: the dashboard starts where the incident was.
    let late = offset(end.saturating_sub(Duration::from_secs(2)));
    let replay = start_dashboard(&["replay", file, "--from", &late], &[]);
    let shown = replay
        .screen
        .wait_for("the end, balanced", Duration::from_secs(20), |s| s.contains("REPLAY "));
    assert!(shown.contains("mode  BALANCED") && pod_gone(&shown), "{shown}");
    replay.quit();
    let to = greet_top(&["replay", file, "--to", &late]);
    assert_eq!(to.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&to.stderr),
        "Error: --to ends the window of a report: add --once (the dashboard plays on to the end)\n"
    );
}

#[test]
fn once_over_a_recording_equals_the_live_once_count_for_count() {
    let path = scratch("once").join("once.grt");
    let file = path.to_str().unwrap();
    let mut live = json(&greet_top(&[
        "demo", "--once", "5s", "--record", file, "--output", "json", "--mode", "balanced",
    ]));
    let mut replayed = replay_report(&path, &[]);
    assert!(live["total"].as_u64().unwrap() > 100, "{live}");
    // When each was printed, to the second: the only field not counted.
    live["at"] = Value::Null;
    replayed["at"] = Value::Null;
    assert_eq!(replayed, live);

    // Where the report cannot go: a full disk is an error said plainly, a
    // reader that went away (`| head`) is none; neither is a panic.
    let report_to = |stdout: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_greet-top"))
            .args(["replay", file, "--once"])
            .stdout(stdout)
            .output()
            .unwrap()
    };
    let full = report_to(std::fs::File::options().write(true).open("/dev/full").unwrap().into());
    assert_eq!(full.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&full.stderr),
        "Error: could not write the report to stdout: No space left on device (os error 28) \
         — check where stdout is redirected\n"
    );
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let gone = report_to(writer.into());
    assert_eq!(gone.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&gone.stderr), "");
}

#[test]
fn a_sigkilled_recording_replays_to_within_a_second_of_the_kill() {
    let path = scratch("sigkill").join("killed.grt");
    let file = path.to_str().unwrap();
    let mut dashboard = start_dashboard(&["demo", "--record", file], &[]);
    dashboard
        .screen
        .wait_for("recording, connected", Duration::from_secs(30), |s| {
            s.contains("REC ") && s.contains("/killed.grt ") && s.contains("● connected")
        });
    let started = Instant::now();
    dashboard.screen.wait_for("3 s recorded", Duration::from_secs(30), |_| {
        started.elapsed() >= Duration::from_secs(3)
    });
    let pid = dashboard.child.process_id().unwrap().to_string();
    let killed = SystemTime::now();
    let status = Command::new("kill").args(["-KILL", &pid]).status().unwrap();
    assert!(status.success());
    dashboard.exit_status("SIGKILL");

    let (start, end) = greet_top::recorded_span(&path).unwrap();
    let lost = killed.duration_since(start + end).unwrap_or_default();
    assert!(
        lost < Duration::from_secs(1),
        "the last {lost:?} before the kill were lost"
    );
    // The file replays (a cut last frame is said, not fatal).
    let output = greet_top(&["replay", file, "--once", "--output", "json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.is_empty() || stderr.starts_with(&format!("greet-top: {file}: truncated frame at byte ")),
        "{stderr}"
    );
}

/// A short real recording, and the byte offset of its first frame after the header.
fn recording(dir: &Path) -> (Vec<u8>, usize) {
    let path = dir.join("good.grt");
    json(&greet_top(&[
        "demo",
        "--once",
        "1s",
        "--record",
        path.to_str().unwrap(),
        "--output",
        "json",
    ]));
    let bytes = std::fs::read(&path).unwrap();
    let header = u32::from_le_bytes(bytes[10..14].try_into().unwrap()) as usize;
    (bytes, 10 + 8 + header)
}

#[test]
fn every_kind_of_damage_says_what_and_where() {
    let dir = scratch("damage");
    let (good, first) = recording(&dir);
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let mut corrupt = good.clone();
    corrupt[first + 8] ^= 0xff;
    let mut long = good.clone();
    long[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let replayed_up_to_there = [
        (
            write("truncated.grt", &good[..first + 5]),
            format!(
                "truncated frame at byte {first} (recorded +0m00s): replayed up to there — \
                 the recorder was killed or the disk filled"
            ),
        ),
        (
            write("corrupt.grt", &corrupt),
            format!(
                "checksum mismatch in the frame at byte {first} (recorded +0m00s): replayed up to there — \
                 the file was damaged after it was written"
            ),
        ),
        (
            write("long.grt", &long),
            format!(
                "the frame at byte {first} (recorded +0m00s) claims 4294967295 bytes, over the 16777216 limit: \
                 replayed up to there — the file is damaged"
            ),
        ),
    ];
    for (path, message) in replayed_up_to_there {
        let output = greet_top(&["replay", &path, "--once", "--output", "json"]);
        assert_eq!(output.status.code(), Some(0), "{path}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            format!("greet-top: {path}: {message}\n")
        );
        let report: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["total"], 0, "nothing before the damage: {report}");
    }
    let mut newer = good.clone();
    newer[8..10].copy_from_slice(&2u16.to_le_bytes());
    let refused = [
        (
            write("empty.grt", b""),
            "empty file — nothing was recorded (greet-top stopped before its first write)",
        ),
        (
            write("magic.grt", b"this is not a recording"),
            "not a greet-top recording (wrong magic) — pass a file written by greet-top --record",
        ),
        (
            write("newer.grt", &newer),
            "format version 2, newer than this greet-top reads (≤ 1) — replay it with a newer greet-top",
        ),
    ];
    for (path, message) in refused {
        for args in [vec!["replay", &path, "--once"], vec!["replay", &path]] {
            let output = greet_top(&args);
            assert_eq!(output.status.code(), Some(1), "{args:?}");
            assert_eq!(
                String::from_utf8_lossy(&output.stderr),
                format!("Error: {path}: {message}\n")
            );
        }
    }
}
