//! Sticky mode through a Service across a rolling restart and a crash of every
//! greet-server: no request fails. Real greet-server processes (SIGTERM: the
//! binary's drain; SIGKILL: a crash), the kube-proxy-like Service proxy and a
//! real gateway in sticky mode, all on loopback, under a steady load.

#[allow(
    dead_code,
    reason = "the shared fixtures: these servers are processes, not a LocalCluster's"
)]
use greet_tests as support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use greet_demo::rest_client::RestClient;
use greet_demo::service_proxy;
use greet_gateway::discovery::{self, DiscoveryHealth};
use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{WatchRequest, event};
use support::load::Load;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// A greet-server process, killed when dropped.
struct Server {
    name: String,
    addr: SocketAddr,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pod `ordinal`: the greet-server binary on 127.0.0.(20 + ordinal % 3), any free port.
async fn start_server(ordinal: usize) -> Server {
    let ip = Ipv4Addr::new(127, 0, 0, 20 + (ordinal % 3) as u8);
    let port = std::net::TcpListener::bind((ip, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = SocketAddr::from((ip, port));
    let name = format!("greetserver-roll-{ordinal}");
    let child = Command::new(env!("CARGO_BIN_EXE_greet-server"))
        .args(["--listen", &addr.to_string(), "--drain-timeout", "5s"])
        // No metrics listener: the servers on this host must not share its port.
        .args(["--metrics-port", "0"])
        .env("POD_NAME", &name)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "{name} did not listen on {addr} within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Server { name, addr, child }
}

#[derive(Clone, Copy, Debug)]
enum Stop {
    /// A rolling restart: out of the Service, then SIGTERM (drain, exit 0).
    Drain,
    /// A pod that does not drain (SIGKILL at the end of its grace period, or
    /// deleted with no grace period): out of the Service, then SIGKILL with
    /// calls in flight, which get no answer. (A crash the Service does not
    /// know of yet can route the one retry's fresh connection to the dead
    /// pod: that is the soak's case, not a rolling restart's.)
    Kill,
}

/// Stops `server` the way `how` says, keeping the Service's backends right.
async fn stop(mut server: Server, how: Stop, backends: &watch::Sender<Vec<SocketAddr>>) {
    backends.send_modify(|b| b.retain(|a| *a != server.addr));
    match how {
        Stop::Drain => {
            let pid = server.child.id().to_string();
            assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
            let deadline = Instant::now() + Duration::from_secs(10);
            let status = loop {
                if let Some(status) = server.child.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "{} did not drain within 10 s", server.name);
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            assert!(status.success(), "{} exited with {status} on SIGTERM", server.name);
        }
        Stop::Kill => {
            server.child.kill().unwrap();
            server.child.wait().unwrap();
        }
    }
}

/// The gateway's counts since it started: requests, errors and attempts.
async fn gateway_totals(observe: String) -> (u64, u64, u64) {
    let mut client = ObserverClient::connect(observe).await.unwrap();
    let request = WatchRequest {
        summary_interval_ms: 250,
        sample_per_second: 0,
    };
    let mut stream = client.watch(request).await.unwrap().into_inner();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), stream.message())
            .await
            .expect("a summary within 5 s")
            .unwrap()
            .expect("the Watch stream ended");
        if let Some(event::Kind::Summary(summary)) = message.kind {
            let total = summary.total.unwrap_or_default();
            return (total.requests, total.errors, total.attempts);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_mode_loses_no_request_across_a_rolling_restart_and_a_crash_of_every_server() {
    let mut servers = Vec::new();
    for ordinal in 0..3 {
        servers.push(start_server(ordinal).await);
    }
    let (backends, backends_rx) = watch::channel(servers.iter().map(|s| s.addr).collect::<Vec<_>>());
    let proxy = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let service = proxy.local_addr().unwrap();
    let proxy_stop = CancellationToken::new();
    tokio::spawn(service_proxy::run(proxy, backends_rx, proxy_stop.clone()));
    let _proxy_guard = proxy_stop.drop_guard();
    let (_registry, registry_rx) = watch::channel(Vec::new());
    let gateway = support::gateway_spec(Mode::Sticky)
        .start(
            service.to_string(),
            discovery::from_watch(registry_rx),
            DiscoveryHealth::default(),
        )
        .await
        .unwrap();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));

    let load = Load::start(&rest, 8);
    let mut next_ordinal = servers.len();
    // Two rounds over every server: drained one by one, then crashed one by
    // one, the pinned one first (a round reaches the pin either way).
    for how in [Stop::Drain, Stop::Kill] {
        let reply = rest.greet("Pin", "Check").await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.body);
        let pinned = support::pod_of(&reply.body);
        servers.sort_by_key(|s| s.name != pinned);
        for server in std::mem::take(&mut servers) {
            load.until_served(200).await;
            stop(server, how, &backends).await;
            let fresh = start_server(next_ordinal).await;
            next_ordinal += 1;
            backends.send_modify(|b| b.push(fresh.addr));
            servers.push(fresh);
        }
    }
    load.until_served(200).await;
    let outcomes = load.stop().await;

    let served: usize = outcomes.hits.values().sum();
    let sent = served + outcomes.failures.len();
    let (requests, errors, attempts) = gateway_totals(format!("http://{}", gateway.observe_addr)).await;
    let retries = attempts - requests;
    eprintln!(
        "sticky across 6 restarts: {served} of {sent} answered, {retries} retried; by pod {:?}",
        outcomes.hits
    );
    assert_eq!(
        outcomes.failures,
        Vec::<String>::new(),
        "{} of {sent} failed ({retries} retried)",
        outcomes.failures.len()
    );
    // The gateway counted each request once (plus the two pin checks), none failed.
    assert_eq!((requests, errors), (sent as u64 + 2, 0));
    // The pin moved at least twice: the first pinned pod served, then (every
    // first pod gone) one of the first round's replacements, then one of the second's.
    assert!(outcomes.hits.len() >= 3, "{:?}", outcomes.hits);
    gateway.shutdown().await.unwrap();
}
