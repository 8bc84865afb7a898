//! How each measurement's runs become figures and targets: the order of
//! runs (interleaved where figures are compared) and the ratios the suite
//! targets (bench/results.md). Items 1-3 are in throughput.rs.

use std::path::Path;

use super::results::Results;
use super::{Scale, failed};

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
