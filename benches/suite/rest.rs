//! Item 3: the gateway's REST path, sticky and balanced, driven by wrk
//! (-c32 -t2) with the article's JSON body. One gateway process serves both
//! modes (switched with PUT /mode), so the two differ in the mode alone.

use std::path::Path;
use std::time::Duration;

use anyhow::ensure;
use greet_proto::Mode;

use super::loadgen::{self, WrkResult};
use super::procs::{Gateway, Servers, cpu_time, total_cpu};

/// What one run measured: wrk's figures, and the CPU µs per request of the
/// gateway and of the greet-servers (so a throughput gap can be traced to a process).
pub(crate) struct RestRun {
    pub wrk: WrkResult,
    pub gateway_us: f64,
    pub servers_us: f64,
}

pub(crate) async fn run(
    gateway: &Gateway,
    servers: &Servers,
    mode: Mode,
    duration: Duration,
    script: &Path,
) -> anyhow::Result<RestRun> {
    let response = gateway.rest.set_mode(mode).await?;
    ensure!(response.status == 200, "PUT /mode {mode}: {}", response.body);
    let (gateway_pid, server_pids) = (gateway.child.pid(), servers.pids());
    let (gateway_before, servers_before) = (cpu_time(gateway_pid)?, total_cpu(&server_pids)?);
    let wrk = loadgen::wrk(&gateway.rest_url, duration, script).await?;
    let per_request = |d: Duration| d.as_secs_f64() * 1e6 / wrk.requests as f64;
    Ok(RestRun {
        gateway_us: per_request(cpu_time(gateway_pid)? - gateway_before),
        servers_us: per_request(total_cpu(&server_pids)? - servers_before),
        wrk,
    })
}
