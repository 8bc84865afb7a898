//! The binary as a user starts it. (Being here also makes `cargo test` build
//! greet-top before the workspace's integration tests start it.)

use std::process::{Command, Stdio};

#[test]
fn dashboard_without_a_terminal_says_what_to_use_instead() {
    let output = Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["--gateway", "http://127.0.0.1:1", "--no-kube"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "Error: the dashboard needs a terminal (stdin and stdout); for scripts use --once 10s --output json"
    );
}

#[test]
fn a_recording_that_cannot_be_written_fails_before_anything_starts() {
    let output = Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["--gateway", "http://127.0.0.1:1", "--no-kube", "--once", "1s"])
        .args(["--record", "/nonexistent-dir/recording.grt"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "Error: cannot record to /nonexistent-dir/recording.grt: No such file or directory (os error 2) — \
         choose a writable --record path"
    );
}
