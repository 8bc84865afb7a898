//! A real greet-server process on 127.0.0.1 for tests that signal it
//! (SIGKILL: dead; SIGSTOP: hung with its connections open; SIGCONT).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::time::Instant;

/// A greet-server process; continued and killed on drop, so a failed
/// assertion leaves no stopped process behind.
pub struct Server {
    child: Child,
    pub address: String,
}

impl Server {
    /// Starts greet-server as pod `name` on a port of its own choosing.
    pub fn spawn(name: &str) -> Server {
        let (child, line) = crate::listening::spawn_until_logged(
            Command::new(env!("CARGO_BIN_EXE_greet-server"))
                .args(["--listen", "127.0.0.1:0", "--pod-name", name, "--metrics-port", "0"])
                .stdout(Stdio::null()),
            "greet-server listening",
        );
        let address = crate::listening::address_in(&line, "addr").to_string();
        Server { child, address }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` ("-KILL", "-STOP", "-CONT") to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Waits (20 s at most) until the server accepts connections.
    pub async fn until_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&self.address).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "nothing listens on {} after 20 s",
                self.address
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
