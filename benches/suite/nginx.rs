//! Item 2: nginx `grpc_pass`, round robin over the same greet-servers, run
//! as the current user from a config the suite writes into a temp dir.
//! Upstream keepalive and `keepalive_requests` are raised on both sides: with
//! the defaults nginx closes a connection after 1,000 requests. One process
//! (`master_process off`, so one worker): the suite's kill on drop then
//! leaves no orphaned worker, and its CPU time is that one process's.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;

use anyhow::bail;

use super::peers::Proxy;
use super::procs::{Child, free_port, wait_listening};

pub(crate) fn config(dir: &Path, listen: SocketAddr, servers: &[SocketAddr]) -> String {
    let d = dir.display();
    let upstreams: String = servers.iter().map(|s| format!("        server {s};\n")).collect();
    format!(
        "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    upstream greet {{
{upstreams}        keepalive 512;
        keepalive_requests 1000000;
    }}
    server {{
        listen {listen} http2;
        keepalive_requests 1000000;
        location / {{
            grpc_pass grpc://greet;
        }}
    }}
}}
"
    )
}

/// Starts nginx on a free loopback port in front of `servers`; one process,
/// killed when dropped (its `Child`).
pub(crate) async fn start(dir: &Path, servers: &[SocketAddr]) -> anyhow::Result<Proxy> {
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(Ipv4Addr::LOCALHOST)?));
    let conf = dir.join("nginx.conf");
    std::fs::write(&conf, config(dir, listen, servers))?;
    let mut child = Child::spawn(
        "nginx",
        Command::new("nginx")
            .arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("error.log")),
    )?;
    if let Err(e) = wait_listening(listen, "nginx").await {
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        child.check_running()?;
        bail!("{e}; error.log: {log}");
    }
    child.check_running()?;
    Ok(Proxy {
        name: "nginx",
        child,
        addr: listen,
    })
}
