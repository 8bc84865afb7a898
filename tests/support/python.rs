//! The Python greet server fixture (tests/fixtures/python): grpcio with
//! py-grpc-prometheus, a gRPC stack greet-top was not written with.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// The Python greet server, killed when dropped.
pub struct PythonGreetServer {
    _process: tokio::process::Child,
    pub grpc: SocketAddr,
    pub metrics: SocketAddr,
}

/// Starts tests/fixtures/python/greet_server.py with `$GREET_PYTHON` on loopback, ports 0, and
/// reads the ports it prints. `None` (the test then passes without running, saying so) when
/// `GREET_PYTHON` is unset: `cargo test` with only the Rust toolchain. .ci/run sets it.
pub async fn greet_server(pod_name: &str) -> Option<PythonGreetServer> {
    use tokio::io::AsyncBufReadExt;
    let Some(python) = std::env::var_os("GREET_PYTHON") else {
        eprintln!("skipped: GREET_PYTHON is unset; export GREET_PYTHON=$(tests/fixtures/python/venv.sh) to run it");
        return None;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/python/greet_server.py");
    let mut process = tokio::process::Command::new(&python)
        .arg(&script)
        .env("LISTEN", "127.0.0.1")
        .env("GRPC_PORT", "0")
        .env("METRICS_PORT", "0")
        .env("POD_NAME", pod_name)
        .env("POD_IP", "10.1.0.9")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {python:?} {script:?}: {e}"));
    let stdout = process.stdout.take().unwrap();
    let line = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::io::BufReader::new(stdout).lines().next_line(),
    )
    .await
    .expect("the Python server's ports within 30 s")
    .unwrap()
    .expect("greet_server.py prints its ports before anything else");
    let ports: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    let port = |key: &str| ports[key].as_u64().and_then(|p| u16::try_from(p).ok()).unwrap();
    Some(PythonGreetServer {
        _process: process,
        grpc: SocketAddr::from(([127, 0, 0, 1], port("grpc_port"))),
        metrics: SocketAddr::from(([127, 0, 0, 1], port("metrics_port"))),
    })
}
