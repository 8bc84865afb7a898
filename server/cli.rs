//! greet-server's flags and start-up: the binary parses [`Args`] and calls [`run`].

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use super::{ServerConfig, serve_with_metrics};
use greet_runtime::logging::LogArgs;
use greet_runtime::shutdown::termination_signal;

/// The Greet gRPC service: replies `Hello, <first> <last> from pod: name(<POD_NAME>), ip(<POD_IP>).`
/// Also serves grpc.health.v1.Health and server reflection.
#[derive(Parser, Debug)]
#[command(version)]
pub struct Args {
    /// Port to listen on (all interfaces).
    #[arg(long, env = "GRPC_PORT", default_value_t = 50051)]
    port: u16,
    /// Exact address to listen on, e.g. 127.0.0.2:50051; overrides --port.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Pod name reported in replies (Kubernetes: from the downward API).
    #[arg(long, env = "POD_NAME")]
    pod_name: Option<String>,
    /// Pod IP reported in replies (Kubernetes: from the downward API).
    #[arg(long, env = "POD_IP")]
    pod_ip: Option<String>,
    /// Close each connection with GOAWAY after this age (e.g. 30s; ±10 % a
    /// connection, so they do not all reconnect at once; calls in flight
    /// finish), so clients reconnect and connection-level balancing gets
    /// another chance. Off by default.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    max_connection_age: Option<Duration>,
    /// On SIGTERM, report NOT_SERVING for this long before refusing new connections.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION")]
    shutdown_delay: Duration,
    /// After that, wait at most this long for in-flight calls and connections to finish.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "20s", value_name = "DURATION")]
    drain_timeout: Duration,
    /// Wait this long before every reply (e.g. 25ms): a slow pod, to watch
    /// least-loaded mode steer around it. Off by default.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s", value_name = "DURATION")]
    reply_delay: Duration,
    /// Port of the Prometheus metrics listener (GET /metrics), on the gRPC
    /// listener's IP; 0 turns it off.
    #[arg(long, env = "METRICS_PORT", default_value_t = 9090)]
    metrics_port: u16,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Runs greet-server with `args` until SIGTERM or SIGINT, then drains.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // First: from here on, SIGTERM drains instead of killing.
    let terminated = termination_signal();
    let listen = args
        .listen
        .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), args.port));
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}: is another process using the port? Try --port"))?;
    let pod_name = args
        .pod_name
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "greet-server".to_owned());
    let pod_ip = args.pod_ip.unwrap_or_else(|| {
        if listen.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            listen.ip().to_string()
        }
    });
    // On the gRPC listener's IP (all interfaces when that is 0.0.0.0), so
    // servers on 127.0.0.2, .3, ... each have their own.
    let metrics_listener = match args.metrics_port {
        0 => None,
        port => {
            let addr = SocketAddr::new(listen.ip(), port);
            Some(tokio::net::TcpListener::bind(addr).await.with_context(|| {
                format!("cannot listen for metrics on {addr}: is another process using the port? Try --metrics-port (0 turns metrics off)")
            })?)
        }
    };
    let config = ServerConfig {
        pod_name,
        pod_ip,
        max_connection_age: args.max_connection_age,
        shutdown_delay: args.shutdown_delay,
        drain_timeout: args.drain_timeout,
        reply_delay: crate::ReplyDelay::new(args.reply_delay),
    };
    serve_with_metrics(listener, metrics_listener, config, terminated).await
}
