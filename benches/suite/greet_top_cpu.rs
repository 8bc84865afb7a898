//! Item 5: greet-top's own CPU at 1,000 req/s and at the highest rate wrk
//! reaches, the real binary attached to a gateway process and drawing into a
//! pseudo-terminal of fixed size (so it renders as it would for a person).

use std::io::Read;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use greet_proto::Mode;
use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use tokio_util::sync::CancellationToken;

use super::loadgen;
use super::procs::{Servers, binary, cpu_time, start_gateway};

/// greet-top in a 100x30 pseudo-terminal; killed when dropped.
pub(crate) struct Dashboard {
    pub(crate) child: Box<dyn portable_pty::Child + Send + Sync>,
    _master: Box<dyn portable_pty::MasterPty + Send>,
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// greet-top in a pseudo-terminal, its arguments and environment set by
/// `configure` (TERM is set here).
pub(crate) fn start_dashboard(configure: impl FnOnce(&mut CommandBuilder)) -> anyhow::Result<Dashboard> {
    let size = PtySize {
        rows: 30,
        cols: 100,
        pixel_width: 0,
        pixel_height: 0,
    };
    let pty = native_pty_system().openpty(size).map_err(|e| anyhow!("openpty: {e}"))?;
    let mut command = CommandBuilder::new(binary("greet-top"));
    command.env("TERM", "xterm-256color");
    configure(&mut command);
    let child = pty
        .slave
        .spawn_command(command)
        .map_err(|e| anyhow!("greet-top: {e}"))?;
    drop(pty.slave);
    // The terminal's output must be read, or greet-top blocks writing frames.
    let mut reader = pty.master.try_clone_reader().map_err(|e| anyhow!("pty reader: {e}"))?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 16384];
        while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
    });
    Ok(Dashboard {
        child,
        _master: pty.master,
    })
}

/// What one run measured: greet-top's CPU ms per second of wall time and the
/// request rate, at the paced rate and at full speed.
pub(crate) struct GreetTopCpu {
    pub paced_cpu: f64,
    pub paced_rate: f64,
    pub max_cpu: f64,
    pub max_rate: f64,
}

pub(crate) async fn run(
    servers: &Servers,
    paced_rate: u32,
    duration: Duration,
    script: &Path,
) -> anyhow::Result<GreetTopCpu> {
    let gateway = start_gateway(servers, Mode::Balanced).await?;
    let dashboard = start_dashboard(|command| {
        command.args(["--gateway", &gateway.observe_url, "--no-kube"]);
    })?;
    let pid = dashboard.child.process_id().context("greet-top has no pid")?;
    // Let it connect and draw its first frames.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let stop = CancellationToken::new();
    let _stop_on_exit = stop.clone().drop_guard();
    let (counts, _workers) = loadgen::paced(&gateway.rest, paced_rate, &stop);
    let sent = &counts.succeeded;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu_before, sent_before, started) = (cpu_time(pid)?, sent.load(Ordering::Relaxed), Instant::now());
    tokio::time::sleep(duration).await;
    let wall = started.elapsed().as_secs_f64();
    let paced_cpu = (cpu_time(pid)? - cpu_before).as_secs_f64() * 1e3 / wall;
    let paced_rate = (sent.load(Ordering::Relaxed) - sent_before) as f64 / wall;
    stop.cancel();

    let (cpu_before, started) = (cpu_time(pid)?, Instant::now());
    let load = loadgen::wrk(&gateway.rest_url, duration, script).await?;
    let max_cpu = (cpu_time(pid)? - cpu_before).as_secs_f64() * 1e3 / started.elapsed().as_secs_f64();
    drop(dashboard);
    Ok(GreetTopCpu {
        paced_cpu,
        paced_rate,
        max_cpu,
        max_rate: load.rate,
    })
}
