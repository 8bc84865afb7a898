//! The binary as a user starts it. (Being here also makes `cargo test` build
//! greet-top before the workspace's integration tests start it.)

use std::process::{Command, Stdio};

/// greet-top with `args` and no terminal: its exit code and stderr, trimmed.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    (output.status.code(), stderr)
}

#[test]
fn dashboard_without_a_terminal_says_what_to_use_instead() {
    let (code, stderr) = run(&["--gateway", "http://127.0.0.1:1", "--no-kube"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "Error: the dashboard needs a terminal (stdin and stdout); for scripts use --once 10s --output json"
    );
}

#[test]
fn a_recording_that_cannot_be_written_fails_before_anything_starts() {
    let (code, stderr) = run(&[
        "--gateway",
        "http://127.0.0.1:1",
        "--no-kube",
        "--once",
        "1s",
        "--record",
        "/nonexistent-dir/recording.grt",
    ]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "Error: cannot record to /nonexistent-dir/recording.grt: No such file or directory (os error 2) — \
         choose a writable --record path"
    );
}
