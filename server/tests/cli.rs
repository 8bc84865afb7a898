//! The binary as a user starts it. (Being here also makes `cargo test` build
//! greet-server before the workspace's integration tests start it.)

use std::process::Command;

#[test]
fn bad_flags_get_exit_code_2_and_name_the_flag_and_the_value() {
    let output = Command::new(env!("CARGO_BIN_EXE_greet-server"))
        .args(["--listen", "nonsense", "--metrics-port", "0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: invalid value 'nonsense' for '--listen <ADDR>': invalid socket address syntax"),
        "{stderr}"
    );
}
