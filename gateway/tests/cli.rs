//! The binary as a user starts it. (Being here also makes `cargo test` build
//! greet-gateway before the workspace's integration tests start it.)

use std::process::Command;

#[test]
fn gateway_binary_rejects_bad_flags_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
        .args(["--discovery", "static", "--endpoints", "10.0.0.1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid --endpoints") && stderr.contains("endpoint \"10.0.0.1\" is not host:port"),
        "{stderr}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_greet-gateway"))
        .args(["--mode", "random"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("possible values: sticky, balanced"));
}
