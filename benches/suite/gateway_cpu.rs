//! Item 4 (formerly benches/observer_cost.rs): the gateway's CPU time per
//! request with 0, 1 and 10 Watch subscribers, aggregated and raw. The
//! gateway is its own process, so /proc/<pid>/stat before and after a wrk
//! run gives its CPU alone; a fresh gateway per measurement, so that a raw
//! subscriber's hand-over to locked counting does not outlive its row.

use std::path::Path;
use std::time::Duration;

use greet_proto::Mode;

use super::loadgen;
use super::procs::{Servers, cpu_time, start_gateway};
use super::subscribers::{self, Kind};

#[derive(Clone, Copy)]
pub(crate) enum Watchers {
    None,
    Aggregated(usize),
    Raw(usize),
}

pub(crate) const ROWS: [Watchers; 5] = [
    Watchers::None,
    Watchers::Aggregated(1),
    Watchers::Aggregated(10),
    Watchers::Raw(1),
    Watchers::Raw(10),
];

impl Watchers {
    pub(crate) fn label(self) -> String {
        match self {
            Watchers::None => "no subscriber".into(),
            Watchers::Aggregated(n) => format!("{n} aggregated"),
            Watchers::Raw(n) => format!("{n} raw"),
        }
    }
}

/// One measurement: (gateway CPU µs per request, req/s), balanced over `servers`.
pub(crate) async fn run(
    servers: &Servers,
    watchers: Watchers,
    duration: Duration,
    script: &Path,
) -> anyhow::Result<(f64, f64)> {
    let gateway = start_gateway(servers, Mode::Balanced).await?;
    // Connections to every pod, before the measured window.
    for _ in 0..100 {
        gateway.rest.greet("Warm", "Up").await?;
    }
    let _readers = match watchers {
        Watchers::None => None,
        Watchers::Aggregated(n) => Some(subscribers::readers(&gateway.observe_url, Kind::Aggregated, n).await?),
        Watchers::Raw(n) => Some(subscribers::readers(&gateway.observe_url, Kind::Raw, n).await?),
    };
    let pid = gateway.child.pid();
    let before = cpu_time(pid)?;
    let load = loadgen::wrk(&gateway.rest_url, duration, script).await?;
    let used = cpu_time(pid)? - before;
    Ok((used.as_secs_f64() * 1e6 / load.requests as f64, load.rate))
}
