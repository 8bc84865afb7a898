//! Child processes of the suite (greet-server, greet-gateway, nginx, load
//! tools) and what /proc says about them. Each measured process is its own
//! process so that its CPU time and RSS are its own, not the bench's.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use greet_demo::rest_client::RestClient;
use greet_proto::Mode;

/// A child process, killed (SIGKILL) and reaped when dropped: also on a
/// panic or an early `?`, so no server outlives the suite.
pub(crate) struct Child {
    pub name: String,
    pub child: std::process::Child,
}

impl Child {
    pub(crate) fn spawn(name: &str, command: &mut Command) -> anyhow::Result<Child> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Child {
            name: name.to_owned(),
            child,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails when the process has already exited (e.g. nginx refusing its config).
    pub(crate) fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            Some(status) => bail!("{} exited early: {status}", self.name),
            None => Ok(()),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Which build's binaries: `cargo bench` builds the suite and the binaries
/// with the release profile, `cargo test --bench suite` with the debug one;
/// Cargo passes the matching paths.
pub(crate) fn binary(name: &str) -> PathBuf {
    PathBuf::from(match name {
        "greet-server" => env!("CARGO_BIN_EXE_greet-server"),
        "greet-gateway" => env!("CARGO_BIN_EXE_greet-gateway"),
        _ => env!("CARGO_BIN_EXE_greet-top"),
    })
}

/// A free port on `ip` (bound, then released for the child to take).
pub(crate) fn free_port(ip: Ipv4Addr) -> anyhow::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// The process's user + system CPU time so far, from /proc/<pid>/stat.
pub(crate) fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let after = stat.rfind(')').context("/proc/<pid>/stat format")? + 2;
    let fields: Vec<&str> = stat[after..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(Duration::from_secs_f64(ticks as f64 / clock_ticks()))
}

/// The summed CPU time of several processes.
pub(crate) fn total_cpu(pids: &[u32]) -> anyhow::Result<Duration> {
    pids.iter().map(|pid| cpu_time(*pid)).sum()
}

/// `pid` and all its descendants (from each /proc/<pid>/stat's parent), so
/// that a proxy's CPU counts every process it runs, workers included.
pub(crate) fn process_tree(pid: u32) -> anyhow::Result<Vec<u32>> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Some(child) = entry?.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may exit between the listing and the read.
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let parent = stat
            .rfind(')')
            .and_then(|i| stat[i + 2..].split(' ').nth(1)?.parse::<u32>().ok());
        if let Some(parent) = parent {
            parents.push((child, parent));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    Ok(tree)
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// VmRSS in KiB, from /proc/<pid>/status.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS format")?.parse()?)
}

/// Waits until something accepts TCP connections on `addr`.
pub(crate) async fn wait_listening(addr: SocketAddr, what: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("{what} did not listen on {addr} within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Three (or n) greet-server processes on 127.0.0.{first}.. named bench-pod-N.
pub(crate) struct Servers {
    /// Killed when the set is dropped; `None` while stopped.
    children: Vec<Option<Child>>,
    pub addrs: Vec<SocketAddr>,
}

/// How a greet-server is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    /// SIGTERM: it drains (finishes in-flight calls) and exits 0.
    Term,
    /// SIGKILL: a crash; calls in flight get no answer.
    Kill,
}

impl Servers {
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.children.iter().flatten().map(Child::pid).collect()
    }

    /// Stops server `i` and waits until it has exited (a drain: at most 10 s).
    pub(crate) async fn stop(&mut self, i: usize, signal: Signal) -> anyhow::Result<()> {
        let Some(mut server) = self.children[i].take() else {
            bail!("bench-pod-{i} is already stopped");
        };
        if signal == Signal::Kill {
            server.child.kill()?;
            server.child.wait()?;
            return Ok(());
        }
        let pid = server.pid().to_string();
        run_tool("kill", &["-TERM".to_owned(), pid]).await?;
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                anyhow::ensure!(status.success(), "{} exited with {status} on SIGTERM", server.name);
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("{} did not drain within 10 s of SIGTERM", server.name);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Starts server `i` again on its address, once it is stopped.
    pub(crate) async fn start(&mut self, i: usize) -> anyhow::Result<()> {
        anyhow::ensure!(self.children[i].is_none(), "bench-pod-{i} is running");
        let addr = self.addrs[i];
        self.children[i] = Some(spawn_server(i, addr)?);
        wait_listening(addr, "greet-server").await
    }
}

fn spawn_server(i: usize, addr: SocketAddr) -> anyhow::Result<Child> {
    let name = format!("bench-pod-{i}");
    Child::spawn(
        &name,
        Command::new(binary("greet-server"))
            // No metrics listener: servers on one host must not share its port.
            .args(["--listen", &addr.to_string(), "--metrics-port", "0"])
            .env("POD_NAME", &name)
            .env("POD_IP", addr.ip().to_string())
            .env("RUST_LOG", "warn"),
    )
}

pub(crate) async fn start_servers(n: u8, first_host: u8) -> anyhow::Result<Servers> {
    let (mut children, mut addrs) = (Vec::new(), Vec::new());
    for i in 0..n {
        let ip = Ipv4Addr::new(127, 0, 0, first_host + i);
        let addr = SocketAddr::from((ip, free_port(ip)?));
        children.push(Some(spawn_server(usize::from(i), addr)?));
        addrs.push(addr);
    }
    for addr in &addrs {
        wait_listening(*addr, "greet-server").await?;
    }
    Ok(Servers { children, addrs })
}

/// A greet-gateway process over `servers` (static discovery), sticky to the first.
pub(crate) struct Gateway {
    pub child: Child,
    pub rest_url: String,
    pub observe_url: String,
    pub rest: RestClient,
    /// The gRPC ingress.
    pub grpc_addr: SocketAddr,
}

pub(crate) async fn start_gateway(servers: &Servers, mode: Mode) -> anyhow::Result<Gateway> {
    start_gateway_via(servers, mode, servers.addrs[0]).await
}

/// A greet-gateway process over `servers` (static discovery), sticky to `sticky` (e.g. a Service),
/// at the default log level (what a user runs); its log lines to a file of the suite's temp dir.
pub(crate) async fn start_gateway_via(servers: &Servers, mode: Mode, sticky: SocketAddr) -> anyhow::Result<Gateway> {
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("greet-top-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let log = dir.join(format!("gateway-{n}.log"));
    start_gateway_logging(servers, mode, sticky, LogLevel::Default, Some(&log)).await
}

/// The gateway's log level: none set, what a user runs (the binary's
/// default, info), as every item runs it; or `RUST_LOG=warn`, beside it in
/// items 2 and 3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LogLevel {
    Default,
    Warn,
}

impl LogLevel {
    pub(crate) fn label(self) -> &'static str {
        match self {
            LogLevel::Default => "default log level",
            LogLevel::Warn => "RUST_LOG=warn",
        }
    }
}

/// A greet-gateway process as `start_gateway_via`, at `log`; its stderr
/// (the log lines) to the file `stderr` when given, as a cluster's log
/// collector would take them, else inherited.
pub(crate) async fn start_gateway_logging(
    servers: &Servers,
    mode: Mode,
    sticky: SocketAddr,
    log: LogLevel,
    stderr: Option<&std::path::Path>,
) -> anyhow::Result<Gateway> {
    let (rest_port, observe_port) = (free_port(Ipv4Addr::LOCALHOST)?, free_port(Ipv4Addr::LOCALHOST)?);
    let grpc_port = free_port(Ipv4Addr::LOCALHOST)?;
    let endpoints: Vec<String> = servers.addrs.iter().map(|a| a.to_string()).collect();
    let mut command = Command::new(binary("greet-gateway"));
    command
        .args(["--bind", "127.0.0.1", "--discovery", "static"])
        .args(["--mode", &mode.to_string()])
        .args(["--port", &rest_port.to_string()])
        .args(["--observe-port", &observe_port.to_string()])
        .args(["--grpc-port", &grpc_port.to_string()])
        .args(["--grpc-server-host", &sticky.ip().to_string()])
        .args(["--grpc-server-port", &sticky.port().to_string()])
        .args(["--endpoints", &endpoints.join(",")]);
    match log {
        LogLevel::Warn => command.env("RUST_LOG", "warn"),
        // Also when the suite's own environment sets one.
        LogLevel::Default => command.env_remove("RUST_LOG"),
    };
    if let Some(path) = stderr {
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        command.stderr(file);
    }
    let child = Child::spawn("greet-gateway", &mut command)?;
    let rest_url = format!("http://127.0.0.1:{rest_port}");
    let gateway = Gateway {
        child,
        rest: RestClient::new(rest_url.clone()),
        rest_url,
        observe_url: format!("http://127.0.0.1:{observe_port}"),
        grpc_addr: SocketAddr::from((Ipv4Addr::LOCALHOST, grpc_port)),
    };
    let started = Instant::now();
    while !gateway.rest.greet("Warm", "Up").await.is_ok_and(|r| r.status == 200) {
        if started.elapsed() > Duration::from_secs(10) {
            bail!("greet-gateway did not answer POST /greet within 10 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(gateway)
}

/// Runs a tool to completion and returns its stdout; fails on a non-zero
/// exit. Async, so that subscribers in this process keep reading meanwhile;
/// killed if the future is dropped.
pub(crate) async fn run_tool(program: &str, args: &[String]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {program}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "{program} {}: {}\n{stdout}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// `n` greet-servers as `start_servers`, server `i` run as `builds(i)`: a
/// binary and what to add to its environment (an allocator's settings).
pub(crate) async fn start_servers_as(
    n: u8,
    first_host: u8,
    builds: impl Fn(usize) -> (PathBuf, Vec<(String, String)>),
) -> anyhow::Result<Servers> {
    let (mut children, mut addrs) = (Vec::new(), Vec::new());
    for i in 0..n {
        let ip = Ipv4Addr::new(127, 0, 0, first_host + i);
        let addr = SocketAddr::from((ip, free_port(ip)?));
        let (binary, env) = builds(usize::from(i));
        let name = format!("bench-pod-{i}");
        let child = Child::spawn(
            &name,
            Command::new(binary)
                .args(["--listen", &addr.to_string(), "--metrics-port", "0"])
                .env("POD_NAME", &name)
                .env("POD_IP", addr.ip().to_string())
                .env("RUST_LOG", "warn")
                .envs(env),
        )?;
        children.push(Some(child));
        addrs.push(addr);
    }
    for addr in &addrs {
        wait_listening(*addr, "greet-server").await?;
    }
    Ok(Servers { children, addrs })
}
