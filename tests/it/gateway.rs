//! The gateway end to end over real sockets: three greet-servers on loopback
//! behind a connection-balancing "Service", and a real gateway.

use greet_tests as support;

use std::collections::BTreeMap;
use std::time::Duration;

use greet_gateway::discovery::{self, EndpointSet};
use greet_proto::Mode;
use greet_proto::observe::observer_client::ObserverClient;
use greet_proto::observe::{self, SetModeRequest, WatchRequest, event};
use http::Method;
use support::{greet_concurrently, greet_n};
use tokio_stream::StreamExt;

#[tokio::test]
async fn sticky_sends_everything_to_one_pod_and_balanced_splits_exactly() {
    let cluster = support::cluster(3, Mode::Sticky).await;
    let mut observer = ObserverClient::connect(cluster.observe_url()).await.unwrap();
    let mut watch = observer.watch(WatchRequest::default()).await.unwrap().into_inner();

    let first = watch.next().await.unwrap().unwrap();
    let Some(event::Kind::Snapshot(snapshot)) = first.kind else {
        panic!("first Watch event must be the snapshot, got {first:?}");
    };
    assert_eq!(snapshot.mode, observe::Mode::Sticky as i32);
    assert_eq!(snapshot.total_requests, 0);
    assert_eq!(snapshot.sticky_target, cluster.service_addr.to_string());

    let sticky = greet_n(cluster.rest(), 300).await;
    assert_eq!(sticky.len(), 1, "sticky must land every request on one pod: {sticky:?}");
    assert_eq!(sticky.values().sum::<usize>(), 300);

    let response = cluster.rest().set_mode(Mode::Balanced).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.json().unwrap(), serde_json::json!({"mode": "balanced"}));

    let balanced = greet_n(cluster.rest(), 300).await;
    let expected: BTreeMap<String, usize> = cluster.pods().map(|(name, _)| (name.to_owned(), 100)).collect();
    assert_eq!(balanced, expected);

    // The Watch stream saw every request, on the right pod, and the switch.
    let mut requests: BTreeMap<(i32, String), usize> = BTreeMap::new();
    let mut mode_changes = Vec::new();
    let mut endpoint_sets = 0;
    let mut last_seq = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while requests.values().sum::<usize>() < 600 {
        let event = tokio::time::timeout_at(deadline, watch.next())
            .await
            .expect("all 600 request events within 10 s")
            .unwrap()
            .unwrap();
        match event.kind.unwrap() {
            event::Kind::Request(r) => {
                assert!(r.seq > last_seq, "events arrive in order");
                last_seq = r.seq;
                assert_eq!(r.grpc_code, 0, "{r:?}");
                assert_eq!(r.error, "");
                assert!(r.latency_us > 0);
                assert_eq!(r.attempts, 1);
                let (_, addr) = cluster
                    .pods()
                    .find(|(name, _)| *name == r.pod_name)
                    .expect("a known pod");
                assert_eq!(r.pod_ip, addr.ip().to_string());
                if r.mode == observe::Mode::Balanced as i32 {
                    assert_eq!(r.endpoint, addr.to_string(), "balanced dials the pod itself");
                } else {
                    assert_eq!(r.endpoint, cluster.service_addr.to_string(), "sticky dials the Service");
                }
                *requests.entry((r.mode, r.pod_name)).or_default() += 1;
            }
            event::Kind::ModeChanged(m) => {
                last_seq = m.seq;
                mode_changes.push((m.previous, m.mode));
            }
            event::Kind::EndpointsChanged(e) => {
                last_seq = e.seq;
                endpoint_sets += 1;
                assert_eq!(e.endpoints.len(), 3);
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(
        mode_changes,
        [(observe::Mode::Sticky as i32, observe::Mode::Balanced as i32)]
    );
    // The one endpoint set is in the snapshot or in the stream, never in both.
    let in_snapshot = usize::from(!snapshot.endpoints.is_empty());
    assert_eq!(endpoint_sets + in_snapshot, 1, "{:?}", snapshot.endpoints);
    let sticky_pod = sticky.keys().next().unwrap();
    assert_eq!(requests[&(observe::Mode::Sticky as i32, sticky_pod.clone())], 300);
    for (name, _) in cluster.pods() {
        assert_eq!(requests[&(observe::Mode::Balanced as i32, name.to_owned())], 100);
    }

    // GetState agrees with what was sent.
    let state = observer
        .get_state(observe::GetStateRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.total_requests, 600);
    assert_eq!(state.mode, observe::Mode::Balanced as i32);
    let totals: BTreeMap<String, u64> = state.pods.iter().map(|p| (p.pod_name.clone(), p.requests)).collect();
    for (name, _) in cluster.pods() {
        let expected = if name == sticky_pod { 400 } else { 100 };
        assert_eq!(totals[name], expected);
    }
}

#[tokio::test]
async fn reply_text_is_exactly_the_articles() {
    let cluster = support::cluster(1, Mode::Sticky).await;
    let response = cluster.rest().greet("Hitesh", "Pattanayak").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.content_type.as_deref(), Some("text/plain; charset=utf-8"));
    let (name, addr) = cluster.pods().next().unwrap();
    assert_eq!(
        response.body,
        format!(
            "reponse from Greet rpc: Hello, Hitesh Pattanayak from pod: name({name}), ip({}).",
            addr.ip()
        )
    );
}

#[tokio::test]
async fn set_mode_over_grpc_switches_and_is_reported() {
    let cluster = support::cluster(3, Mode::Balanced).await;
    let mut observer = ObserverClient::connect(cluster.observe_url()).await.unwrap();
    let state = observer
        .set_mode(SetModeRequest {
            mode: observe::Mode::Sticky as i32,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(state.mode, observe::Mode::Sticky as i32);
    let mode = cluster.rest().send(Method::GET, "/mode", None, "").await.unwrap();
    assert_eq!(mode.json().unwrap(), serde_json::json!({"mode": "sticky"}));
    assert_eq!(greet_n(cluster.rest(), 30).await.len(), 1);

    let status = observer.set_mode(SetModeRequest { mode: 0 }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "mode 0 is not a mode: send MODE_STICKY (1), MODE_BALANCED (2) or MODE_LEAST_LOADED (3)"
    );
}

#[tokio::test]
async fn balanced_with_no_endpoints_fails_fast_with_503() {
    let gateway = support::gateway_spec(Mode::Balanced)
        .start(
            "127.0.0.1:9".into(),
            discovery::static_endpoints(EndpointSet::new()),
            Default::default(),
        )
        .await
        .unwrap();
    let rest = greet_demo::rest_client::RestClient::new(format!("http://{}", gateway.rest_addr));
    let started = std::time::Instant::now();
    let response = rest.greet("Ada", "Lovelace").await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status, 503);
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    assert_eq!(response.content_type.as_deref(), Some("application/json"));
    let error = response.json().unwrap()["error"].as_str().unwrap().to_owned();
    assert_eq!(
        error,
        "no ready endpoint in balanced mode (discovery: test); check that the gRPC pods are running and ready, or switch the gateway to sticky mode (PUT /mode)"
    );
    let health = rest.send(Method::GET, "/healthz", None, "").await.unwrap();
    assert_eq!(health.status, 503);
    // /healthz says it in the same words.
    assert_eq!(health.json().unwrap()["error"], error);
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_requests_get_clear_4xx_json_errors_and_nothing_breaks() {
    let cluster = support::cluster(1, Mode::Sticky).await;
    let rest = cluster.rest();
    // (method, path, content type, body, expected status, text the error must contain)
    type Case<'a> = (Method, &'a str, Option<&'a str>, String, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            Method::POST,
            "/greet",
            None,
            r#"{"first_name":"a","last_name":"b"}"#.into(),
            415,
            "expected Content-Type: application/json",
        ),
        (
            Method::POST,
            "/greet",
            Some("text/plain"),
            "hi".into(),
            415,
            "expected Content-Type: application/json",
        ),
        (
            Method::POST,
            "/greet",
            Some("application/json"),
            "{not json".into(),
            400,
            "Failed to parse the request body as JSON",
        ),
        (
            Method::POST,
            "/greet",
            Some("application/json"),
            r#"{"first_name":"a"}"#.into(),
            400,
            "missing field `last_name`",
        ),
        (
            Method::POST,
            "/greet",
            Some("application/json"),
            r#"{"first_name":1,"last_name":"b"}"#.into(),
            400,
            "invalid type: integer `1`, expected a string",
        ),
        (
            Method::POST,
            "/greet",
            Some("application/json"),
            format!(r#"{{"first_name":"{}","last_name":"b"}}"#, "x".repeat(20_000)),
            413,
            "request body is larger than 16384 bytes",
        ),
        (
            Method::PUT,
            "/mode",
            Some("application/json"),
            r#"{"mode":"random"}"#.into(),
            400,
            r#"unknown mode "random": expected "sticky", "balanced", "least-loaded" or "dns""#,
        ),
        (
            Method::PUT,
            "/mode",
            Some("application/json"),
            r#"{"mod":"sticky"}"#.into(),
            400,
            "invalid body: unknown field `mod`, expected `mode`",
        ),
        // Valid JSON of another shape switches nothing (serde alone takes
        // a one-element array for the object, and ignores extra fields).
        (
            Method::PUT,
            "/mode",
            Some("application/json"),
            r#"["balanced"]"#.into(),
            400,
            "the body is an array, expected a JSON object",
        ),
        (
            Method::PUT,
            "/mode",
            Some("application/json"),
            r#"{"mode":"balanced","force":true}"#.into(),
            400,
            "invalid body: unknown field `force`, expected `mode`",
        ),
        (
            Method::POST,
            "/greet",
            Some("application/json"),
            r#"["Ada","Lovelace"]"#.into(),
            400,
            "the body is an array, expected a JSON object",
        ),
        (
            Method::POST,
            "/greet",
            Some("application/json"),
            r#"{"first_name":"","last_name":"Lovelace"}"#.into(),
            400,
            "first_name is empty",
        ),
        (Method::GET, "/greet", None, String::new(), 405, "method not allowed"),
        (Method::GET, "/nope", None, String::new(), 404, "no such path"),
    ];
    for (method, path, content_type, body, status, needle) in cases {
        let response = rest.send(method.clone(), path, content_type, body).await.unwrap();
        assert_eq!(response.status, status, "{method} {path}: {}", response.body);
        assert_eq!(
            response.content_type.as_deref(),
            Some("application/json"),
            "{method} {path}"
        );
        let error = response.json().unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(needle), "{method} {path}: {error:?} lacks {needle:?}");
    }
    // Still serving, mode unchanged.
    let response = rest.greet("Ada", "Lovelace").await.unwrap();
    assert_eq!(response.status, 200);
    let mode = rest.send(Method::GET, "/mode", None, "").await.unwrap();
    assert_eq!(mode.json().unwrap(), serde_json::json!({"mode": "sticky"}));
}

#[tokio::test]
async fn upstream_down_is_a_503_and_the_gateway_keeps_serving() {
    let cluster = support::cluster(2, Mode::Sticky).await;
    // Sticky to a port where nothing listens.
    let gateway = support::gateway_spec(Mode::Sticky)
        .start(
            "127.0.0.1:1".into(),
            discovery::static_endpoints(
                cluster
                    .pods()
                    .map(|(_, addr)| greet_gateway::discovery::EndpointInfo::ready(addr.to_string()))
                    .collect(),
            ),
            Default::default(),
        )
        .await
        .unwrap();
    let rest = greet_demo::rest_client::RestClient::new(format!("http://{}", gateway.rest_addr));
    let response = rest.greet("Ada", "Lovelace").await.unwrap();
    assert_eq!(response.status, 503, "{}", response.body);
    let error = response.json().unwrap()["error"].as_str().unwrap().to_owned();
    assert!(
        error.starts_with("greet-server at 127.0.0.1:1 is unavailable ("),
        "{error}"
    );
    assert!(error.ends_with("); check that it is running and reachable"), "{error}");
    // Switch to balanced: the same gateway process serves again.
    assert_eq!(rest.set_mode(Mode::Balanced).await.unwrap().status, 200);
    let hits = greet_n(&rest, 10).await;
    assert_eq!(hits.values().sum::<usize>(), 10);
    gateway.shutdown().await.unwrap();
}

#[tokio::test]
async fn balanced_routes_around_a_dead_pod_and_follows_endpoint_updates() {
    let mut cluster = support::cluster(3, Mode::Balanced).await;
    assert_eq!(greet_n(cluster.rest(), 30).await.len(), 3);

    // Kill one pod without telling discovery: requests are retried elsewhere.
    let dead = cluster.pods().next().unwrap().0.to_owned();
    cluster.crash_pod(&dead).await.unwrap();
    assert_eq!(cluster.registry().len(), 3, "a crashed pod stays listed");
    let hits = greet_n(cluster.rest(), 30).await;
    assert_eq!(hits.values().sum::<usize>(), 30);
    assert!(!hits.contains_key(&dead), "{hits:?}");

    // Discovery drops it: the two survivors split traffic exactly.
    cluster.kill_pod(&dead).await.unwrap();
    // The update is applied by the gateway's discovery task; wait for it to land.
    support::until_balancer_follows_the_registry(&cluster).await;
    let hits = greet_n(cluster.rest(), 100).await;
    assert_eq!(hits.values().copied().collect::<Vec<_>>(), [50, 50], "{hits:?}");
}

#[tokio::test]
async fn max_connection_age_lets_a_sticky_client_reach_every_pod() {
    let mut config = support::config(3, Mode::Sticky);
    config.pod.max_connection_age = Some(Duration::from_millis(200));
    let cluster = greet_demo::LocalCluster::start(config).await.unwrap();
    // One request after another, each answered 200 (none lost to a GOAWAY):
    // the Service proxy gives each new connection the next pod.
    let seen = support::greet_until_every_pod(cluster.rest(), 3, Duration::from_secs(10)).await;
    let pods: Vec<&str> = cluster.pods().map(|(name, _)| name).collect();
    assert_eq!(seen.keys().map(String::as_str).collect::<Vec<_>>(), pods);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn balanced_round_robin_is_exact_with_concurrent_clients_on_every_thread() {
    let cluster = support::cluster(3, Mode::Balanced).await;
    let hits = greet_concurrently(cluster.rest(), 12, 75).await;
    let expected: BTreeMap<String, usize> = cluster.pods().map(|(name, _)| (name.to_owned(), 300)).collect();
    assert_eq!(hits, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn switching_mode_under_load_drops_no_request_and_counts_each_once() {
    const CLIENTS: usize = 16;
    const EACH: usize = 50;
    const TOTAL: usize = CLIENTS * EACH;
    let cluster = support::cluster(3, Mode::Sticky).await;
    let mut observer = ObserverClient::connect(cluster.observe_url()).await.unwrap();
    let (mut watch, snapshot) = support::watch_from_snapshot(&mut observer).await;

    let load = {
        let rest = cluster.rest().clone();
        tokio::spawn(async move { greet_concurrently(&rest, CLIENTS, EACH).await })
    };
    // Flip the mode 20 times while the requests are in flight.
    for i in 0..20 {
        let mode = if i % 2 == 0 { Mode::Balanced } else { Mode::Sticky };
        assert_eq!(cluster.rest().set_mode(mode).await.unwrap().status, 200);
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let replies = load.await.unwrap();
    assert_eq!(replies.values().sum::<usize>(), TOTAL, "every request answered 200");

    let state = observer
        .get_state(observe::GetStateRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        state.total_requests, TOTAL as u64,
        "exactly one request event per request"
    );
    assert_eq!(state.pods.iter().map(|p| p.errors).sum::<u64>(), 0);
    assert_eq!(state.mode, observe::Mode::Sticky as i32, "the last switch wins");

    // Every request once in the stream, under the mode that served it.
    let mut by_mode: BTreeMap<i32, BTreeMap<String, usize>> = BTreeMap::new();
    let mut seqs = std::collections::BTreeSet::new();
    let mut last_seq = snapshot.last_seq;
    while last_seq < state.last_seq {
        let message = tokio::time::timeout(Duration::from_secs(10), watch.next())
            .await
            .expect("every event within 10 s")
            .unwrap()
            .unwrap();
        match message.kind.unwrap() {
            event::Kind::Request(r) => {
                assert!(seqs.insert(r.seq), "seq {} twice", r.seq);
                last_seq = r.seq;
                *by_mode.entry(r.mode).or_default().entry(r.pod_name).or_default() += 1;
            }
            event::Kind::ModeChanged(m) => last_seq = m.seq,
            event::Kind::EndpointsChanged(e) => last_seq = e.seq,
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(seqs.len(), TOTAL);
    let sticky = &by_mode[&(observe::Mode::Sticky as i32)];
    let balanced = &by_mode[&(observe::Mode::Balanced as i32)];
    // Sticky rides one connection through the Service: one pod, whatever the switches.
    assert_eq!(sticky.len(), 1, "{sticky:?}");
    // Balanced takes turns across the three pods, interleaved with sticky or not.
    let (min, max) = (balanced.values().min().unwrap(), balanced.values().max().unwrap());
    assert_eq!(balanced.len(), 3, "{balanced:?}");
    assert!(max - min <= 1, "{balanced:?}");
    // The stream, the totals and the replies agree pod by pod.
    let mut streamed: BTreeMap<String, usize> = BTreeMap::new();
    for (pod, n) in by_mode.values().flatten() {
        *streamed.entry(pod.clone()).or_default() += n;
    }
    assert_eq!(streamed, replies);
    let totals: BTreeMap<String, usize> = state
        .pods
        .iter()
        .map(|p| (p.pod_name.clone(), p.requests as usize))
        .collect();
    assert_eq!(totals, replies);
}
