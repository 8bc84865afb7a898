//! `least-loaded` end to end: real greet-servers on loopback, one made slow
//! with a reply delay, a real gateway, and distributions asserted.

use greet_tests as support;

use std::collections::BTreeMap;
use std::time::Duration;

use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{self, event};
use support::greet_concurrently;
use tokio_stream::StreamExt;

/// Steady load: a few clients, one request at a time each.
const CLIENTS: usize = 8;

/// One test at a time: they measure latency, which the others' load skews.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn least_loaded_cluster() -> greet_demo::LocalCluster {
    let cluster = support::cluster(3, Mode::LeastLoaded).await;
    support::until_balancer_follows_the_registry(&cluster).await;
    cluster
}

fn share(hits: &BTreeMap<String, usize>, pod: &str) -> f64 {
    hits.get(pod).copied().unwrap_or(0) as f64 / hits.values().sum::<usize>() as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pod_25_ms_slower_gets_under_a_tenth_of_the_requests() {
    let _serial = SERIAL.lock().await;
    let cluster = least_loaded_cluster().await;
    let slow = cluster.pods().next().unwrap().0.to_owned();
    cluster.reply_delay(&slow).unwrap().set(Duration::from_millis(25));
    // Until every pod has answered once, an unmeasured one is tried.
    greet_concurrently(cluster.rest(), CLIENTS, 10).await;
    let hits = greet_concurrently(cluster.rest(), CLIENTS, 150).await;
    assert_eq!(hits.values().sum::<usize>(), CLIENTS * 150);
    assert!(share(&hits, &slow) < 0.10, "slow pod {slow}: {hits:?}");
    // Back to normal speed, it is tried again once its estimate decays.
    cluster.reply_delay(&slow).unwrap().set(Duration::ZERO);
    tokio::time::sleep(greet_gateway::LOAD_DECAY * 5).await;
    let hits = greet_concurrently(cluster.rest(), CLIENTS, 100).await;
    assert!(share(&hits, &slow) > 0.20, "recovered pod {slow}: {hits:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn equal_pods_each_get_an_equal_share_within_ten_percent() {
    let _serial = SERIAL.lock().await;
    let cluster = least_loaded_cluster().await;
    greet_concurrently(cluster.rest(), CLIENTS, 10).await;
    let hits = greet_concurrently(cluster.rest(), CLIENTS, 450).await;
    assert_eq!(hits.len(), 3, "{hits:?}");
    for (pod, n) in &hits {
        let equal = (CLIENTS * 450) as f64 / 3.0;
        assert!((*n as f64 - equal).abs() <= equal * 0.10, "{pod}: {hits:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_mode_change_under_load_is_one_event_and_drops_no_request() {
    let _serial = SERIAL.lock().await;
    let cluster = least_loaded_cluster().await;
    // The cycle passes through dns mode, which answers 503 until its first
    // resolve ("not resolved yet"): wait for that (CI once switched first).
    let started = tokio::time::Instant::now();
    while cluster.gateway.gateway.upstream.dns().balancer().ready_count() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "dns mode never resolved");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut observer = ObserverClient::connect(cluster.observe_url()).await.unwrap();
    let (mut watch, snapshot) = support::watch_from_snapshot(&mut observer).await;
    let load = {
        let rest = cluster.rest().clone();
        tokio::spawn(async move { greet_concurrently(&rest, 16, 40).await })
    };
    // Through the whole cycle three times, from least-loaded.
    let mut mode = Mode::LeastLoaded;
    let mut switches = Vec::new();
    for _ in 0..3 * Mode::ALL.len() {
        let next = mode.next();
        let response = cluster.rest().set_mode(next).await.unwrap();
        assert_eq!(response.status, 200, "{}", response.body);
        assert_eq!(response.json().unwrap()["mode"], next.as_str());
        switches.push((next.to_proto() as i32, mode.to_proto() as i32));
        mode = next;
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let replies = load.await.unwrap();
    assert_eq!(replies.values().sum::<usize>(), 16 * 40, "every request answered 200");
    let state = observer
        .get_state(observe::GetStateRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.mode, observe::Mode::LeastLoaded as i32);
    let (mut seen, mut last_seq) = (Vec::new(), snapshot.last_seq);
    while last_seq < state.last_seq {
        let message = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("every event within 10 s")
            .unwrap()
            .unwrap();
        last_seq = match message.kind.unwrap() {
            event::Kind::ModeChanged(m) => {
                seen.push((m.mode, m.previous));
                m.seq
            }
            event::Kind::Request(r) => r.seq,
            event::Kind::EndpointsChanged(e) => e.seq,
            other => panic!("unexpected event {other:?}"),
        };
    }
    assert_eq!(seen, switches, "one mode event per switch, in order");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_ingress_calls_steer_around_the_slow_pod_too() {
    use greet_proto::greet::greet_service_client::GreetServiceClient;
    use greet_proto::greet::{Greeting, GreetingRequest};
    let _serial = SERIAL.lock().await;
    let cluster = least_loaded_cluster().await;
    let slow = cluster.pods().next().unwrap().0.to_owned();
    cluster.reply_delay(&slow).unwrap().set(Duration::from_millis(25));
    let url = format!("http://{}", cluster.gateway.grpc_addr);
    let mut client = GreetServiceClient::connect(url).await.unwrap();
    let mut hits: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..330 {
        let greeting = Greeting {
            first_name: "Ada".into(),
            last_name: format!("Lovelace-{i}"),
        };
        let request = GreetingRequest {
            greeting: Some(greeting),
        };
        let reply = client.greet(request).await.unwrap().into_inner();
        // The first 30 measure every pod; the 300 after are counted.
        if i >= 30 {
            *hits.entry(reply.pod_name).or_default() += 1;
        }
    }
    assert_eq!(hits.values().sum::<usize>(), 300);
    assert!(share(&hits, &slow) < 0.10, "slow pod {slow}: {hits:?}");
}
