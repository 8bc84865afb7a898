//! The loopback harness itself (`tui::demo::LocalCluster`), which the demo,
//! the other integration tests and the benchmark run on: pods, the
//! connection-balancing Service proxy, the registry and the gateway.

use greet_tests as support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use greet_demo::{LocalCluster, StickyTarget};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use support::greet_n;

/// Whether something accepts TCP connections on `addr`.
async fn accepts(addr: SocketAddr) -> bool {
    tokio::net::TcpStream::connect(addr).await.is_ok()
}

/// The addresses in the cluster's registry, in its order.
fn registry_addrs(cluster: &LocalCluster) -> Vec<String> {
    cluster.registry().iter().map(|e| e.address.clone()).collect()
}

fn pod_addrs(cluster: &LocalCluster) -> Vec<SocketAddr> {
    cluster.pods().map(|(_, addr)| addr).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_are_numbered_on_consecutive_hosts_and_listed_everywhere() {
    let cluster = support::cluster(3, Mode::Balanced).await;
    let names: Vec<&str> = cluster.pods().map(|(name, _)| name).collect();
    assert_eq!(
        names,
        ["greetserver-test-0", "greetserver-test-1", "greetserver-test-2"]
    );
    let ips: Vec<IpAddr> = pod_addrs(&cluster).iter().map(SocketAddr::ip).collect();
    assert_eq!(ips, [2, 3, 4].map(|host| IpAddr::V4(Ipv4Addr::new(127, 0, 0, host))));
    assert_eq!(cluster.backends(), pod_addrs(&cluster));
    let addrs: Vec<String> = pod_addrs(&cluster).iter().map(ToString::to_string).collect();
    assert_eq!(registry_addrs(&cluster), addrs);
    for (endpoint, (name, _)) in cluster.registry().iter().zip(cluster.pods()) {
        assert_eq!(endpoint.pod_name.as_deref(), Some(name));
        assert!(endpoint.ready);
    }
    assert_eq!(
        cluster.gateway.gateway.upstream.sticky_target(),
        cluster.service_addr.to_string(),
        "sticky dials the Service"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_pod_removes_it_from_the_service_and_the_registry_then_stops_it() {
    let mut cluster = support::cluster(3, Mode::Balanced).await;
    let (victim, victim_addr) = cluster.pods().next().map(|(n, a)| (n.to_owned(), a)).unwrap();
    assert!(accepts(victim_addr).await);

    cluster.kill_pod(&victim).await.unwrap();
    assert!(cluster.pods().all(|(name, _)| name != victim));
    assert_eq!(cluster.backends().len(), 2);
    assert!(!cluster.backends().contains(&victim_addr));
    assert_eq!(registry_addrs(&cluster).len(), 2);
    assert!(!registry_addrs(&cluster).contains(&victim_addr.to_string()));
    assert!(!accepts(victim_addr).await, "the killed pod no longer listens");

    // The survivors split balanced traffic exactly, with no failed request.
    support::until_balancer_follows_the_registry(&cluster).await;
    let hits = greet_n(cluster.rest(), 100).await;
    assert_eq!(hits.values().copied().collect::<Vec<_>>(), [50, 50], "{hits:?}");
    assert!(!hits.contains_key(&victim));

    let error = cluster.kill_pod(&victim).await.unwrap_err();
    assert_eq!(error.to_string(), format!("no pod named {victim}"));
}

// Single-threaded on purpose: between the first poll of `kill_pod` and the
// checks nothing else runs, so the pod cannot have stopped yet.
#[tokio::test]
async fn a_killed_pod_leaves_the_service_and_the_registry_before_it_stops() {
    let mut cluster = support::cluster(2, Mode::Balanced).await;
    let (victim, addr) = cluster.pods().next().map(|(n, a)| (n.to_owned(), a)).unwrap();
    let registry = cluster.watch_registry();
    let backends = cluster.watch_backends();

    let mut kill = std::pin::pin!(cluster.kill_pod(&victim));
    tokio::select! {
        biased;
        _ = &mut kill => panic!("kill_pod must wait for the pod to stop"),
        () = std::future::ready(()) => {}
    }
    assert!(!backends.borrow().contains(&addr), "out of the Service first");
    assert!(
        registry.borrow().iter().all(|e| e.address != addr.to_string()),
        "out of the endpoint set first"
    );
    // A blocking connect: the kernel completes it while the pod still listens.
    assert!(
        std::net::TcpStream::connect(addr).is_ok(),
        "the pod is still serving when it leaves the Service"
    );

    kill.await.unwrap();
    assert!(std::net::TcpStream::connect(addr).is_err(), "then it stops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_pod_stays_listed_until_it_is_killed() {
    let mut cluster = support::cluster(2, Mode::Balanced).await;
    let (name, addr) = cluster.pods().next().map(|(n, a)| (n.to_owned(), a)).unwrap();
    cluster.crash_pod(&name).await.unwrap();
    assert!(!accepts(addr).await, "the crashed pod no longer listens");
    assert_eq!(cluster.backends().len(), 2);
    assert!(registry_addrs(&cluster).contains(&addr.to_string()));
    assert_eq!(cluster.pods().count(), 2);

    cluster.kill_pod(&name).await.unwrap();
    assert_eq!(cluster.backends().len(), 1);
    assert_eq!(registry_addrs(&cluster).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_pod_takes_the_next_host_and_gets_its_share() {
    let mut cluster = support::cluster(2, Mode::Balanced).await;
    let first = cluster.pods().next().unwrap().0.to_owned();
    cluster.kill_pod(&first).await.unwrap();
    let added = cluster.add_pod().await.unwrap();
    // Ordinals are never reused, like pod names in a ReplicaSet.
    assert_eq!(added, "greetserver-test-2");
    let (_, addr) = cluster.pods().find(|(name, _)| *name == added).unwrap();
    assert_eq!(addr.ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 4)));
    assert!(cluster.backends().contains(&addr));
    assert!(registry_addrs(&cluster).contains(&addr.to_string()));

    support::until_balancer_follows_the_registry(&cluster).await;
    let hits = greet_n(cluster.rest(), 100).await;
    assert_eq!(hits[&added], 50, "{hits:?}");
    assert_eq!(hits["greetserver-test-1"], 50, "{hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_proxy_balances_connections_not_requests() {
    let cluster = support::cluster(3, Mode::Sticky).await;
    let request = || GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
        }),
    };
    let mut pods_per_connection = Vec::new();
    for _ in 0..3 {
        let mut client = GreetServiceClient::connect(format!("http://{}", cluster.service_addr))
            .await
            .unwrap();
        let mut pods = BTreeSet::new();
        for _ in 0..5 {
            pods.insert(client.greet(request()).await.unwrap().into_inner().pod_name);
        }
        assert_eq!(pods.len(), 1, "one connection, one pod: {pods:?}");
        pods_per_connection.extend(pods);
    }
    let distinct: BTreeSet<&String> = pods_per_connection.iter().collect();
    assert_eq!(
        distinct.len(),
        3,
        "round robin over connections: {pods_per_connection:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_prefer_the_configured_port_and_fall_back_to_any() {
    // Hosts 127.0.0.81-82, which no other test uses; a port free on .81.
    let probe = std::net::TcpListener::bind("127.0.0.81:0").unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let _taken = std::net::TcpListener::bind(("127.0.0.82", port)).unwrap();
    let mut config = support::config(2, Mode::Sticky);
    config.first_host = 81;
    config.preferred_port = Some(port);
    let cluster = LocalCluster::start(config).await.unwrap();
    let addrs = pod_addrs(&cluster);
    assert_eq!(addrs[0], SocketAddr::from(([127, 0, 0, 81], port)));
    assert_eq!(addrs[1].ip(), IpAddr::V4(Ipv4Addr::new(127, 0, 0, 82)));
    assert_ne!(addrs[1].port(), port, "the taken port is not shared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_can_target_the_first_pod_directly() {
    let mut config = support::config(2, Mode::Sticky);
    config.first_host = 83;
    config.sticky = StickyTarget::FirstPod;
    let cluster = LocalCluster::start(config).await.unwrap();
    let (first, addr) = cluster.pods().next().map(|(n, a)| (n.to_owned(), a)).unwrap();
    assert_eq!(cluster.gateway.gateway.upstream.sticky_target(), addr.to_string());
    let hits = greet_n(cluster.rest(), 20).await;
    assert_eq!(hits.into_iter().collect::<Vec<_>>(), [(first, 20)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_gateway_and_every_pod() {
    let cluster = support::cluster(2, Mode::Sticky).await;
    let mut addrs = pod_addrs(&cluster);
    addrs.extend([cluster.gateway.rest_addr, cluster.gateway.observe_addr]);
    for addr in &addrs {
        assert!(accepts(*addr).await, "{addr} before shutdown");
    }
    cluster.shutdown().await;
    for addr in &addrs {
        assert!(!accepts(*addr).await, "{addr} still listens after shutdown");
    }
}

/// One Greet call straight to `addr`; how long it took.
async fn greet_timed(addr: SocketAddr) -> std::time::Duration {
    let mut client = GreetServiceClient::connect(format!("http://{addr}")).await.unwrap();
    let started = std::time::Instant::now();
    let greeting = Greeting {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
    };
    client
        .greet(GreetingRequest {
            greeting: Some(greeting),
        })
        .await
        .unwrap();
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demos_slow_pod_key_slows_the_first_pod_and_restores_it() {
    let delay = greet_top::SLOW_POD_DELAY;
    let cluster = support::cluster(2, Mode::Balanced).await;
    let (first, first_addr) = cluster.pods().next().map(|(n, a)| (n.to_owned(), a)).unwrap();
    assert_eq!(cluster.toggle_slow_pod(delay), Some((first.clone(), true)));
    let delays: Vec<_> = cluster
        .pods()
        .map(|(n, _)| cluster.reply_delay(n).unwrap().get())
        .collect();
    assert_eq!(delays, [delay, std::time::Duration::ZERO]);
    assert!(greet_timed(first_addr).await >= delay);
    assert_eq!(cluster.toggle_slow_pod(delay), Some((first, false)));
    assert!(
        cluster
            .pods()
            .all(|(n, _)| cluster.reply_delay(n).unwrap().get().is_zero())
    );
}
