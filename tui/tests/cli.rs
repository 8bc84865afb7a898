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
