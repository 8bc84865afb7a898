//! Prometheus metrics: the gateway's `/metrics` on its REST port and
//! greet-server's on its own listener count exactly what was served, in the
//! OpenMetrics text format.

use greet_tests as support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use greet_demo::GatewaySpec;
use greet_demo::rest_client::RestClient;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use greet_server::ServerConfig;
use http::Method;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The samples of an exposition: metric name and its labels, sorted, to the value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

fn parse(text: &str) -> Samples {
    assert!(
        text.ends_with("# EOF\n"),
        "an OpenMetrics exposition ends with # EOF:\n{text}"
    );
    let mut samples = Samples::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = if value == "+Inf" {
            f64::INFINITY
        } else {
            value.parse().unwrap()
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let rest = rest.strip_suffix('}').unwrap();
                let labels = rest
                    .split("\",")
                    .map(|pair| {
                        let (key, value) = pair.split_once("=\"").unwrap();
                        (key.to_owned(), value.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name, labels)
            }
        };
        assert!(
            samples.insert((name.to_owned(), labels), value).is_none(),
            "{line} twice"
        );
    }
    samples
}

/// The value of the sample `name{labels}` (exactly those labels), `None` without one.
fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    samples.get(&(name.to_owned(), labels)).copied()
}

/// Every sample of `name`, as (labels, value).
fn all_of<'a>(samples: &'a Samples, name: &'a str) -> impl Iterator<Item = (&'a BTreeMap<String, String>, f64)> {
    samples
        .iter()
        .filter(move |((n, _), _)| n == name)
        .map(|((_, labels), v)| (labels, *v))
}

async fn scrape(base: String) -> Samples {
    let response = RestClient::new(base)
        .send(Method::GET, "/metrics", None, "")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.content_type.as_deref(), Some(OPENMETRICS));
    parse(&response.body)
}

#[tokio::test]
async fn gateway_counts_each_request_by_pod_mode_and_outcome() {
    let cluster = support::cluster(3, Mode::Sticky).await;
    let base = format!("http://{}", cluster.gateway.rest_addr);
    let rest = RestClient::new(base.clone());
    let sticky = support::greet_n(&rest, 7).await;
    rest.set_mode(Mode::Balanced).await.unwrap();
    support::until_balancer_follows_the_registry(&cluster).await;
    let balanced = support::greet_n(&rest, 6).await;
    let rejected = rest
        .send(Method::POST, "/greet", Some("application/json"), r#"["Ada"]"#)
        .await
        .unwrap();
    assert_eq!(rejected.status, 400);

    let samples = scrape(base).await;
    let requests = "greet_gateway_requests_total";
    let (pinned, _) = sticky.iter().next().unwrap();
    assert_eq!(sticky.len(), 1, "{sticky:?}");
    assert_eq!(
        value(
            &samples,
            requests,
            &[("mode", "sticky"), ("outcome", "ok"), ("pod", pinned)]
        ),
        Some(7.0)
    );
    assert_eq!(balanced.len(), 3, "{balanced:?}");
    for pod in balanced.keys() {
        assert_eq!(
            value(
                &samples,
                requests,
                &[("mode", "balanced"), ("outcome", "ok"), ("pod", pod)]
            ),
            Some(2.0),
            "{pod}"
        );
    }
    assert_eq!(
        value(
            &samples,
            requests,
            &[("mode", "balanced"), ("outcome", "rejected"), ("pod", "")]
        ),
        Some(1.0)
    );
    // Nothing else: 7 + 6 + 1 in all.
    assert_eq!(all_of(&samples, requests).map(|(_, v)| v).sum::<f64>(), 14.0);
    let duration = "greet_gateway_request_duration_seconds";
    assert_eq!(value(&samples, &format!("{duration}_count"), &[]), Some(13.0));
    assert_eq!(
        value(&samples, &format!("{duration}_bucket"), &[("le", "+Inf")]),
        Some(13.0)
    );
    let buckets: Vec<f64> = all_of(&samples, &format!("{duration}_bucket"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(buckets.len(), 19);
    assert!(value(&samples, &format!("{duration}_sum"), &[]).unwrap() > 0.0);
    for (name, expected) in [
        ("greet_gateway_retries_total", 0.0),
        ("greet_gateway_ejections_total", 0.0),
        ("greet_gateway_ready_endpoints", 3.0),
        ("greet_gateway_skipped_endpoints", 0.0),
        ("greet_gateway_discovery_errors_total", 0.0),
        ("greet_gateway_observer_subscribers", 0.0),
        ("greet_gateway_observer_dropped_events_total", 0.0),
    ] {
        assert_eq!(value(&samples, name, &[]), Some(expected), "{name}");
    }
    assert_eq!(
        value(&samples, "greet_gateway_mode", &[("mode", "balanced")]),
        Some(1.0)
    );
    assert_eq!(value(&samples, "greet_gateway_mode", &[("mode", "sticky")]), Some(0.0));
    cluster.shutdown().await;
}

#[tokio::test]
async fn gateway_counts_a_failing_endpoint_under_its_grpc_code_and_ejects_it_once() {
    // Nothing listens on port 1: every call is refused, UNAVAILABLE.
    let refused = "127.0.0.1:1";
    let spec = GatewaySpec {
        mode: Mode::Balanced,
        ..GatewaySpec::default()
    };
    let endpoints = discovery::static_endpoints([EndpointInfo::ready(refused)].into_iter().collect());
    let gateway = spec.start(refused.into(), endpoints, Default::default()).await.unwrap();
    let base = format!("http://{}", gateway.rest_addr);
    let rest = RestClient::new(base.clone());
    let balancer = gateway.gateway.upstream.balancer();
    let discovered = async {
        while balancer.ready_count() == 0 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(2), discovered)
        .await
        .expect("the static endpoint reached the balancer");
    for _ in 0..2 {
        assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 503);
    }

    let samples = scrape(base).await;
    let requests = "greet_gateway_requests_total";
    assert_eq!(
        all_of(&samples, requests).collect::<Vec<_>>(),
        [(
            &[("mode", "balanced"), ("outcome", "Unavailable"), ("pod", refused)]
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .into_iter()
                .collect(),
            2.0
        )]
    );
    // The second request found it skipped and tried it anyway: no new ejection.
    for (name, expected) in [
        ("greet_gateway_ejections_total", 1.0),
        ("greet_gateway_skipped_endpoints", 1.0),
        ("greet_gateway_ready_endpoints", 0.0),
        ("greet_gateway_request_duration_seconds_count", 2.0),
    ] {
        assert_eq!(value(&samples, name, &[]), Some(expected), "{name}");
    }
    gateway.shutdown().await.unwrap();
}

/// A greet-server on 127.0.0.1 with its metrics listener: (gRPC, metrics) addresses.
async fn server_with_metrics(stop: &CancellationToken) -> (SocketAddr, SocketAddr) {
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (grpc.local_addr().unwrap(), metrics.local_addr().unwrap());
    let config = ServerConfig {
        pod_name: "pod-m".into(),
        pod_ip: "127.0.0.1".into(),
        max_connection_age: None,
        shutdown_delay: Duration::ZERO,
        drain_timeout: Duration::from_secs(5),
        reply_delay: greet_server::ReplyDelay::default(),
    };
    tokio::spawn(greet_server::serve_with_metrics(
        grpc,
        Some(metrics),
        config,
        stop.clone().cancelled_owned(),
    ));
    addrs
}

fn labels_of<'a>(kind: &'a str, service: &'a str, method: &'a str) -> [(&'a str, &'a str); 3] {
    [("grpc_method", method), ("grpc_service", service), ("grpc_type", kind)]
}

#[tokio::test]
async fn greet_server_counts_calls_as_go_grpc_prometheus_does() {
    let stop = CancellationToken::new();
    let (grpc, metrics) = server_with_metrics(&stop).await;
    let channel = Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut greet = GreetServiceClient::new(channel.clone());
    for i in 0..5 {
        let greeting = Greeting {
            first_name: "Ada".into(),
            last_name: format!("Lovelace-{i}"),
        };
        greet
            .greet(GreetingRequest {
                greeting: Some(greeting),
            })
            .await
            .unwrap();
    }
    let status = greet.greet(GreetingRequest { greeting: None }).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    let health = HealthClient::new(channel.clone())
        .check(HealthCheckRequest { service: String::new() })
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1);
    // A bidirectional stream: one request, one answer, then both sides end.
    let list = v1::ServerReflectionRequest {
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
        ..Default::default()
    };
    let mut answers = v1::server_reflection_client::ServerReflectionClient::new(channel.clone())
        .server_reflection_info(tokio_stream::iter([list]))
        .await
        .unwrap()
        .into_inner();
    let mut answered = 0;
    while answers.message().await.unwrap().is_some() {
        answered += 1;
    }
    assert_eq!(answered, 1);

    let samples = scrape(format!("http://{metrics}")).await;
    let greet_labels = labels_of("unary", "greet.GreetService", "Greet");
    let with_code = |labels: [(&'static str, &'static str); 3], code: &'static str| {
        let mut all = labels.to_vec();
        all.push(("grpc_code", code));
        all
    };
    let handled = "grpc_server_handled_total";
    assert_eq!(value(&samples, "grpc_server_started_total", &greet_labels), Some(6.0));
    assert_eq!(value(&samples, handled, &with_code(greet_labels, "OK")), Some(5.0));
    assert_eq!(
        value(&samples, handled, &with_code(greet_labels, "InvalidArgument")),
        Some(1.0)
    );
    // Every code's series exists from the start, as InitializeMetrics makes them.
    assert_eq!(
        value(&samples, handled, &with_code(greet_labels, "Unavailable")),
        Some(0.0)
    );
    assert_eq!(
        value(&samples, "grpc_server_msg_received_total", &greet_labels),
        Some(6.0)
    );
    assert_eq!(value(&samples, "grpc_server_msg_sent_total", &greet_labels), Some(5.0));
    assert_eq!(
        value(&samples, "grpc_server_handling_seconds_count", &greet_labels),
        Some(6.0)
    );
    let mut inf = greet_labels.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(value(&samples, "grpc_server_handling_seconds_bucket", &inf), Some(6.0));
    let mut fastest = greet_labels.to_vec();
    fastest.push(("le", "0.0001"));
    assert!(value(&samples, "grpc_server_handling_seconds_bucket", &fastest).is_some());

    let check = labels_of("unary", "grpc.health.v1.Health", "Check");
    assert_eq!(value(&samples, handled, &with_code(check, "OK")), Some(1.0));
    assert_eq!(value(&samples, "grpc_server_handling_seconds_count", &check), Some(1.0));
    let watch = labels_of("server_stream", "grpc.health.v1.Health", "Watch");
    assert_eq!(value(&samples, "grpc_server_started_total", &watch), Some(0.0));

    let reflection = labels_of(
        "bidi_stream",
        "grpc.reflection.v1.ServerReflection",
        "ServerReflectionInfo",
    );
    assert_eq!(value(&samples, "grpc_server_started_total", &reflection), Some(1.0));
    assert_eq!(
        value(&samples, "grpc_server_msg_received_total", &reflection),
        Some(1.0)
    );
    assert_eq!(value(&samples, "grpc_server_msg_sent_total", &reflection), Some(1.0));
    assert_eq!(value(&samples, handled, &with_code(reflection, "OK")), Some(1.0));

    // Every histogram counts exactly the calls handled.
    for (labels, count) in all_of(&samples, "grpc_server_handling_seconds_count") {
        let handled_total: f64 = all_of(&samples, handled)
            .filter(|(l, _)| {
                l.iter()
                    .filter(|(k, _)| *k != "grpc_code")
                    .all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|(_, v)| v)
            .sum();
        assert_eq!(count, handled_total, "{labels:?}");
    }

    // A server stream the client leaves after its first message: one sent,
    // handled as Canceled once the server sees the stream reset.
    let mut statuses = HealthClient::new(channel)
        .watch(HealthCheckRequest { service: String::new() })
        .await
        .unwrap()
        .into_inner();
    assert!(statuses.message().await.unwrap().is_some());
    drop(statuses);
    let canceled = with_code(watch, "Canceled");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let samples = loop {
        let samples = scrape(format!("http://{metrics}")).await;
        if value(&samples, handled, &canceled) == Some(1.0) {
            break samples;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the Watch was not handled as Canceled within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(value(&samples, "grpc_server_started_total", &watch), Some(1.0));
    assert_eq!(value(&samples, "grpc_server_msg_received_total", &watch), Some(1.0));
    assert_eq!(value(&samples, "grpc_server_msg_sent_total", &watch), Some(1.0));
    assert_eq!(value(&samples, "grpc_server_handling_seconds_count", &watch), Some(1.0));
    stop.cancel();
}

/// The `/metrics` text, raw.
async fn exposition(metrics: SocketAddr) -> String {
    let response = RestClient::new(format!("http://{metrics}"))
        .send(Method::GET, "/metrics", None, "")
        .await
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.body
}

/// Scrapes until the connection gauges read `open` and `addresses` (at most 5 s).
async fn until_connections(metrics: SocketAddr, open: u32, addresses: u32) -> String {
    let wanted = [
        "# HELP greet_server_open_connections HTTP/2 connections open to this server now.".to_owned(),
        "# TYPE greet_server_open_connections gauge".to_owned(),
        format!("greet_server_open_connections {open}"),
        "# HELP greet_server_client_addresses Distinct client IP addresses with a connection open to this server now."
            .to_owned(),
        "# TYPE greet_server_client_addresses gauge".to_owned(),
        format!("greet_server_client_addresses {addresses}"),
    ]
    .join("\n");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let text = exposition(metrics).await;
        if text.contains(&format!("\n{wanted}\n")) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not {open} connections from {addresses} addresses within 5 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn greet_server_counts_open_connections_and_distinct_client_addresses() {
    let stop = CancellationToken::new();
    let (grpc, metrics) = server_with_metrics(&stop).await;
    until_connections(metrics, 0, 0).await;
    // One connection from 127.0.0.1, two from 127.0.0.2.
    let connect = |from: [u8; 4]| async move {
        tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .unwrap()
            .local_address(Some(std::net::IpAddr::from(from)))
            .connect()
            .await
            .unwrap()
    };
    let one = connect([127, 0, 0, 1]).await;
    let two = connect([127, 0, 0, 2]).await;
    let three = connect([127, 0, 0, 2]).await;
    until_connections(metrics, 3, 2).await;
    drop(one);
    until_connections(metrics, 2, 1).await;
    drop((two, three));
    until_connections(metrics, 0, 0).await;
    stop.cancel();
}
