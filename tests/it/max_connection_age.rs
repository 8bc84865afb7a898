//! greet-server's max connection age set at run time: a sticky gateway
//! through the Service proxy reaches every pod while it is set, loses no
//! request across the GOAWAYs, and stays on one pod once it is cleared;
//! a call in flight when its connection reaches the age still finishes.

use greet_tests as support;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use greet_demo::{LocalPod, PodOptions};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use support::{greet_n, greet_until_every_pod};

#[tokio::test]
async fn an_age_set_at_run_time_rotates_the_sticky_pod_and_clearing_it_pins_it_again() {
    let mut cluster = support::cluster(3, Mode::Sticky).await;
    let stuck = greet_n(cluster.rest(), 100).await;
    assert_eq!(stuck.len(), 1, "no age: one pod gets everything: {stuck:?}");

    cluster.set_max_connection_age(Some(Duration::from_millis(200)));
    assert_eq!(cluster.max_connection_age(), Some(Duration::from_millis(200)));
    // The open connection is older than 200 ms already: it moves at once,
    // then every 200 ms (±10 %); greet_until_every_pod fails on any non-200.
    let seen = greet_until_every_pod(cluster.rest(), 3, Duration::from_secs(10)).await;
    assert_eq!(seen.len(), 3, "{seen:?}");

    cluster.set_max_connection_age(None);
    // Settled once no connection sent its GOAWAY is still open: from then
    // on the one connection (or the next, when none is open) stays.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while cluster.connections_closing() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connections still closing 5 s after the clear",
            cluster.connections_closing()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let pinned = greet_n(cluster.rest(), 300).await;
    assert_eq!(pinned.len(), 1, "cleared: one pod again: {pinned:?}");
    assert_eq!(pinned.values().sum::<usize>(), 300);
    cluster.shutdown().await;
}

#[tokio::test]
async fn pods_added_after_the_age_was_set_get_it_too() {
    let mut cluster = support::cluster(1, Mode::Sticky).await;
    cluster.set_max_connection_age(Some(Duration::from_millis(200)));
    for _ in 0..2 {
        cluster.add_pod().await.unwrap();
    }
    // A pod without the age would keep the sticky connection for good once
    // it got it: each pod taking its turn twice shows every pod lets it go.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut turns: BTreeMap<String, usize> = BTreeMap::new();
    let mut last = String::new();
    let mut sent = 0;
    while turns.len() < 3 || turns.values().any(|t| *t < 2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "turns after {sent} requests: {turns:?}"
        );
        let response = cluster.rest().greet("Ada", "Lovelace").await.unwrap();
        assert_eq!(response.status, 200, "request {sent}: {}", response.body);
        let pod = support::pod_of(&response.body);
        if pod != last {
            *turns.entry(pod.clone()).or_default() += 1;
            last = pod;
        }
        sent += 1;
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_call_in_flight_when_its_connection_reaches_the_age_finishes() {
    let options = PodOptions {
        max_connection_age: Some(Duration::from_millis(100)),
        drain_timeout: Duration::from_secs(5),
        ..PodOptions::default()
    };
    let mut pod = LocalPod::start("pod-age", SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), options)
        .await
        .unwrap();
    // The call outlives its connection's age: the GOAWAY comes while it runs.
    pod.reply_delay.set(Duration::from_millis(400));
    let mut client = GreetServiceClient::connect(format!("http://{}", pod.addr))
        .await
        .unwrap();
    let request = || GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        }),
    };
    let started = tokio::time::Instant::now();
    let call = {
        let mut client = client.clone();
        tokio::spawn(async move { client.greet(request()).await })
    };
    let deadline = started + Duration::from_millis(350);
    while pod.max_connection_age.closing() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "no GOAWAY while the call ran");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reply = call.await.unwrap().unwrap().into_inner();
    assert_eq!(reply.pod_name, "pod-age");
    assert!(started.elapsed() >= Duration::from_millis(400));
    // Its connection closed with the call; the client's next call gets a new one.
    while pod.max_connection_age.closing() > 0 {
        tokio::task::yield_now().await;
    }
    pod.reply_delay.set(Duration::ZERO);
    assert_eq!(client.greet(request()).await.unwrap().into_inner().pod_name, "pod-age");
    pod.stop().await.unwrap();
}
