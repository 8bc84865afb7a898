//! How each measurement's runs become figures and targets: the order of
//! runs (interleaved where figures are compared) and the ratios the suite
//! targets (bench/results.md).

use std::path::Path;

use greet_proto::Mode;

use super::results::Results;
use super::{Scale, failed};

/// Items 1-3, interleaved run by run so that their ratios compare like with like.
pub(crate) async fn throughput(
    scale: &Scale,
    results: &mut Results,
    servers: &super::procs::Servers,
    dir: &Path,
    body: &Path,
    script: &Path,
) {
    let setup = async {
        let direct = servers.addrs[0];
        super::direct_grpc::check_grpc_ok(&direct.to_string(), 3).await?;
        let nginx = super::nginx::start(dir, &servers.addrs).await?;
        let pods = super::direct_grpc::check_grpc_ok(&nginx.addr.to_string(), 6).await?;
        anyhow::ensure!(
            pods.iter().collect::<std::collections::BTreeSet<_>>().len() == 3,
            "nginx did not round-robin: {pods:?}"
        );
        let gateway = super::procs::start_gateway(servers, Mode::Balanced).await?;
        let pods = super::direct_grpc::check_grpc_ok(&gateway.grpc_addr.to_string(), 6).await?;
        anyhow::ensure!(
            pods.iter().collect::<std::collections::BTreeSet<_>>().len() == 3,
            "the gateway's gRPC ingress did not round-robin: {pods:?}"
        );
        anyhow::Ok((direct, nginx, gateway))
    };
    let (direct, mut nginx, gateway) = match setup.await {
        Ok(s) => s,
        Err(e) => return failed(results, "throughput setup", e),
    };
    let (mut grpc, mut proxied, mut sticky, mut balanced) = (vec![], vec![], vec![], vec![]);
    let mut ingress = vec![];
    for run in 0..scale.runs {
        eprintln!("throughput run {}", run + 1);
        let one = async {
            let (requests, server_pids) = (scale.h2load_requests, servers.pids());
            grpc.push(super::direct_grpc::run(direct, requests, body, &server_pids).await?);
            let nginx_pids = [nginx.child.pid()];
            proxied.push(super::direct_grpc::run(nginx.addr, requests, body, &nginx_pids).await?);
            nginx.child.check_running()?;
            // The same h2load workload through the gateway's gRPC ingress, balanced.
            gateway.rest.set_mode(Mode::Balanced).await?;
            let gateway_pids = [gateway.child.pid()];
            ingress.push(super::direct_grpc::run(gateway.grpc_addr, requests, body, &gateway_pids).await?);
            sticky.push(super::rest::run(&gateway, servers, Mode::Sticky, scale.wrk_time, script).await?);
            balanced.push(super::rest::run(&gateway, servers, Mode::Balanced, scale.wrk_time, script).await?);
            anyhow::Ok(())
        };
        if let Err(e) = one.await {
            return failed(results, "throughput", e);
        }
    }
    // Each gRPC path's rate, CPU per request, p50 and p99, named as given; its rate and p99.
    let mut grpc_figures = |runs: &[super::direct_grpc::GrpcRun], [rate, cpu, p50, p99]: [&str; 4]| {
        let median_rate = results.figure_of(rate, "req/s", runs, |r| r.h2load.rate);
        results.figure_of(cpu, "µs", runs, |r| r.cpu_us);
        results.figure_of(p50, "ms", runs, |r| r.h2load.p50_ms);
        (median_rate, results.figure_of(p99, "ms", runs, |r| r.h2load.p99_ms))
    };
    let (direct_rate, _) = grpc_figures(
        &grpc,
        [
            "1. direct gRPC, h2load -c16 -m10, one greet-server",
            "1. greet-server CPU per request, direct",
            "1. direct gRPC p50",
            "1. direct gRPC p99",
        ],
    );
    let (nginx_rate, nginx_p99) = grpc_figures(
        &proxied,
        [
            "2. nginx grpc_pass round robin over 3 greet-servers",
            "2. nginx CPU per request (one process)",
            "2. nginx grpc_pass p50",
            "2. nginx grpc_pass p99",
        ],
    );
    let (ingress_rate, ingress_p99) = grpc_figures(
        &ingress,
        [
            "2i. gateway gRPC ingress, balanced over 3 greet-servers",
            "2i. gateway CPU per request, gRPC ingress",
            "2i. gateway gRPC ingress p50",
            "2i. gateway gRPC ingress p99",
        ],
    );
    results.ratio_target(
        "gRPC ingress / nginx grpc_pass throughput",
        ">= 1.5",
        ingress_rate / nginx_rate,
        1.5,
        f64::INFINITY,
    );
    results.ratio_target(
        "gRPC ingress p99 / nginx grpc_pass p99",
        "<= 1",
        ingress_p99 / nginx_p99,
        0.0,
        1.0,
    );
    results.ratio_target(
        "gRPC ingress / direct gRPC throughput",
        ">= 0.5",
        ingress_rate / direct_rate,
        0.5,
        f64::INFINITY,
    );
    let mut rest_figures = |mode: &str, runs: &[super::rest::RestRun]| {
        let rate = results.figure_of(format!("3. gateway REST {mode}, wrk -c32 -t2"), "req/s", runs, |r| {
            r.wrk.rate
        });
        results.figure_of(format!("3. gateway REST {mode} p50"), "ms", runs, |r| r.wrk.p50_ms);
        results.figure_of(format!("3. gateway REST {mode} p99"), "ms", runs, |r| r.wrk.p99_ms);
        results.figure_of(format!("3. gateway CPU per request, {mode}"), "µs", runs, |r| {
            r.gateway_us
        });
        results.figure_of(format!("3. greet-servers' CPU per request, {mode}"), "µs", runs, |r| {
            r.servers_us
        });
        rate
    };
    let s = rest_figures("sticky", &sticky);
    let b = rest_figures("balanced", &balanced);
    results.ratio_target("balanced / sticky throughput", ">= 0.95", b / s, 0.95, f64::INFINITY);
    results.ratio_target(
        "gateway REST (balanced) / direct gRPC",
        ">= 0.5",
        b / direct_rate,
        0.5,
        f64::INFINITY,
    );
}

/// Item 4; rows interleaved within each run.
pub(crate) async fn gateway_cpu(scale: &Scale, results: &mut Results, servers: &super::procs::Servers, script: &Path) {
    let rows = super::gateway_cpu::ROWS;
    let (mut cpu, mut rate) = (vec![vec![]; rows.len()], vec![vec![]; rows.len()]);
    for run in 0..scale.runs {
        eprintln!("gateway CPU run {}", run + 1);
        for (i, row) in rows.iter().enumerate() {
            match super::gateway_cpu::run(servers, *row, scale.cpu_time, script).await {
                Ok((c, r)) => {
                    cpu[i].push(c);
                    rate[i].push(r);
                }
                Err(e) => return failed(results, &format!("gateway CPU, {}", row.label()), e),
            }
        }
    }
    let mut medians = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        medians.push(results.figure(
            format!("4. gateway CPU per request, {}", row.label()),
            "µs",
            cpu[i].clone(),
        ));
        results.figure(
            format!("4. gateway req/s (wrk), {}", row.label()),
            "req/s",
            rate[i].clone(),
        );
    }
    results.ratio_target(
        "10 aggregated subscribers: gateway CPU/request vs none",
        "<= 1.05",
        medians[2] / medians[0],
        0.0,
        1.05,
    );
}

/// Item 5.
pub(crate) async fn greet_top_cpu(
    scale: &Scale,
    results: &mut Results,
    servers: &super::procs::Servers,
    script: &Path,
) {
    let mut runs = Vec::new();
    for run in 0..scale.runs {
        eprintln!("greet-top CPU run {}", run + 1);
        match super::greet_top_cpu::run(servers, 1000, scale.greet_top_time, script).await {
            Ok(r) => runs.push(r),
            Err(e) => return failed(results, "greet-top CPU", e),
        }
    }
    let paced = results.figure_of("5. greet-top CPU at ~1,000 req/s", "ms/s", &runs, |r| r.paced_cpu);
    results.figure_of("5. paced rate reached", "req/s", &runs, |r| r.paced_rate);
    let max = results.figure_of("5. greet-top CPU at full speed (wrk)", "ms/s", &runs, |r| r.max_cpu);
    results.figure_of("5. full-speed rate", "req/s", &runs, |r| r.max_rate);
    results.ratio_target(
        "greet-top CPU, full speed / 1,000 req/s",
        "<= 1.5",
        max / paced,
        0.0,
        1.5,
    );
}

/// Item 6.
pub(crate) async fn rebalance(scale: &Scale, results: &mut Results) {
    eprintln!("rebalance");
    let mut worst = 0f64;
    let static_registry = super::rebalance::static_registry(scale.rebalance_reps).await;
    let fake_api_server = super::rebalance::fake_api_server(scale.rebalance_reps).await;
    for (name, measured) in [
        (
            "6a. rebalance, LocalCluster registry: pod added to first request",
            static_registry,
        ),
        (
            "6b. rebalance, EndpointSlice via fake API server to first request",
            fake_api_server,
        ),
    ] {
        match measured {
            Ok(ms) => worst = worst.max(results.figure(name, "ms", ms)),
            Err(e) => failed(results, name, e),
        }
    }
    results.targets.push(super::results::Target {
        name: "rebalance latency (median, worse of a and b)",
        goal: "< 100 ms",
        measured: format!("{worst:.1} ms"),
        pass: worst < 100.0,
    });
}

/// Items 7 and 8.
pub(crate) async fn rss_and_totals(scale: &Scale, results: &mut Results, servers: &super::procs::Servers) {
    let mut runs = Vec::new();
    for run in 0..scale.rss_runs {
        eprintln!("RSS and totals run {}", run + 1);
        match super::rss::run(servers, scale.rss_first, scale.rss_total).await {
            Ok(r) => runs.push(r),
            Err(e) => {
                results.targets.push(super::results::Target {
                    name: "exact totals, 10 aggregated + 1 raw subscriber",
                    goal: "equal",
                    measured: "differ or failed".into(),
                    pass: false,
                });
                return failed(results, "RSS and exact totals", e);
            }
        }
    }
    let first = results.figure_of(
        format!("7. gateway VmRSS after {} requests", scale.rss_first),
        "KiB",
        &runs,
        |r| r.rss_first_kib,
    );
    let total = results.figure_of(
        format!("7. gateway VmRSS after {} requests", scale.rss_total),
        "KiB",
        &runs,
        |r| r.rss_total_kib,
    );
    results.figure_of(
        "7. rate with 10 aggregated + 1 raw subscriber (Rust clients)",
        "req/s",
        &runs,
        |r| r.rate,
    );
    results.ratio_target(
        "gateway RSS, after 1 M / after 100 k",
        "0.9 ..= 1.1",
        total / first,
        0.9,
        1.1,
    );
    results.targets.push(super::results::Target {
        name: "exact totals, 10 aggregated + 1 raw subscriber",
        goal: "equal",
        measured: format!("equal in {} of {} runs", runs.len(), scale.rss_runs),
        pass: true,
    });
}
