//! Held streams: an attacker that holds more calls than the gateway's
//! stream cap (each with a few body bytes and no end) must not lock
//! another client out. A new call from a lighter holder takes the place of
//! one of the heaviest holder's (RST_STREAM ENHANCE_YOUR_CALM to it): by
//! peer IP first, then by connection within an IP.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_tests::h2_attacks::Held;
use tonic::transport::{Channel, Endpoint};

use super::frames;
use super::{Counting, gateway_process, greeting, ingress_channel};

const MAX_STREAMS: usize = 64;
/// The attacker's connections and calls on each: twice the cap.
const CONNECTIONS: usize = 4;
const PER_CONNECTION: usize = 32;
/// The other client's calls, one after another, the attacker keeping its
/// hold between each two.
const CALLS: usize = 40;
/// Then this many at once.
const AT_ONCE: usize = 8;

/// A channel to `gateway` whose connection comes from `from`.
async fn channel_from(from: IpAddr, gateway: SocketAddr) -> Channel {
    let connector = tower::service_fn(move |_: http::Uri| async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let tcp = socket.connect(gateway).await?;
        tcp.set_nodelay(true)?;
        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tcp))
    });
    Endpoint::from_static("http://gateway")
        .timeout(Duration::from_secs(10))
        .connect_with_connector(connector)
        .await
        .unwrap()
}

/// The attacker holds the whole cap (the calls over it refused), the other
/// client makes its calls on `channel` while the attacker reopens every
/// stream it loses; every call must succeed, and the attacker must have
/// lost held streams to them with ENHANCE_YOUR_CALM.
async fn calls_succeed_against_held_streams(gateway: SocketAddr, channel: impl AsyncFnOnce() -> Channel) {
    let mut held = Held::open(gateway, CONNECTIONS, PER_CONNECTION, 10).await.unwrap();
    // Whatever its connections did among themselves, the attacker holds
    // the cap: each call beyond it cost one reset (a refusal, or a call
    // of a heavier connection of its own preempted, reset by its task).
    let over = CONNECTIONS * PER_CONNECTION - MAX_STREAMS;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while held.resets < over && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        held.update();
    }
    assert_eq!(held.resets, over, "the attacker does not hold the cap");

    let mut client = GreetServiceClient::new(channel().await);
    let mut failures = Vec::new();
    let mut lost = Vec::new();
    for i in 0..CALLS {
        if let Err(status) = client.greet(greeting(&format!("calm-{i}"))).await {
            failures.push(format!("call {i}: {:?}: {}", status.code(), status.message()));
        }
        lost.extend(held.keep_hold(10).await);
    }
    let mut together = tokio::task::JoinSet::new();
    for i in 0..AT_ONCE {
        let mut client = client.clone();
        together.spawn(async move { client.greet(greeting(&format!("calm-together-{i}"))).await });
    }
    while let Some(done) = together.join_next().await {
        if let Err(status) = done.unwrap() {
            failures.push(format!("a call at once: {:?}: {}", status.code(), status.message()));
        }
    }
    lost.extend(held.keep_hold(10).await);

    assert!(
        failures.is_empty(),
        "{} of {} calls failed: {:?}",
        failures.len(),
        CALLS + AT_ONCE,
        &failures[..failures.len().min(5)]
    );
    let codes: std::collections::BTreeSet<u32> = lost.iter().map(|&(_, _, code)| code).collect();
    let calmed = lost
        .iter()
        .filter(|&&(_, _, code)| code == frames::ENHANCE_YOUR_CALM)
        .count();
    assert!(calmed >= 1, "no held stream was reset ENHANCE_YOUR_CALM: {lost:?}");
    assert!(
        codes.is_subset(&[frames::ENHANCE_YOUR_CALM, frames::REFUSED_STREAM].into()),
        "resets other than ENHANCE_YOUR_CALM and REFUSED_STREAM: {codes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_another_ip_gets_its_calls_while_an_attacker_holds_the_stream_cap() {
    let upstream = Counting::default();
    let gateway = gateway_process(upstream.serve().await, &["--max-streams", &MAX_STREAMS.to_string()]);
    let grpc = gateway.grpc;
    let other_ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    tokio::time::timeout(
        Duration::from_secs(60),
        calls_succeed_against_held_streams(grpc, async || channel_from(other_ip, grpc).await),
    )
    .await
    .expect("the test outlived its bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_on_the_attackers_ip_gets_its_calls_while_the_attacker_holds_the_stream_cap() {
    let upstream = Counting::default();
    let gateway = gateway_process(upstream.serve().await, &["--max-streams", &MAX_STREAMS.to_string()]);
    let grpc = gateway.grpc;
    tokio::time::timeout(
        Duration::from_secs(60),
        calls_succeed_against_held_streams(grpc, async || ingress_channel(grpc).await),
    )
    .await
    .expect("the test outlived its bound");
}
