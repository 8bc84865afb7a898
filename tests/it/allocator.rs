//! greet-server and greet-gateway hand freed memory back to the system on
//! their own: jemalloc's background purging thread runs in each process.
//! Without it an idle pod keeps what an attack left (3.7–4.6× its warm RSS
//! in bench/attack-results.md), and nothing else in the suite would notice.

use std::time::Duration;

use greet_tests::server_process::Server;
use tokio::time::Instant;

use crate::binaries::start_gateway;

/// The names of the process's threads, from /proc.
fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    let mut names: Vec<String> = tasks
        .map(|task| std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap())
        .map(|name| name.trim_end().to_owned())
        .collect();
    names.sort();
    names
}

/// jemalloc names its purging threads so.
const PURGING_THREAD: &str = "jemalloc_bg_thd";

/// Waits (5 s at most) for a purging thread in `pid`: each thread names
/// itself once it runs, a moment after it is created.
async fn until_purging(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let names = thread_names(pid);
        if names.iter().any(|n| n == PURGING_THREAD) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {PURGING_THREAD} after 5 s; threads: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn greet_server_purges_freed_memory_in_the_background() {
    let server = Server::spawn("pod-a");
    server.until_listening().await;
    until_purging(server.pid()).await;
}

#[tokio::test]
async fn greet_gateway_purges_freed_memory_in_the_background() {
    let (gateway, _, _) = start_gateway("balanced");
    until_purging(gateway.pid()).await;
}
