//! Item 2h: HAProxy (Debian `haproxy`, 2.6) as a peer of nginx and the
//! gateway's ingress: an HTTP/2 (cleartext) frontend, `proto h2` backends
//! over the same greet-servers, `balance roundrobin`, two threads. Run in the
//! foreground (`-db`: no daemon, no master process), so it is one process the
//! suite kills on drop, and its CPU time is that process's.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};

use super::peers::Proxy;
use super::procs::{Child, free_port, wait_listening};

pub(crate) fn config(listen: SocketAddr, servers: &[SocketAddr]) -> String {
    let backends: String = servers
        .iter()
        .enumerate()
        .map(|(i, s)| format!("    server pod{i} {s} proto h2\n"))
        .collect();
    // No `log` line: no per-request logging, as nginx runs with access_log off.
    format!(
        "global
    nbthread 2
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend greet
    bind {listen} proto h2
    default_backend greet

backend greet
    balance roundrobin
{backends}"
    )
}

/// Starts HAProxy on a free loopback port in front of `servers`; its config
/// and stderr in `dir`.
pub(crate) async fn start(dir: &Path, servers: &[SocketAddr]) -> anyhow::Result<Proxy> {
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(Ipv4Addr::LOCALHOST)?));
    let conf = dir.join("haproxy.cfg");
    std::fs::write(&conf, config(listen, servers))?;
    let log = dir.join("haproxy.log");
    let stderr = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let mut child = Child::spawn(
        "haproxy",
        Command::new("haproxy").arg("-db").arg("-f").arg(&conf).stderr(stderr),
    )
    .context("HAProxy is not installed (Debian haproxy; bench/run installs it as root)")?;
    if let Err(e) = wait_listening(listen, "haproxy").await {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        child
            .check_running()
            .with_context(|| format!("haproxy's stderr: {log}"))?;
        bail!("{e}; haproxy's stderr: {log}");
    }
    child.check_running()?;
    Ok(Proxy {
        name: "haproxy",
        child,
        addr: listen,
    })
}
