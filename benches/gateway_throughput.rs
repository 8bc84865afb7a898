//! Throughput and latency of the gateway's request path, sticky vs balanced,
//! on loopback: `cargo bench --bench gateway_throughput`.
//!
//! Three greet-servers and a gateway run in-process; CONCURRENCY clients
//! POST /greet over keep-alive HTTP/1.1 for a fixed number of requests.
//! Prints requests per second and client-side p50/p99 latency per mode.

use std::time::{Duration, Instant};

use greet_top::common::Mode;
use greet_top::gateway::upstream::UpstreamTimeouts;
use greet_top::tui::demo::{ClusterConfig, GatewaySpec, LocalCluster, PodNames, StickyTarget};
use greet_top::tui::rest_client::RestClient;

const REQUESTS: usize = 20_000;
const CONCURRENCY: usize = 32;

async fn run_mode(rest: &RestClient, mode: Mode) {
    assert_eq!(rest.set_mode(mode).await.expect("PUT /mode").status, 200);
    // Warm up connections.
    for _ in 0..200 {
        rest.greet("Warm", "Up").await.expect("warm-up request");
    }
    let started = Instant::now();
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let rest = rest.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(REQUESTS / CONCURRENCY);
                for _ in 0..REQUESTS / CONCURRENCY {
                    let sent = Instant::now();
                    let response = rest.greet("Bench", "Mark").await.expect("request");
                    assert_eq!(response.status, 200, "{}", response.body);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(REQUESTS);
    for worker in workers {
        latencies.extend(worker.await.expect("worker"));
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1];
    println!(
        "{mode:>8}: {} requests, {CONCURRENCY} clients, {:>8.0} req/s, p50 {:>7.3} ms, p99 {:>7.3} ms",
        latencies.len(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
}

#[tokio::main]
async fn main() {
    let defaults = ClusterConfig::default();
    // Three pods on 127.0.0.51-53; sticky dials the first pod itself, so the
    // numbers are the gateway's alone, without the Service proxy's extra copy.
    let config = ClusterConfig {
        pods: 3,
        first_host: 51,
        preferred_port: None,
        names: PodNames::Numbered {
            prefix: "bench-pod".into(),
        },
        sticky: StickyTarget::FirstPod,
        gateway: GatewaySpec {
            name: "bench".into(),
            discovery_name: "bench registry".into(),
            timeouts: UpstreamTimeouts::default(),
            ..defaults.gateway.clone()
        },
        ..defaults
    };
    let cluster = LocalCluster::start(config).await.expect("cluster");
    tokio::time::sleep(Duration::from_millis(100)).await;
    println!(
        "gateway_throughput: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for mode in [Mode::Sticky, Mode::Balanced] {
        run_mode(cluster.rest(), mode).await;
    }
    cluster.shutdown().await;
}
