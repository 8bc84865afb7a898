//! Kubernetes for real, against the fake API server (tests/fake-kube):
//! the real `kube::Client` over HTTP, list + watch with resourceVersions,
//! dropped watches, 410 Gone and 403.

use greet_tests as support;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use fake_kube::{FakeKube, endpoint_slice, pod};
use greet_demo::LocalPod;
use greet_demo::rest_client::RestClient;
use greet_gateway::discovery::{self, PortSelector};
use greet_proto::Mode;
use greet_top::kube_source::{self, GatewayPods};
use greet_top::observer_client::Subscription;
use greet_top::state::{App, AppEvent, WatchState};
use kube_access::KubeTarget;
use support::greet_n;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const NS: &str = "default";

/// Four greet-servers on 127.0.0.41-44, all on one port (an EndpointSlice has one port for all).
async fn pods_on_one_port() -> (Vec<LocalPod>, u16) {
    for _ in 0..20 {
        let probe = std::net::TcpListener::bind("127.0.0.41:0").unwrap();
        let port = probe.local_addr().unwrap().port();
        drop(probe);
        let mut servers = Vec::new();
        for i in 0..4u8 {
            let addr = SocketAddr::new(IpAddr::from([127, 0, 0, 41 + i]), port);
            match LocalPod::start(format!("greetserver-kube-{i}"), addr, support::pod_options()).await {
                Ok(server) => servers.push(server),
                Err(_) => break,
            }
        }
        if servers.len() == 4 {
            return (servers, port);
        }
        // Dropping the partial set stops it.
    }
    panic!("no port free on all of 127.0.0.41-44");
}

fn ip(server: &LocalPod) -> String {
    server.ip().to_string()
}

/// Waits until the gateway's balancer has `ready` ready endpoints.
async fn until_ready(gateway: &greet_gateway::GatewayHandle, ready: usize) {
    let started = Instant::now();
    while gateway.gateway.upstream.balancer().ready_count() != ready {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "balancer never reached {ready} ready endpoints (has {})",
            gateway.gateway.upstream.balancer().ready_count()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sends requests until `pod` answers one, failing after `within`.
async fn until_pod_answers(rest: &RestClient, pod: &str, within: Duration) {
    let started = Instant::now();
    loop {
        let response = rest.greet("Ada", "Lovelace").await.unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        if support::pod_of(&response.body) == pod {
            return;
        }
        assert!(started.elapsed() < within, "{pod} got no request within {within:?}");
    }
}

#[tokio::test]
async fn endpoint_slices_across_two_slices_drive_the_balancer() {
    let (servers, port) = pods_on_one_port().await;
    let [s0, s1, s2, s3] = &servers[..] else { unreachable!() };
    let kube = FakeKube::start().await;
    let slice_a = |eps: &[(&str, &str, bool, bool)]| {
        endpoint_slice(NS, "greetserver-a", "greetserver", "grpc", i32::from(port), eps)
    };
    let slice_b = |eps: &[(&str, &str, bool, bool)]| {
        endpoint_slice(NS, "greetserver-b", "greetserver", "grpc", i32::from(port), eps)
    };
    let (ip0, ip1, ip2, ip3) = (ip(s0), ip(s1), ip(s2), ip(s3));
    kube.apply_slice(slice_a(&[(&ip0, &s0.name, true, false), (&ip1, &s1.name, true, false)]));
    kube.apply_slice(slice_b(&[(&ip2, &s2.name, false, false)]));
    // A slice of another Service must be ignored.
    kube.apply_slice(endpoint_slice(
        NS,
        "other-x",
        "other",
        "grpc",
        i32::from(port),
        &[(&ip3, &s3.name, true, false)],
    ));

    let discovery = discovery::endpoint_slices(
        kube.client(NS).await,
        NS,
        "greetserver",
        PortSelector {
            name: "grpc".into(),
            number: 1, // the name must win
        },
        Default::default(),
    );
    let gateway = support::gateway_spec(Mode::Balanced)
        .start("127.0.0.1:9".into(), discovery, Default::default())
        .await
        .unwrap();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    until_ready(&gateway, 2).await;
    assert_eq!(
        gateway.gateway.upstream.balancer().endpoints().len(),
        3,
        "the not-ready one is listed"
    );
    let hits = greet_n(&rest, 100).await;
    assert_eq!(hits, BTreeMap::from([(s0.name.clone(), 50), (s1.name.clone(), 50)]));

    // s2 becomes ready: it gets traffic within a second of the change.
    kube.apply_slice(slice_b(&[(&ip2, &s2.name, true, false)]));
    until_pod_answers(&rest, &s2.name, Duration::from_secs(1)).await;

    // s0 starts terminating: once the change is seen, it gets no new request.
    kube.apply_slice(slice_a(&[(&ip0, &s0.name, true, true), (&ip1, &s1.name, true, false)]));
    until_ready(&gateway, 2).await;
    let hits = greet_n(&rest, 60).await;
    assert_eq!(hits, BTreeMap::from([(s1.name.clone(), 30), (s2.name.clone(), 30)]));

    // The watch connection drops: the watcher resumes and later changes still arrive.
    let watches = kube.watch_count();
    kube.drop_watches();
    kube.apply_slice(slice_b(&[(&ip2, &s2.name, true, false), (&ip3, &s3.name, true, false)]));
    until_pod_answers(&rest, &s3.name, Duration::from_secs(5)).await;
    assert!(kube.watch_count() > watches, "the watcher reconnected");

    // History expires (410 Gone): the watcher re-lists; requests keep succeeding throughout,
    // because the endpoint set is swapped only when the re-list is complete.
    let lists = kube.list_count("endpointslices");
    let load = {
        let rest = rest.clone();
        tokio::spawn(async move { greet_n(&rest, 200).await })
    };
    kube.expire_history();
    kube.drop_watches();
    kube.delete_slice(NS, "greetserver-b");
    until_ready(&gateway, 1).await;
    let during = load.await.unwrap();
    assert_eq!(
        during.values().sum::<usize>(),
        200,
        "every request during the re-list succeeded"
    );
    assert!(
        kube.list_count("endpointslices") > lists,
        "the watcher re-listed after 410 Gone"
    );
    let hits = greet_n(&rest, 20).await;
    assert_eq!(hits, BTreeMap::from([(s1.name.clone(), 20)]));

    gateway.shutdown().await.unwrap();
}

/// The gateway's `/healthz` body.
async fn healthz(rest: &RestClient) -> serde_json::Value {
    let response = rest.send(http::Method::GET, "/healthz", None, "").await.unwrap();
    response.json().unwrap()
}

#[tokio::test]
async fn serving_terminating_endpoints_take_traffic_only_when_none_is_ready() {
    let (servers, port) = pods_on_one_port().await;
    let [s0, s1, s2, _] = &servers[..] else { unreachable!() };
    let kube = FakeKube::start().await;
    // (ip, pod, serving, terminating): s1 terminates but still serves, s2 terminates and does not.
    let slice = |eps: &[(&str, &str, bool, bool)]| {
        endpoint_slice(NS, "greetserver-a", "greetserver", "grpc", i32::from(port), eps)
    };
    let (ip0, ip1, ip2) = (ip(s0), ip(s1), ip(s2));
    let terminating = [
        (ip1.as_str(), s1.name.as_str(), true, true),
        (&ip2, &s2.name, false, true),
    ];
    let with_s0 = |s0_ready: bool| {
        let mut eps = vec![(ip0.as_str(), s0.name.as_str(), s0_ready, false)];
        eps.extend(terminating);
        slice(&eps)
    };
    kube.apply_slice(with_s0(true));
    let port_selector = PortSelector {
        name: "grpc".into(),
        number: port,
    };
    let discovery = discovery::endpoint_slices(
        kube.client(NS).await,
        NS,
        "greetserver",
        port_selector,
        Default::default(),
    );
    let gateway = support::gateway_spec(Mode::Balanced)
        .start("127.0.0.1:9".into(), discovery, Default::default())
        .await
        .unwrap();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    until_ready(&gateway, 1).await;
    // One ready: only it gets requests, and /healthz names no fallback.
    assert_eq!(greet_n(&rest, 40).await, BTreeMap::from([(s0.name.clone(), 40)]));
    let said = healthz(&rest).await;
    assert_eq!(said["discovery"].get("serving_while_terminating"), None, "{said}");

    // s0 turns not ready: the terminating one still serving takes every request,
    // the one not serving none, and /healthz says so.
    kube.apply_slice(with_s0(false));
    until_pod_answers(&rest, &s1.name, Duration::from_secs(5)).await;
    assert_eq!(greet_n(&rest, 40).await, BTreeMap::from([(s1.name.clone(), 40)]));
    let said = healthz(&rest).await;
    assert_eq!(said["ready_endpoints"], 1, "{said}");
    assert_eq!(
        said["discovery"]["serving_while_terminating"],
        serde_json::json!([{"address": format!("{ip1}:{port}"), "pod": s1.name}]),
        "{said}"
    );
    let observed: Vec<_> = gateway
        .gateway
        .upstream
        .balancer()
        .endpoints()
        .iter()
        .map(|e| (e.pod_name.clone().unwrap(), e.ready, e.terminating))
        .collect();
    assert_eq!(
        observed,
        [
            (s0.name.clone(), false, false),
            (s1.name.clone(), true, true),
            (s2.name.clone(), false, false),
        ]
    );

    // s0 ready again: the fallback ends.
    kube.apply_slice(with_s0(true));
    until_pod_answers(&rest, &s0.name, Duration::from_secs(5)).await;
    assert_eq!(greet_n(&rest, 40).await, BTreeMap::from([(s0.name.clone(), 40)]));
    let said = healthz(&rest).await;
    assert_eq!(said["discovery"].get("serving_while_terminating"), None, "{said}");
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn forbidden_endpoint_slices_keep_the_gateway_up_and_say_why() {
    let kube = FakeKube::start().await;
    kube.forbid("endpointslices", true);
    let health = greet_gateway::discovery::DiscoveryHealth::default();
    let discovery = watch_greetserver_slices(&kube, 50051, &health).await;
    let gateway = support::gateway_spec(Mode::Balanced)
        .start("127.0.0.1:9".into(), discovery, health.clone())
        .await
        .unwrap();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    // Wait for the watcher's first failed attempt, then check the gateway answers at once and says why.
    let deadline = Instant::now() + Duration::from_secs(5);
    while health.problem().is_none() {
        assert!(
            Instant::now() < deadline,
            "the EndpointSlice watch never reported its failure"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let response = rest.greet("Ada", "Lovelace").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(response.status, 503);
    let error = response.json().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(
            "which is failing: EndpointSlice watch: forbidden: needs get, list and watch on endpointslices.discovery.k8s.io in namespace default (apply k8s/greetclient-rbac.yaml)"
        ),
        "{error}"
    );
    // Access granted: the failure clears.
    kube.forbid("endpointslices", false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while health.problem().is_some() {
        assert!(Instant::now() < deadline, "the watch did not recover");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.shutdown().await.unwrap();
}

/// The gateway's discovery of the `greetserver` Service's slices, port `grpc` (else `port`).
async fn watch_greetserver_slices(
    kube: &FakeKube,
    port: u16,
    health: &greet_gateway::discovery::DiscoveryHealth,
) -> greet_gateway::discovery::DiscoveryStream {
    let port = PortSelector {
        name: "grpc".into(),
        number: port,
    };
    discovery::endpoint_slices(kube.client(NS).await, NS, "greetserver", port, health.clone())
}

/// The gateway pods of NS, followed as greet-top does by default.
fn gateway_pods() -> GatewayPods {
    GatewayPods {
        namespace: NS.into(),
        selector: "run=greetclient".into(),
        port: 9092,
        subscription: Subscription::Summaries,
        token: None,
    }
}

async fn target(kube: &FakeKube) -> KubeTarget {
    greet_tests::kube_target(kube, NS).await
}

/// greet-top's pod watch of `run=greetserver` pods, feeding a channel.
async fn watch_greetserver_pods(kube: &FakeKube) -> (mpsc::Receiver<AppEvent>, CancellationToken) {
    let (tx, rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    tokio::spawn(kube_source::watch_pods(
        target(kube).await,
        NS.into(),
        "run=greetserver".into(),
        tx,
        cancel.clone(),
    ));
    (rx, cancel)
}

/// Runs greet-top's pod watch into a dashboard model until `done` holds.
async fn pods_until(app: &mut App, rx: &mut mpsc::Receiver<AppEvent>, what: &str, done: impl Fn(&App) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(app) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(event)) => app.update(event, Instant::now()),
            Ok(None) => panic!("the pod watch stopped"),
            Err(_) => panic!("timed out waiting for {what}; kube status {:?}", app.kube()),
        }
    }
}

#[tokio::test]
async fn greet_top_sees_pods_appear_and_vanish() {
    let kube = FakeKube::start().await;
    let labels = [("run", "greetserver")];
    kube.apply_pod(pod(NS, "greetserver-deploy-a", &labels, "10.1.0.1", true));
    kube.apply_pod(pod(NS, "greetserver-deploy-b", &labels, "10.1.0.2", false));
    kube.apply_pod(pod(
        NS,
        "greetclient-deploy-x",
        &[("run", "greetclient")],
        "10.1.0.9",
        true,
    ));

    let (mut rx, cancel) = watch_greetserver_pods(&kube).await;
    let mut app = App::new("test", Instant::now());
    pods_until(&mut app, &mut rx, "two pods, synced", |app| {
        app.stats().pods.len() == 2 && app.kube().is_some_and(|k| k.watch == WatchState::Synced)
    })
    .await;
    let kube_status = app.kube().cloned().unwrap();
    assert_eq!(
        (kube_status.context.as_str(), kube_status.namespace.as_str()),
        ("fake-kube", NS)
    );
    let a = &app.stats().pods["greetserver-deploy-a"];
    assert_eq!((a.ip.as_str(), a.ready), ("10.1.0.1", Some(true)));
    assert_eq!(app.stats().pods["greetserver-deploy-b"].ready, Some(false));
    assert_eq!(a.info.as_ref().and_then(|i| i.phase.as_deref()), Some("Running"));

    kube.apply_pod(pod(NS, "greetserver-deploy-c", &labels, "10.1.0.3", true));
    pods_until(&mut app, &mut rx, "a third pod", |app| {
        app.stats().pods.contains_key("greetserver-deploy-c")
    })
    .await;

    kube.delete_pod(NS, "greetserver-deploy-a");
    pods_until(&mut app, &mut rx, "pod a marked gone", |app| {
        app.stats().pods["greetserver-deploy-a"].gone
    })
    .await;

    // The watch drops and history expires: a re-list converges on the same pods.
    kube.expire_history();
    kube.drop_watches();
    kube.delete_pod(NS, "greetserver-deploy-b");
    pods_until(&mut app, &mut rx, "pod b marked gone after the re-list", |app| {
        app.stats().pods["greetserver-deploy-b"].gone
    })
    .await;
    let live: Vec<&str> = app.stats().live_pods().map(|p| p.name.as_str()).collect();
    assert_eq!(live, ["greetserver-deploy-c"]);
    cancel.cancel();
}

#[tokio::test]
async fn greet_top_shows_a_forbidden_pod_watch_as_the_missing_rule() {
    let kube = FakeKube::start().await;
    kube.forbid("pods", true);
    let (mut rx, cancel) = watch_greetserver_pods(&kube).await;
    let mut app = App::new("test", Instant::now());
    pods_until(&mut app, &mut rx, "a forbidden status", |app| {
        matches!(app.kube().map(|k| &k.watch), Some(WatchState::Forbidden(_)))
    })
    .await;
    assert_eq!(
        app.kube().unwrap().watch,
        WatchState::Forbidden(
            "needs get, list and watch on pods in namespace default (apply k8s/greet-top-rbac.yaml)".into()
        )
    );
    // Access granted: the watch recovers by itself.
    kube.forbid("pods", false);
    kube.apply_pod(pod(
        NS,
        "greetserver-deploy-a",
        &[("run", "greetserver")],
        "10.1.0.1",
        true,
    ));
    pods_until(&mut app, &mut rx, "recovery after the RBAC fix", |app| {
        app.kube().is_some_and(|k| k.watch == WatchState::Synced) && app.stats().pods.len() == 1
    })
    .await;
    cancel.cancel();
}

#[tokio::test]
async fn greet_top_once_joins_kube_pods_with_gateway_hits() {
    let cluster = support::cluster(2, Mode::Balanced).await;
    let kube = FakeKube::start().await;
    let labels = [("run", "greetserver")];
    for (name, addr) in cluster.pods() {
        kube.apply_pod(pod(NS, name, &labels, &addr.ip().to_string(), true));
    }
    // A pod that is scheduled but got no traffic (yet) must be listed too.
    kube.apply_pod(pod(NS, "greetserver-test-pending", &labels, "127.0.0.99", false));
    let dir = std::env::temp_dir().join(format!("greet-top-kube-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = kube.write_kubeconfig(&dir, NS);

    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["--gateway", &cluster.observe_url(), "--once", "2s", "--output", "json"])
        .env("KUBECONFIG", &kubeconfig)
        .env_remove("KUBERNETES_SERVICE_HOST")
        // Loopback only, whatever proxy the environment names.
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .kill_on_drop(true)
        .output();
    let hub = std::sync::Arc::clone(&cluster.gateway.gateway.hub);
    let load = async {
        // Load once greet-top has subscribed (its snapshot and every later
        // request are then counted), well inside its 2 s window.
        let deadline = Instant::now() + Duration::from_secs(1);
        while hub.subscribers() == 0 {
            assert!(Instant::now() < deadline, "greet-top did not subscribe within 1 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        greet_n(cluster.rest(), 40).await
    };
    let (output, hits) = tokio::join!(child, load);
    let output = output.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let pods: BTreeMap<String, (u64, bool)> = report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                (p["hits"].as_u64().unwrap(), p["ready"].as_bool().unwrap()),
            )
        })
        .collect();
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert_eq!(pods["greetserver-test-pending"], (0, false));
    for pod in report["pods"].as_array().unwrap() {
        assert_eq!(pod["phase"], "Running", "{pod}");
        assert_eq!(pod["restarts"], 0, "{pod}");
        assert!(pod["node"].as_str().is_some_and(|n| !n.is_empty()), "{pod}");
    }
    for (name, _) in cluster.pods() {
        assert_eq!(pods[name], (hits[name] as u64, true), "{pods:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn greet_top_follows_every_gateway_pod_through_port_forward_and_switches_them_all() {
    use greet_top::controls::{Controls, GatewayChannels};

    let cluster = support::cluster(3, Mode::Sticky).await;
    // A second gateway replica in front of the same pods.
    let second = support::gateway_spec(Mode::Sticky)
        .start(
            cluster.service_addr.to_string(),
            greet_gateway::discovery::static_endpoints(
                cluster
                    .pods()
                    .map(|(name, addr)| {
                        greet_gateway::discovery::EndpointInfo::ready(addr.to_string()).with_pod_name(name)
                    })
                    .collect(),
            ),
            Default::default(),
        )
        .await
        .unwrap();
    let kube = FakeKube::start().await;
    let gateway_labels = [("run", "greetclient")];
    kube.apply_pod(pod(NS, "greetclient-deploy-1", &gateway_labels, "10.2.0.1", true));
    kube.apply_pod(pod(NS, "greetclient-deploy-2", &gateway_labels, "10.2.0.2", true));
    kube.port_forward_to(NS, "greetclient-deploy-1", cluster.gateway.observe_addr);
    kube.port_forward_to(NS, "greetclient-deploy-2", second.observe_addr);

    let (tx, mut rx) = mpsc::channel(4096);
    let cancel = CancellationToken::new();
    let channels: GatewayChannels = Default::default();
    tokio::spawn(kube_source::follow_gateway_pods(
        target(&kube).await,
        gateway_pods(),
        tx.clone(),
        channels.clone(),
        cancel.clone(),
    ));
    let mut app = App::new("test", Instant::now());
    pods_until(&mut app, &mut rx, "both gateways synced", |app| {
        app.gateways().len() == 2 && app.gateways().values().all(|g| g.synced)
    })
    .await;
    assert_eq!(app.mode(), Some(Mode::Sticky));

    // Traffic through both replicas is summed per pod.
    greet_n(cluster.rest(), 20).await;
    greet_n(&RestClient::new(format!("http://{}", second.rest_addr)), 10).await;
    pods_until(&mut app, &mut rx, "30 requests from two gateways", |app| {
        app.stats().total() == 30
    })
    .await;

    // m: SetMode goes to every gateway through its tunnel.
    let action = app.on_key(
        crossterm::event::KeyEvent::from(crossterm::event::KeyCode::Char('m')),
        Instant::now(),
    );
    assert_eq!(action, Some(greet_top::state::Action::SetMode(Mode::Balanced)));
    let controls = Controls {
        gateways: channels.clone(),
        load: None,
        demo: None,
        events: tx.clone(),
    };
    controls.perform(action.unwrap());
    pods_until(&mut app, &mut rx, "both gateways switched", |app| {
        app.message()
            .is_some_and(|m| m.text == "all 2 gateways switched to balanced")
    })
    .await;
    for rest in [
        cluster.rest().clone(),
        RestClient::new(format!("http://{}", second.rest_addr)),
    ] {
        let mode = rest.send(http::Method::GET, "/mode", None, "").await.unwrap();
        assert_eq!(mode.json().unwrap(), serde_json::json!({"mode": "balanced"}));
    }
    assert!(kube.port_forward_count() >= 2);

    // A gateway pod goes away: it is dropped from the view and from the controls.
    kube.delete_pod(NS, "greetclient-deploy-2");
    pods_until(&mut app, &mut rx, "gateway 2 removed", |app| app.gateways().len() == 1).await;
    assert_eq!(
        channels.lock().unwrap().keys().collect::<Vec<_>>(),
        ["greetclient-deploy-1"]
    );
    cancel.cancel();
    second.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_gateway_pod_whose_port_forward_is_forbidden_shows_why() {
    let kube = FakeKube::start().await;
    kube.apply_pod(pod(
        NS,
        "greetclient-deploy-1",
        &[("run", "greetclient")],
        "10.2.0.1",
        true,
    ));
    kube.port_forward_to(NS, "greetclient-deploy-1", "127.0.0.1:9".parse().unwrap());
    kube.forbid("pods/portforward", true);
    let (tx, mut rx) = mpsc::channel(1024);
    let cancel = CancellationToken::new();
    tokio::spawn(kube_source::follow_gateway_pods(
        target(&kube).await,
        gateway_pods(),
        tx,
        Default::default(),
        cancel.clone(),
    ));
    let mut app = App::new("test", Instant::now());
    pods_until(&mut app, &mut rx, "a reconnecting gateway", |app| {
        app.gateways()
            .values()
            .any(|g| matches!(g.connection, greet_top::state::Connection::Reconnecting { .. }))
    })
    .await;
    let greet_top::state::Connection::Reconnecting { error, .. } = &app.gateways()["greetclient-deploy-1"].connection
    else {
        unreachable!()
    };
    assert_eq!(
        error,
        "gateway unreachable: port-forward to greetclient-deploy-1 forbidden: needs create on pods/portforward in namespace default (apply k8s/greet-top-rbac.yaml)"
    );
    cancel.cancel();
}

#[tokio::test]
async fn endpoint_slices_survive_an_api_server_restart() {
    let (servers, port) = pods_on_one_port().await;
    let kube = FakeKube::start().await;
    let slice = |eps: &[(&str, &str, bool, bool)]| {
        endpoint_slice(NS, "greetserver-a", "greetserver", "grpc", i32::from(port), eps)
    };
    let ips: Vec<String> = servers.iter().map(ip).collect();
    kube.apply_slice(slice(&[
        (&ips[0], &servers[0].name, true, false),
        (&ips[1], &servers[1].name, true, false),
    ]));
    let health = greet_gateway::discovery::DiscoveryHealth::default();
    let discovery = watch_greetserver_slices(&kube, port, &health).await;
    let gateway = support::gateway_spec(Mode::Balanced)
        .start("127.0.0.1:9".into(), discovery, health.clone())
        .await
        .unwrap();
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    until_ready(&gateway, 2).await;

    // The API server is down for 2 s; requests keep flowing to the known pods meanwhile.
    let load = {
        let rest = rest.clone();
        tokio::spawn(async move {
            let mut hits = BTreeMap::new();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let response = rest.greet("Ada", "Lovelace").await.unwrap();
                assert_eq!(response.status, 200, "{}", response.body);
                *hits.entry(support::pod_of(&response.body)).or_insert(0usize) += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            hits
        })
    };
    let watches = kube.watch_count();
    let noticed = {
        let health = health.clone();
        tokio::spawn(async move {
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                if let Some(problem) = health.problem() {
                    return Some(problem);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            None
        })
    };
    kube.restart(Duration::from_secs(2)).await;
    let during = load.await.unwrap();
    let problem = noticed.await.unwrap().expect("the outage was noticed");
    assert!(problem.starts_with("EndpointSlice watch: "), "{problem}");
    assert_eq!(during.len(), 2, "both pods kept getting requests: {during:?}");

    // After the restart the watch resumes: a new pod is picked up.
    kube.apply_slice(slice(&[
        (&ips[0], &servers[0].name, true, false),
        (&ips[1], &servers[1].name, true, false),
        (&ips[2], &servers[2].name, true, false),
    ]));
    until_pod_answers(&rest, &servers[2].name, Duration::from_secs(10)).await;
    assert!(kube.watch_count() > watches, "the watcher reconnected");
    assert_eq!(health.problem(), None, "recovered");
    gateway.shutdown().await.unwrap();
}

/// Bounds a wait of the port-forward test.
async fn within<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    const WAIT: Duration = Duration::from_secs(15);
    match tokio::time::timeout(WAIT, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// The fake API server's port-forward, as greet-top uses it (moved here from the fake's
/// self-tests, which do not depend on greet-top).
#[tokio::test]
async fn port_forward_carries_grpc_to_a_real_greet_server() {
    let kube = FakeKube::start().await;
    let mut server = LocalPod::start("greetserver-pf", "127.0.0.1:0".parse().unwrap(), support::pod_options())
        .await
        .unwrap();
    kube.apply_pod(pod(
        NS,
        "greetserver-pf",
        &[("run", "greetserver"), ("app", "greet")],
        "10.1.0.1",
        true,
    ));
    kube.port_forward_to(NS, "greetserver-pf", server.addr);
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(kube.client(NS).await, NS);

    // As `port_forward_channel` in tui/kube_source.rs: a new tunnel per connection.
    let connector = tower::service_fn(move |_: http::Uri| {
        let pods = pods.clone();
        async move {
            let mut forwarder = pods.portforward("greetserver-pf", &[9092]).await?;
            let stream = forwarder.take_stream(9092).ok_or("no stream for port 9092")?;
            tokio::spawn(async move {
                let _ = forwarder.join().await;
            });
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(hyper_util::rt::TokioIo::new(stream))
        }
    });
    let endpoint = tonic::transport::Endpoint::from_static("http://pf");
    let channel = within(
        "the gRPC connection",
        endpoint.connect_with_connector(connector.clone()),
    )
    .await
    .unwrap();
    let mut client = greet_proto::greet::greet_service_client::GreetServiceClient::new(channel);
    let request = |i: usize| greet_proto::greet::GreetingRequest {
        greeting: Some(greet_proto::greet::Greeting {
            first_name: "Ada".into(),
            last_name: format!("Lovelace-{i}"),
        }),
    };
    for i in 0..2 {
        let reply = within("a Greet call", client.greet(request(i)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.pod_name, "greetserver-pf");
        assert!(reply.result.contains(&format!("Ada Lovelace-{i}")), "{}", reply.result);
    }
    // Both calls shared one HTTP/2 connection, so one tunnel.
    assert_eq!(kube.port_forward_count(), 1);

    // A second channel is a second tunnel; both work side by side.
    let channel = within("the second connection", endpoint.connect_with_connector(connector))
        .await
        .unwrap();
    let mut other = greet_proto::greet::greet_service_client::GreetServiceClient::new(channel);
    let (a, b) = within(
        "two concurrent calls",
        futures_util::future::join(client.greet(request(2)), other.greet(request(3))),
    )
    .await;
    assert_eq!(a.unwrap().into_inner().pod_name, "greetserver-pf");
    assert_eq!(b.unwrap().into_inner().pod_name, "greetserver-pf");
    assert_eq!(kube.port_forward_count(), 2);

    drop((client, other));
    within("the greet-server to stop", server.stop()).await.unwrap();
}
