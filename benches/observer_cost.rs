//! What watching costs the gateway: `cargo bench --bench observer_cost`.
//!
//! The gateway runs as its own process (the greet-gateway binary), so its CPU
//! time is its own: read from /proc/<pid>/stat before and after a fixed
//! number of POST /greet, balanced over three in-process greet-servers, with
//! 0, 1 and 10 Watch subscribers attached, aggregated (1-s summaries and a
//! 10/s sample, as a dashboard would ask) or raw (every request). Each
//! figure is the median of RUNS runs; compare figures of one run only (the
//! machine is shared). OBSERVER_COST_REQUESTS sets the requests per run;
//! OBSERVER_COST_GATEWAY another greet-gateway binary to measure (e.g. one
//! built from an older commit: one that predates summaries streams every
//! request to its "aggregated" subscribers too).

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use greet_top::proto::observe::observer_client::ObserverClient;
use greet_top::proto::observe::{WatchRequest, event};
use greet_top::tui::demo::{LocalPod, PodOptions};
use greet_top::tui::rest_client::RestClient;
use tokio::task::JoinHandle;

const CLIENTS: usize = 32;
const RUNS: usize = 3;

#[derive(Clone, Copy)]
enum Watchers {
    None,
    Aggregated(usize),
    Raw(usize),
}

impl Watchers {
    fn label(self) -> String {
        match self {
            Watchers::None => "no subscriber".into(),
            Watchers::Aggregated(n) => format!("{n} aggregated"),
            Watchers::Raw(n) => format!("{n} raw"),
        }
    }
}

/// The greet-gateway binary OBSERVER_COST_GATEWAY names, if any.
fn other_gateway() -> Option<String> {
    std::env::var("OBSERVER_COST_GATEWAY").ok().filter(|g| !g.is_empty())
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The process's user + system CPU time so far.
fn cpu_time(pid: u32, ticks_per_second: f64) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/<pid>/stat");
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let fields: Vec<&str> = stat[stat.rfind(')').expect("stat format") + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / ticks_per_second)
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Subscribers that read everything they are sent, as fast as they can.
async fn attach(observe: &str, watchers: Watchers) -> Vec<JoinHandle<()>> {
    let (n, request) = match watchers {
        Watchers::None => return Vec::new(),
        Watchers::Aggregated(n) => (
            n,
            WatchRequest {
                summary_interval_ms: 1000,
                sample_per_second: 10,
            },
        ),
        Watchers::Raw(n) => (n, WatchRequest::default()),
    };
    let mut readers = Vec::new();
    for _ in 0..n {
        let mut client = ObserverClient::connect(observe.to_owned()).await.expect("Observer");
        let mut stream = client.watch(request).await.expect("Watch").into_inner();
        let first = stream.message().await.expect("snapshot").and_then(|e| e.kind);
        assert!(matches!(first, Some(event::Kind::Snapshot(_))));
        readers.push(tokio::spawn(async move {
            let _client = client;
            while let Ok(Some(_)) = stream.message().await {}
        }));
    }
    readers
}

/// Sends `requests` POST /greet from CLIENTS keep-alive clients; returns the wall time.
async fn load(rest: &RestClient, requests: usize) -> Duration {
    let started = Instant::now();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let rest = rest.clone();
            tokio::spawn(async move {
                for _ in 0..requests / CLIENTS {
                    let response = rest.greet("Bench", "Mark").await.expect("request");
                    assert_eq!(response.status, 200, "{}", response.body);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("worker");
    }
    started.elapsed()
}

struct Gateway {
    child: Child,
    rest: RestClient,
    observe: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_gateway(pods: &[SocketAddr]) -> Gateway {
    let (rest_port, observe_port) = (free_port(), free_port());
    let endpoints: Vec<String> = pods.iter().map(|a| a.to_string()).collect();
    let binary = other_gateway().unwrap_or_else(|| env!("CARGO_BIN_EXE_greet-gateway").into());
    let child = Command::new(binary)
        .args(["--bind", "127.0.0.1", "--mode", "balanced", "--discovery", "static"])
        .args([
            "--port",
            &rest_port.to_string(),
            "--observe-port",
            &observe_port.to_string(),
        ])
        .args(["--endpoints", &endpoints.join(",")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("greet-gateway");
    let gateway = Gateway {
        child,
        rest: RestClient::new(format!("http://127.0.0.1:{rest_port}")),
        observe: format!("http://127.0.0.1:{observe_port}"),
    };
    for _ in 0..200 {
        if gateway.rest.greet("Warm", "Up").await.is_ok_and(|r| r.status == 200) {
            return gateway;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("greet-gateway did not answer within 5 s");
}

#[tokio::main]
async fn main() {
    let requests: usize = std::env::var("OBSERVER_COST_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let options = PodOptions {
        max_connection_age: None,
        drain_timeout: Duration::from_secs(1),
    };
    let mut pods = Vec::new();
    for i in 0..3u8 {
        let addr = SocketAddr::from(([127, 0, 0, 61 + i], 0));
        pods.push(
            LocalPod::start(format!("bench-pod-{i}"), addr, options)
                .await
                .expect("pod"),
        );
    }
    let addrs: Vec<SocketAddr> = pods.iter().map(|p| p.addr).collect();
    let ticks = clock_ticks();
    println!(
        "observer_cost: {} cores, {requests} requests x {RUNS} runs per row, {CLIENTS} clients, balanced over 3 pods{}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        other_gateway().map_or(String::new(), |g| format!(", gateway {g}")),
    );
    let rows = [
        Watchers::None,
        Watchers::Aggregated(1),
        Watchers::Aggregated(10),
        Watchers::Raw(1),
        Watchers::Raw(10),
    ];
    let mut baseline = None;
    for watchers in rows {
        let (mut cpu_us, mut rates) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            let gateway = start_gateway(&addrs).await;
            load(&gateway.rest, 1_000).await;
            let readers = attach(&gateway.observe, watchers).await;
            let pid = gateway.child.id();
            let before = cpu_time(pid, ticks);
            let wall = load(&gateway.rest, requests).await;
            let used = cpu_time(pid, ticks) - before;
            cpu_us.push(used.as_secs_f64() * 1e6 / requests as f64);
            rates.push(requests as f64 / wall.as_secs_f64());
            drop(gateway);
            for reader in readers {
                reader.abort();
            }
        }
        let (cpu, rate) = (median(&mut cpu_us), median(&mut rates));
        let base = *baseline.get_or_insert(cpu);
        println!(
            "{:>14}: gateway CPU {cpu:>6.1} us/request ({:+5.1} %), {rate:>7.0} req/s   runs: {}",
            watchers.label(),
            (cpu / base - 1.0) * 100.0,
            cpu_us.iter().map(|c| format!("{c:.1}")).collect::<Vec<_>>().join(" "),
        );
    }
    for mut pod in pods {
        let _ = pod.stop().await;
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
