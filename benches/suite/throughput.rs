//! Items 1-3: the direct gRPC limit, the peer proxies (nginx, HAProxy,
//! Envoy), the gateway's gRPC ingress and its REST path, the gateway at both
//! log levels. Every path is measured once per run, in the same runs, so that
//! ratios compare figures measured side by side on a shared machine.

use std::path::Path;

use greet_proto::Mode;

use super::direct_grpc::GrpcRun;
use super::peers::Proxy;
use super::procs::{Gateway, LogLevel, Servers};
use super::rest::RestRun;
use super::results::{PairedTarget, Results};
use super::{Scale, failed};

/// The two log levels each gateway figure is measured at.
const LEVELS: [LogLevel; 2] = [LogLevel::Default, LogLevel::Warn];

/// What one run measured.
struct Run {
    direct: GrpcRun,
    /// nginx, HAProxy, Envoy (`peers::start_all`'s order).
    peers: Vec<GrpcRun>,
    /// At each of `LEVELS`.
    gateways: Vec<GatewayRun>,
}

struct GatewayRun {
    ingress: GrpcRun,
    sticky: RestRun,
    balanced: RestRun,
}

/// The figures' names of a peer: its rate, CPU, p50 and p99.
const PEER_FIGURES: [[&str; 4]; 3] = [
    [
        "2. nginx grpc_pass round robin over 3 greet-servers",
        "2. nginx CPU per request",
        "2. nginx grpc_pass p50",
        "2. nginx grpc_pass p99",
    ],
    [
        "2h. HAProxy proto h2 round robin over 3 greet-servers",
        "2h. HAProxy CPU per request",
        "2h. HAProxy p50",
        "2h. HAProxy p99",
    ],
    [
        "2e. Envoy round robin over 3 greet-servers",
        "2e. Envoy CPU per request",
        "2e. Envoy p50",
        "2e. Envoy p99",
    ],
];

pub(crate) async fn measure(
    scale: &Scale,
    results: &mut Results,
    servers: &Servers,
    dir: &Path,
    body: &Path,
    script: &Path,
) {
    let setup = async {
        super::direct_grpc::check_grpc_ok(&servers.addrs[0].to_string(), 3).await?;
        let peers = super::peers::start_all(dir, &servers.addrs).await?;
        let mut gateways = Vec::new();
        for level in LEVELS {
            let log = dir.join(format!("gateway-{level:?}.log"));
            let gateway =
                super::procs::start_gateway_logging(servers, Mode::Balanced, servers.addrs[0], level, Some(&log))
                    .await?;
            let name = format!("the gateway's gRPC ingress ({})", level.label());
            super::peers::check_round_robin(&name, gateway.grpc_addr, servers.addrs.len()).await?;
            gateways.push(gateway);
        }
        anyhow::Ok((peers, gateways))
    };
    let (mut peers, gateways) = match setup.await {
        Ok(s) => s,
        Err(e) => return failed(results, "throughput setup", e),
    };
    let mut runs = Vec::new();
    for run in 0..scale.runs {
        eprintln!("throughput run {}", run + 1);
        results.sample_load(format!("throughput run {}", run + 1));
        match one_run(run, scale, servers, &mut peers, &gateways, body, script).await {
            Ok(r) => runs.push(r),
            Err(e) => return failed(results, "throughput", e),
        }
    }
    figures(results, &runs);
}

/// Every path once: direct, the peers, then the two gateways' ingress, REST
/// sticky and REST balanced side by side, which gateway goes first
/// alternating run by run.
async fn one_run(
    run: usize,
    scale: &Scale,
    servers: &Servers,
    peers: &mut [Proxy],
    gateways: &[Gateway],
    body: &Path,
    script: &Path,
) -> anyhow::Result<Run> {
    let requests = scale.h2load_requests;
    let direct = super::direct_grpc::run(servers.addrs[0], requests, body, &servers.pids()).await?;
    let mut peer_runs = Vec::new();
    for peer in peers.iter_mut() {
        peer_runs.push(super::direct_grpc::run(peer.addr, requests, body, &peer.pids()?).await?);
        peer.child.check_running()?;
    }
    let order = if run.is_multiple_of(2) { [0, 1] } else { [1, 0] };
    let mut ingress: [Option<GrpcRun>; 2] = [None, None];
    let mut sticky: [Option<RestRun>; 2] = [None, None];
    let mut balanced: [Option<RestRun>; 2] = [None, None];
    for &i in &order {
        let gateway = &gateways[i];
        gateway.rest.set_mode(Mode::Balanced).await?;
        ingress[i] = Some(super::direct_grpc::run(gateway.grpc_addr, requests, body, &[gateway.child.pid()]).await?);
    }
    for &i in &order {
        sticky[i] = Some(super::rest::run(&gateways[i], servers, Mode::Sticky, scale.wrk_time, script).await?);
    }
    for &i in &order {
        balanced[i] = Some(super::rest::run(&gateways[i], servers, Mode::Balanced, scale.wrk_time, script).await?);
    }
    let mut gateway_runs = Vec::new();
    for i in 0..LEVELS.len() {
        let (Some(ingress), Some(sticky), Some(balanced)) = (ingress[i].take(), sticky[i].take(), balanced[i].take())
        else {
            anyhow::bail!("a gateway missed a measurement");
        };
        gateway_runs.push(GatewayRun {
            ingress,
            sticky,
            balanced,
        });
    }
    Ok(Run {
        direct,
        peers: peer_runs,
        gateways: gateway_runs,
    })
}

/// A gRPC path's rate, CPU per request, p50 and p99 under `names`; returns
/// the medians of its rate and p99.
fn grpc_figures(results: &mut Results, runs: &[&GrpcRun], [rate, cpu, p50, p99]: [&str; 4]) -> (f64, f64) {
    let median_rate = results.figure_of(rate, "req/s", runs, |r| r.h2load.rate);
    results.figure_of(cpu, "µs", runs, |r| r.cpu_us);
    results.figure_of(p50, "ms", runs, |r| r.h2load.p50_ms);
    (median_rate, results.figure_of(p99, "ms", runs, |r| r.h2load.p99_ms))
}

fn figures(results: &mut Results, runs: &[Run]) {
    let direct: Vec<&GrpcRun> = runs.iter().map(|r| &r.direct).collect();
    let (direct_rate, _) = grpc_figures(
        results,
        &direct,
        [
            "1. direct gRPC, h2load -c16 -m10, one greet-server",
            "1. greet-server CPU per request, direct",
            "1. direct gRPC p50",
            "1. direct gRPC p99",
        ],
    );
    let mut peer_medians = Vec::new();
    for (i, names) in PEER_FIGURES.iter().enumerate() {
        let peer: Vec<&GrpcRun> = runs.iter().map(|r| &r.peers[i]).collect();
        peer_medians.push(grpc_figures(results, &peer, *names));
    }
    let (nginx_rate, nginx_p99) = peer_medians[0];
    for (g, level) in LEVELS.iter().enumerate() {
        let label = level.label();
        let ingress: Vec<&GrpcRun> = runs.iter().map(|r| &r.gateways[g].ingress).collect();
        let (ingress_rate, ingress_p99) = grpc_figures(
            results,
            &ingress,
            [
                &format!("2i. gateway gRPC ingress, balanced over 3 greet-servers, {label}"),
                &format!("2i. gateway CPU per request, gRPC ingress, {label}"),
                &format!("2i. gateway gRPC ingress p50, {label}"),
                &format!("2i. gateway gRPC ingress p99, {label}"),
            ],
        );
        rest_figures(results, "sticky", *level, runs.iter().map(|r| &r.gateways[g].sticky));
        let balanced = rest_figures(
            results,
            "balanced",
            *level,
            runs.iter().map(|r| &r.gateways[g].balanced),
        );
        // The targets the suite had before the peers, at what a user runs.
        if *level == LogLevel::Default {
            results.ratio_target(
                "gRPC ingress / nginx grpc_pass throughput (default log level)",
                ">= 1.5",
                ingress_rate / nginx_rate,
                1.5,
                f64::INFINITY,
            );
            results.ratio_target(
                "gRPC ingress p99 / nginx grpc_pass p99 (default log level)",
                "<= 1",
                ingress_p99 / nginx_p99,
                0.0,
                1.0,
            );
            results.ratio_target(
                "gRPC ingress / direct gRPC throughput (default log level)",
                ">= 0.5",
                ingress_rate / direct_rate,
                0.5,
                f64::INFINITY,
            );
            results.ratio_target(
                "gateway REST (balanced) / direct gRPC (default log level)",
                ">= 0.5",
                balanced / direct_rate,
                0.5,
                f64::INFINITY,
            );
        }
        paired_targets(results, runs, g, *level);
    }
}

/// Item 3's figures of one mode at one log level; returns the median rate.
fn rest_figures<'a>(
    results: &mut Results,
    mode: &str,
    level: LogLevel,
    runs: impl Iterator<Item = &'a RestRun>,
) -> f64 {
    let runs: Vec<&RestRun> = runs.collect();
    let label = level.label();
    let rate = results.figure_of(
        format!("3. gateway REST {mode}, wrk -c32 -t2, {label}"),
        "req/s",
        &runs,
        |r| r.wrk.rate,
    );
    results.figure_of(format!("3. gateway REST {mode} p50, {label}"), "ms", &runs, |r| {
        r.wrk.p50_ms
    });
    results.figure_of(format!("3. gateway REST {mode} p99, {label}"), "ms", &runs, |r| {
        r.wrk.p99_ms
    });
    results.figure_of(
        format!("3. gateway CPU per request, {mode}, {label}"),
        "µs",
        &runs,
        |r| r.gateway_us,
    );
    results.figure_of(
        format!("3. greet-servers' CPU per request, {mode}, {label}"),
        "µs",
        &runs,
        |r| r.servers_us,
    );
    rate
}

/// The targets against HAProxy and between the gateway's own paths, at one
/// log level: each a ratio per run (both sides from the same run), the
/// median of those judged, their spread shown.
fn paired_targets(results: &mut Results, runs: &[Run], g: usize, level: LogLevel) {
    const HAPROXY: usize = 1;
    let per_run = |f: &dyn Fn(&Run) -> f64| runs.iter().map(f).collect::<Vec<f64>>();
    let targets = [
        (
            "gRPC ingress / HAProxy throughput",
            ">= 1",
            per_run(&|r| r.gateways[g].ingress.h2load.rate / r.peers[HAPROXY].h2load.rate),
            1.0,
            f64::INFINITY,
        ),
        (
            "gRPC ingress p99 / HAProxy p99",
            "<= 1",
            per_run(&|r| r.gateways[g].ingress.h2load.p99_ms / r.peers[HAPROXY].h2load.p99_ms),
            0.0,
            1.0,
        ),
        (
            "gateway CPU per call, gRPC ingress / HAProxy",
            "<= 1",
            per_run(&|r| r.gateways[g].ingress.cpu_us / r.peers[HAPROXY].cpu_us),
            0.0,
            1.0,
        ),
        (
            "gateway CPU per call, REST balanced / gRPC ingress",
            "<= 1.5",
            per_run(&|r| r.gateways[g].balanced.gateway_us / r.gateways[g].ingress.cpu_us),
            0.0,
            1.5,
        ),
        (
            "REST balanced / sticky throughput",
            ">= 0.95",
            per_run(&|r| r.gateways[g].balanced.wrk.rate / r.gateways[g].sticky.wrk.rate),
            0.95,
            f64::INFINITY,
        ),
    ];
    for (name, goal, ratios, min, max) in targets {
        results
            .paired
            .push(PairedTarget::new(name, goal, level.label(), ratios, min, max));
    }
}
