//! Processes started on port 0, their addresses read from their "listening"
//! log line. Picking a free port beforehand (bind 0, release, pass it on)
//! races with the suite's other port-0 binds: one of them can take the port
//! between its release and the process's bind.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Spawns `command` with stderr piped and waits (20 s at most) for the first
/// stderr line containing `marker`; returns the child and that line. Panics
/// with the log so far when the process exits first.
pub fn spawn_until_logged(command: &mut Command, marker: &'static str) -> (Child, String) {
    let mut child = command
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the process");
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, rx) = std::sync::mpsc::channel();
    // Keeps reading after the line: a full pipe would stall the process.
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains(marker) {
                let _ = tx.send(Ok(line));
            } else if seen.len() < 50 {
                seen.push(line);
            }
        }
        let _ = tx.send(Err(seen.join("\n")));
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Ok(line)) => (child, line),
        Ok(Err(log)) => {
            let _ = child.kill();
            panic!("the process exited before logging {marker:?}:\n{log}")
        }
        Err(_) => {
            let _ = child.kill();
            panic!("the process logged no {marker:?} line within 20 s")
        }
    }
}

/// The address in a `field=ADDR` pair of a text log line.
pub fn address_in(line: &str, field: &str) -> SocketAddr {
    let prefix = format!("{field}=");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {field}= in {line:?}"))
        .parse()
        .unwrap_or_else(|err| panic!("{field} in {line:?}: {err}"))
}
