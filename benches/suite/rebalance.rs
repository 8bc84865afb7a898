//! Item 6: rebalance latency, from an endpoint-set change (a pod added or
//! turned ready) to the first request that lands on that pod, under steady
//! load from 4 clients. (a) the LocalCluster's registry (what the demo's `a`
//! key changes), in-process; (b) EndpointSlices through the fake API server
//! (tests/fake-kube) and the gateway's kube discovery, as tests/it/kubernetes.rs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fake_kube::{FakeKube, endpoint_slice};
use greet_demo::rest_client::RestClient;
use greet_demo::{ClusterConfig, GatewaySpec, LocalCluster, LocalPod, PodNames, PodOptions, StickyTarget};
use greet_gateway::discovery::{self, PortSelector};
use greet_proto::Mode;
use greet_proto::greeting_text::pod_from_result;
use tokio_util::sync::{CancellationToken, DropGuard};

/// When each pod answered its first request (since its entry was last cleared).
type FirstSeen = Arc<Mutex<HashMap<String, Instant>>>;

/// 4 clients sending POST /greet back to back until the guard drops.
fn steady_load(rest: &RestClient) -> (FirstSeen, DropGuard) {
    let (seen, stop) = (FirstSeen::default(), CancellationToken::new());
    for _ in 0..4 {
        let (rest, seen, stop) = (rest.clone(), Arc::clone(&seen), stop.clone());
        tokio::spawn(async move {
            while !stop.is_cancelled() {
                let Ok(response) = rest.greet("Hitesh", "Pattanayak").await else {
                    continue;
                };
                let at = Instant::now();
                if let Some((pod, _)) = pod_from_result(&response.body) {
                    seen.lock().unwrap().entry(pod).or_insert(at);
                }
            }
        });
    }
    (seen, stop.drop_guard())
}

/// Waits (at most 2 s) for `pod`'s first request; returns ms since `changed`.
async fn first_request_on(seen: &FirstSeen, pod: &str, changed: Instant) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        if let Some(at) = seen.lock().unwrap().get(pod) {
            return Ok(at.saturating_duration_since(changed).as_secs_f64() * 1e3);
        }
        if Instant::now() > deadline {
            bail!("{pod} got no request within 2 s of the change");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn pod_options() -> PodOptions {
    PodOptions {
        max_connection_age: None,
        drain_timeout: Duration::from_secs(1),
        ..PodOptions::default()
    }
}

/// (a) `reps` pods added one at a time to a 3-pod LocalCluster (each removed after).
pub(crate) async fn static_registry(reps: usize) -> anyhow::Result<Vec<f64>> {
    let config = ClusterConfig {
        pods: 3,
        first_host: 81,
        preferred_port: None,
        names: PodNames::Numbered {
            prefix: "bench-rebalance".into(),
        },
        pod: pod_options(),
        gateway: GatewaySpec {
            mode: Mode::Balanced,
            ..GatewaySpec::default()
        },
        sticky: StickyTarget::FirstPod,
    };
    let mut cluster = LocalCluster::start(config).await?;
    let (seen, _stop) = steady_load(cluster.rest());
    let mut latencies = Vec::new();
    for _ in 0..reps {
        // The change's time is when the registry publishes the new set, not
        // when add_pod returns (it started the pod first).
        let mut registry = cluster.watch_registry();
        registry.borrow_and_update();
        let changed = tokio::spawn(async move { registry.changed().await.map(|_| Instant::now()) });
        let pod = cluster.add_pod().await?;
        let changed = changed.await?.context("registry closed")?;
        latencies.push(first_request_on(&seen, &pod, changed).await?);
        cluster.kill_pod(&pod).await?;
    }
    drop(_stop);
    cluster.shutdown().await;
    Ok(latencies)
}

/// Four greet-servers on 127.0.0.91-94 on one port (a slice has one port for all).
async fn pods_on_one_port() -> anyhow::Result<(Vec<LocalPod>, u16)> {
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.91:0")?.local_addr()?.port();
        let mut pods = Vec::new();
        for i in 0..4u8 {
            let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 91 + i]), port);
            match LocalPod::start(format!("bench-kube-{i}"), addr, pod_options()).await {
                Ok(pod) => pods.push(pod),
                Err(_) => break,
            }
        }
        if pods.len() == 4 {
            return Ok((pods, port));
        }
    }
    bail!("no port free on all of 127.0.0.91-94")
}

/// (b) a pod's EndpointSlice entry turned ready `reps` times (and back to not ready between).
pub(crate) async fn fake_api_server(reps: usize) -> anyhow::Result<Vec<f64>> {
    const NS: &str = "default";
    let (pods, port) = pods_on_one_port().await?;
    let kube = FakeKube::start().await;
    let ips: Vec<String> = pods.iter().map(|p| p.ip().to_string()).collect();
    let slice = |new_ready: bool| {
        let endpoints: Vec<(&str, &str, bool, bool)> = pods
            .iter()
            .zip(&ips)
            .enumerate()
            .map(|(i, (p, ip))| (ip.as_str(), p.name.as_str(), i < 3 || new_ready, false))
            .collect();
        endpoint_slice(NS, "greetserver-a", "greetserver", "grpc", i32::from(port), &endpoints)
    };
    kube.apply_slice(slice(false));
    let selector = PortSelector {
        name: "grpc".into(),
        number: port,
    };
    let discovery = discovery::endpoint_slices(kube.client(NS).await, NS, "greetserver", selector, Default::default());
    let spec = GatewaySpec {
        mode: Mode::Balanced,
        ..GatewaySpec::default()
    };
    let gateway = spec.start("127.0.0.1:9".into(), discovery, Default::default()).await?;
    let balancer = || gateway.gateway.upstream.balancer();
    let until_ready = |n: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(10);
        while balancer().ready_count() != n {
            if Instant::now() > deadline {
                bail!("the balancer never had {n} ready endpoints");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    };
    until_ready(3).await?;
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    let (seen, stop) = steady_load(&rest);
    let new_pod = pods[3].name.clone();
    let mut latencies = Vec::new();
    for _ in 0..reps {
        // Requests already on their way to the pod finish before the clock starts.
        tokio::time::sleep(Duration::from_millis(50)).await;
        seen.lock().unwrap().remove(&new_pod);
        let changed = Instant::now();
        kube.apply_slice(slice(true));
        latencies.push(first_request_on(&seen, &new_pod, changed).await?);
        kube.apply_slice(slice(false));
        until_ready(3).await?;
    }
    drop(stop);
    gateway.shutdown().await?;
    Ok(latencies)
}
