//! `--attacks`: the hostile-client battery's attacks (tests/support/
//! h2_attacks.rs) against the gateway's ingress, HAProxy 2.6 (h2 frontend,
//! `proto h2` backends) and Envoy 1.40, each in front of the same three
//! Greet servers, one proxy at a time. Each attack is bounded (≤ 20 s, its
//! counts fixed, loopback) while another client makes normal calls; per
//! proxy and attack: the normal calls that succeeded, the attacker's answer
//! and when, the attacker's calls that reached the Greet servers, and the
//! proxy's RSS peak; then its RSS 60 s after the last attack.
//!
//! The Greet servers are in-process ones that count the calls reaching
//! them (greet_tests::counting): the servers are the same for all three,
//! and what leaked upstream is exact.
//!
//! `--held-streams-only`: the held-streams attack on the gateway alone,
//! without the 60 s after it (a change to the stream cap's share is
//! measured so).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use greet_tests::counting::Counting;
use greet_tests::h2_attacks::{self, Held};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::attack_memory::{self, PeakRss};
use super::procs::rss_kib;

/// How long each attack may take, at most.
const BOUND: Duration = Duration::from_secs(20);

/// One attack against one proxy.
struct Row {
    attack: &'static str,
    proxy: &'static str,
    calm_ok: usize,
    calm_calls: usize,
    answer: String,
    upstream: usize,
    peak_mb: f64,
}

/// Normal calls, one after another until `stop`, each given 2 s: how many
/// there were and how many succeeded.
async fn calm(addr: SocketAddr, stop: CancellationToken) -> (usize, usize) {
    let Ok(channel) = tonic::transport::Channel::from_shared(format!("http://{addr}")).map(|c| {
        c.timeout(Duration::from_secs(2))
            .connect_timeout(Duration::from_secs(2))
    }) else {
        return (0, 0);
    };
    let mut client = GreetServiceClient::new(channel.connect_lazy());
    let (mut calls, mut ok) = (0, 0);
    while !stop.is_cancelled() {
        calls += 1;
        let request = GreetingRequest {
            greeting: Some(Greeting {
                first_name: "Ada".into(),
                last_name: format!("calm-{calls}"),
            }),
        };
        if client.greet(request).await.is_ok() {
            ok += 1;
        } else {
            // A failed call may have failed at once (a closed connection): pace the retries.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    (calls, ok)
}

/// Runs one attack on `addr`: what the attacker got, in words.
async fn attack(name: &'static str, addr: SocketAddr) -> anyhow::Result<String> {
    Ok(match name {
        "zero window (24 calls echoing 1 MiB)" => {
            h2_attacks::zero_window(addr, 24, 1024 * 1024, BOUND).await?.to_string()
        }
        "paced rapid reset (≤ 20,000 streams, 400 µs apart)" => {
            let (answer, sent) = h2_attacks::rapid_reset(addr, 20_000, Duration::from_micros(400), BOUND).await?;
            format!("{answer} ({sent} streams sent)")
        }
        "cancel storm (40 × 50 calls reset or closed)" => {
            h2_attacks::cancel_storm(addr, 40, 50, BOUND).await?.to_string()
        }
        "held streams (100 conns × 200 calls, 10 s)" => {
            let mut held = Held::open(addr, 100, 200, 10).await?;
            tokio::time::sleep_until(held.started + Duration::from_secs(10)).await;
            held.update();
            let first = held
                .first
                .as_ref()
                .map_or_else(|| "nothing".to_owned(), ToString::to_string);
            format!("{first}; {} of 20,000 streams refused or reset", held.resets)
        }
        _ => {
            let [preface, open_block, idle] = h2_attacks::slow_and_idle(addr, 30, BOUND).await?;
            format!("preface only: {preface}; open header block: {open_block}; a call then idle: {idle}")
        }
    })
}

const ATTACKS: [&str; 5] = [
    "zero window (24 calls echoing 1 MiB)",
    "paced rapid reset (≤ 20,000 streams, 400 µs apart)",
    "cancel storm (40 × 50 calls reset or closed)",
    "held streams (100 conns × 200 calls, 10 s)",
    "slowloris / idle (30 connections)",
];

/// Every attack against one proxy (pid `pid`, listening on `addr`);
/// then its RSS warm, at its peak, and 60 s after the last attack (MB).
async fn against(
    proxy: &'static str,
    pid: u32,
    addr: SocketAddr,
    servers: &[Counting],
    attacks: &[&'static str],
) -> anyhow::Result<(Vec<Row>, [f64; 3])> {
    // Warm: the proxy's upstream connections made.
    let stop = CancellationToken::new();
    let warming = tokio::spawn(calm(addr, stop.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    warming.await?;
    let warm = rss_kib(pid)? as f64 / 1024.0;
    let mut rows = Vec::new();
    let mut overall: f64 = warm;
    for &name in attacks {
        eprintln!("attacks: {proxy}: {name}");
        servers.iter().for_each(Counting::reset);
        let peak = PeakRss::start(pid);
        let stop = CancellationToken::new();
        let normal = tokio::spawn(calm(addr, stop.clone()));
        let started = Instant::now();
        let answer = match tokio::time::timeout(BOUND + Duration::from_secs(5), attack(name, addr)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => format!("the attack failed: {e:#}"),
            Err(_) => "the attack outlived its bound".to_owned(),
        };
        // The normal client goes on a second after the attack, for its answer to show.
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.cancel();
        let (calm_calls, calm_ok) = normal.await?;
        let peak_mb = peak.stop() as f64 / 1024.0;
        overall = overall.max(peak_mb);
        let upstream = servers.iter().map(Counting::calls).sum();
        eprintln!(
            "  {answer}; normal {calm_ok}/{calm_calls}; upstream {upstream}; took {:.1?}",
            started.elapsed()
        );
        rows.push(Row {
            attack: name,
            proxy,
            calm_ok,
            calm_calls,
            answer,
            upstream,
            peak_mb,
        });
    }
    if attacks.len() == ATTACKS.len() {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    let after = rss_kib(pid)? as f64 / 1024.0;
    Ok((rows, [warm, overall, after]))
}

pub(crate) async fn main(args: &[String]) -> i32 {
    let held_only = args.iter().any(|a| a == "--held-streams-only");
    match run(held_only).await {
        Ok(tables) => {
            println!("{tables}");
            0
        }
        Err(e) => {
            eprintln!("FAILED attacks: {e:#}");
            1
        }
    }
}

async fn run(held_only: bool) -> anyhow::Result<String> {
    let (proxies, attacks): (&[&'static str], &[&'static str]) = if held_only {
        (&["greet-gateway"], &ATTACKS[3..4])
    } else {
        (&["greet-gateway", "haproxy", "envoy"], &ATTACKS)
    };
    let servers: Vec<Counting> = (0..3).map(|_| Counting::default()).collect();
    let mut addrs = Vec::new();
    for (i, server) in (81u8..).zip(&servers) {
        addrs.push(server.serve_on(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))).await);
    }
    let dir = std::env::temp_dir().join(format!("greet-top-attacks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mut rows = Vec::new();
    let mut memory = Vec::new();
    for &proxy in proxies {
        // One proxy at a time: each one's RSS and the servers' counts are its own.
        let (_child, pid, addr): (Box<dyn std::any::Any>, u32, SocketAddr) = match proxy {
            "greet-gateway" => {
                let variant = attack_memory::variants()?.remove(0);
                let gateway = attack_memory::start_gateway(&variant, &addrs).await?;
                let (pid, addr) = (gateway.child.pid(), gateway.grpc);
                (Box::new(gateway), pid, addr)
            }
            "haproxy" => {
                let p = super::haproxy::start(&dir, &addrs).await?;
                let (pid, addr) = (p.child.pid(), p.addr);
                (Box::new(p), pid, addr)
            }
            _ => {
                let p = super::envoy::start(&dir, &addrs).await?;
                let (pid, addr) = (p.child.pid(), p.addr);
                (Box::new(p), pid, addr)
            }
        };
        let (proxy_rows, rss) = against(proxy, pid, addr, &servers, attacks).await?;
        rows.extend(proxy_rows);
        memory.push((proxy, rss));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let mut out = String::from(
        "| attack | proxy | normal calls that succeeded | the attacker's answer (from the attack's start) | attacker's calls that reached the Greet servers | proxy RSS peak |\n|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        out += &format!(
            "| {} | {} | {:.1} % ({} of {}) | {} | {} | {:.0} MB |\n",
            row.attack,
            row.proxy,
            100.0 * row.calm_ok as f64 / row.calm_calls.max(1) as f64,
            row.calm_ok,
            row.calm_calls,
            row.answer,
            row.upstream,
            row.peak_mb
        );
    }
    out += "\n| proxy | RSS warm | peak over the attacks | 60 s after the last |\n|---|---|---|---|\n";
    for (proxy, [warm, peak, after]) in memory {
        out += &format!("| {proxy} | {warm:.0} MB | {peak:.0} MB | {after:.0} MB |\n");
    }
    Ok(out)
}
