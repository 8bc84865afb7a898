//! `pods/{id}/proxy` as a metrics scraper uses it through kube 5's client: a real greet-server
//! metrics listener behind it, the API server's errors, and bytes passed through unchanged.

use std::time::Instant;

use greet_demo::rest_client::RestClient;
use greet_demo::{LocalPod, PodOptions};
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};

use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::*;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const PROMETHEUS_ACCEPT: &str = "text/plain;version=0.0.4;q=0.5,application/openmetrics-text;version=1.0.0";
const PROXY: &str = "/api/v1/namespaces/default/pods";

/// An answer as the scraper sees it.
#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: Option<String>,
    location: Option<String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

async fn send(client: &kube::Client, method: http::Method, path: &str, accept: Option<&str>) -> Answer {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(accept) = accept {
        request = request.header(http::header::ACCEPT, accept);
    }
    let request = request.body(kube::client::Body::empty()).unwrap();
    let response = within("the proxied answer", client.send(request)).await.unwrap();
    let header = |name| {
        response
            .headers()
            .get(name)
            .map(|value: &http::HeaderValue| String::from_utf8_lossy(value.as_bytes()).into_owned())
    };
    let (status, content_type) = (response.status().as_u16(), header(http::header::CONTENT_TYPE));
    let location = header(http::header::LOCATION);
    let body = within("the proxied body", response.into_body().collect())
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        content_type,
        location,
        body,
    }
}

/// A client like [`FakeKube::client`] but without kube's default retry layer: kube 5 retries
/// every 429, 503 and 504 up to 15 times with backoff from 5 ms doubling (minutes in all), so a
/// scraper that wants to see a pod's 503 must turn it off, as these tests do.
async fn client_without_retry(kube: &FakeKube) -> kube::Client {
    let mut config = kube.config("default").await;
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

async fn get(client: &kube::Client, path: &str) -> Answer {
    send(client, http::Method::GET, path, Some(PROMETHEUS_ACCEPT)).await
}

/// The API server's `Status` for an error, exactly.
fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

fn assert_status(answer: &Answer, expected: Value) {
    assert_eq!(answer.status.to_string(), expected["code"].to_string(), "{answer:?}");
    assert_eq!(answer.content_type.as_deref(), Some("application/json"));
    assert_eq!(answer.json(), expected);
}

/// A greet-server named `greetserver-a` on 127.0.0.1 with its metrics
/// listener (stopped when dropped).
async fn greet_server_with_metrics() -> LocalPod {
    let options = PodOptions {
        metrics: true,
        ..PodOptions::default()
    };
    LocalPod::start("greetserver-a", "127.0.0.1:0".parse().unwrap(), options)
        .await
        .unwrap()
}

/// A loopback address nothing listens on (bound, then let go).
async fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A one-shot HTTP/1 server: hands each request's head (as text) to the channel and answers
/// every request with `response`, raw, then closes.
async fn canned_pod(response: &'static [u8]) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (heads, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let heads = heads.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && tcp.read_exact(&mut byte).await.is_ok() {
                    head.push(byte[0]);
                }
                let _ = heads.send(String::from_utf8_lossy(&head).into_owned());
                let _ = tcp.write_all(response).await;
            });
        }
    });
    (addr, received)
}

/// A pod that accepts connections and never answers (holds them until the test ends).
async fn hung_pod() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

#[tokio::test]
async fn pod_proxy_scrapes_a_real_greet_server_metrics_listener() {
    let pod = greet_server_with_metrics().await;
    let (grpc, metrics) = (pod.addr, pod.metrics_addr.unwrap());
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.proxy_to("default", "greetserver-a", 9090, metrics);
    let client = kube.client("default").await;

    let channel = tonic::transport::Channel::from_shared(format!("http://{grpc}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let greeting = Greeting {
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
    };
    let mut greet = GreetServiceClient::new(channel);
    greet
        .greet(GreetingRequest {
            greeting: Some(greeting),
        })
        .await
        .unwrap();
    greet.greet(GreetingRequest { greeting: None }).await.unwrap_err();

    let proxied = get(&client, &format!("{PROXY}/greetserver-a:9090/proxy/metrics")).await;
    let direct = RestClient::new(format!("http://{metrics}"))
        .send(http::Method::GET, "/metrics", None, "")
        .await
        .unwrap();
    assert_eq!(proxied.status, 200);
    assert_eq!(proxied.content_type.as_deref(), Some(OPENMETRICS));
    let text = String::from_utf8(proxied.body.clone()).unwrap();
    assert_eq!(text, direct.body, "the proxied scrape is the pod's own");
    for line in [
        "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"greet.GreetService\",grpc_method=\"Greet\",grpc_code=\"OK\"} 1",
        "grpc_server_handled_total{grpc_type=\"unary\",grpc_service=\"greet.GreetService\",grpc_method=\"Greet\",grpc_code=\"InvalidArgument\"} 1",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));

    // The form kube's typed request builder makes, read as text (what kube's `request_text` gives).
    let request = kube::core::Request::new(PROXY)
        .get_subresource("proxy/metrics", "http:greetserver-a:9090")
        .unwrap();
    let via_builder = within("request_text", client.request_text(request)).await.unwrap();
    assert_eq!(via_builder, text);

    assert_eq!(
        kube.pod_proxy_stats(),
        PodProxyStats {
            requests: 2,
            forwarded: 2,
            bytes: 2 * proxied.body.len() as u64,
        }
    );
    assert_eq!(
        kube.requests(),
        [
            "GET /api/v1/namespaces/default/pods/greetserver-a:9090/proxy/metrics",
            "GET /api/v1/namespaces/default/pods/http:greetserver-a:9090/proxy/metrics",
        ]
    );
    drop(pod);
}

#[tokio::test]
async fn pod_proxy_passes_status_content_type_and_bytes_through_unchanged() {
    const BODY: &[u8] = b"\xff\xfe\x00bin\x80ary\r\n\xc3";
    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-odd; q=\"\xe9\"\r\nX-Pod: no\r\nContent-Length: 13\r\n\r\n\xff\xfe\x00bin\x80ary\r\n\xc3";
    const NOT_FOUND: &[u8] =
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nno such\r\n";
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    let (pod, mut heads) = canned_pod(RESPONSE).await;
    kube.proxy_to("default", "greetserver-a", 9090, pod);
    let client = kube.client("default").await;

    let answer = get(
        &client,
        &format!("{PROXY}/greetserver-a:9090/proxy/metrics/a%20b/?x=1&y=%2F"),
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, BODY);
    let content_type = within(
        "the answer again",
        client.send(
            http::Request::get(format!("{PROXY}/greetserver-a:9090/proxy/metrics"))
                .body(kube::client::Body::empty())
                .unwrap(),
        ),
    )
    .await
    .unwrap()
    .headers()[http::header::CONTENT_TYPE]
        .as_bytes()
        .to_vec();
    assert_eq!(content_type, b"application/x-odd; q=\"\xe9\"");
    // What reached the pod: path, query and Accept as sent; no credentials; Host names the pod.
    let head = within("the pod's request", heads.recv()).await.unwrap();
    let mut lines: Vec<&str> = head.trim_end().split("\r\n").collect();
    lines[1..].sort_unstable();
    assert_eq!(
        lines,
        [
            "GET /metrics/a%20b/?x=1&y=%2F HTTP/1.1",
            &format!("accept: {PROMETHEUS_ACCEPT}"),
            "connection: close",
            "host: 10.1.0.1:9090",
        ]
    );
    let second = within("the second request", heads.recv()).await.unwrap();
    assert!(second.starts_with("GET /metrics HTTP/1.1\r\n"), "{second}");
    assert!(!second.to_ascii_lowercase().contains("accept:"), "{second}");

    // A pod's own error is passed through as it is, not turned into a Status.
    let (pod, _) = canned_pod(NOT_FOUND).await;
    kube.proxy_to("default", "greetserver-a", 8080, pod);
    let answer = get(&client, &format!("{PROXY}/greetserver-a:8080/proxy/nope")).await;
    assert_eq!(
        (answer.status, answer.content_type.as_deref(), answer.body.as_slice()),
        (404, Some("text/plain"), b"no such\r\n".as_slice())
    );
    assert_eq!(
        kube.pod_proxy_stats(),
        PodProxyStats {
            requests: 3,
            forwarded: 3,
            bytes: 13 + 13 + 9,
        }
    );
}

#[tokio::test]
async fn pod_proxy_refuses_in_the_api_servers_order_and_words() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.apply_pod(greet_pod("greetserver-b", "10.1.0.2"));
    let (pod, _) = canned_pod(b"HTTP/1.1 204 No Content\r\n\r\n").await;
    kube.proxy_to("default", "greetserver-a", 9090, pod);
    let client = client_without_retry(&kube).await;
    let path = |id: &str| format!("{PROXY}/{id}/proxy/metrics");

    kube.forbid("pods/proxy", true);
    let forbidden = get(&client, &path("greetserver-a:9090")).await;
    assert_status(
        &forbidden,
        status(
            403,
            "Forbidden",
            &format!(
                "pods \"greetserver-a:9090\" is forbidden: User \"{FAKE_USER}\" cannot get resource \"pods/proxy\" in API group \"\" in the namespace \"default\""
            ),
            Some(json!({"name": "greetserver-a:9090", "kind": "pods"})),
        ),
    );
    // RBAC comes before everything else, also for a pod that does not exist.
    let forbidden = get(&client, &path("nope")).await;
    assert_eq!(forbidden.status, 403);
    // What a scraper reading text sees: kube turns the Status into its error.
    let request = kube::core::Request::new(PROXY)
        .get_subresource("proxy/metrics", "greetserver-a:9090")
        .unwrap();
    let error = within("request_text", client.request_text(request)).await.unwrap_err();
    assert_forbidden(
        &error,
        &format!(
            "pods \"greetserver-a:9090\" is forbidden: User \"{FAKE_USER}\" cannot get resource \"pods/proxy\" in API group \"\" in the namespace \"default\""
        ),
    );
    // pods/proxy is a resource of its own: reading pods stays allowed, and forbidding pods leaves
    // the proxy alone.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    within("get", pods.get("greetserver-a")).await.unwrap();
    kube.forbid("pods/proxy", false);
    kube.forbid("pods", true);
    assert_eq!(get(&client, &path("greetserver-a:9090")).await.status, 204);
    kube.forbid("pods", false);

    let cases: [(&str, Value); 6] = [
        (
            "ftp:greetserver-a:21",
            status(400, "BadRequest", "invalid pod request \"ftp:greetserver-a:21\"", None),
        ),
        (
            "a:b:c:d",
            status(400, "BadRequest", "invalid pod request \"a:b:c:d\"", None),
        ),
        (
            "nope:9090",
            status(
                404,
                "NotFound",
                "pods \"nope\" not found",
                Some(json!({"name": "nope", "kind": "pods"})),
            ),
        ),
        // A pod nobody registered a target for stands in for one without an IP.
        (
            "greetserver-b:9090",
            status(400, "BadRequest", "address not allowed", None),
        ),
        // A port of a pod that has a target elsewhere: nothing listens there.
        (
            "greetserver-a:9091",
            status(
                503,
                "ServiceUnavailable",
                "error trying to reach service: dial tcp 10.1.0.1:9091: connect: connection refused",
                None,
            ),
        ),
        // No port, and the pod declares none: port 80.
        (
            "greetserver-a",
            status(
                503,
                "ServiceUnavailable",
                "error trying to reach service: dial tcp 10.1.0.1:80: connect: connection refused",
                None,
            ),
        ),
    ];
    for (id, expected) in cases {
        assert_status(&get(&client, &path(id)).await, expected);
    }
    assert_status(
        &get(&client, &path("greetserver-a:metrics")).await,
        status(
            503,
            "ServiceUnavailable",
            "error trying to reach service: dial tcp: lookup tcp/metrics: unknown port",
            None,
        ),
    );
    assert_status(
        &get(&client, &path("https:greetserver-a:9090")).await,
        status(
            503,
            "ServiceUnavailable",
            "error trying to reach service: http: server gave HTTP response to HTTPS client",
            None,
        ),
    );
    assert_status(
        &send(&client, http::Method::POST, &path("greetserver-a:9090"), None).await,
        status(
            405,
            "MethodNotAllowed",
            "the fake kube API server proxies GET to pods, not POST",
            None,
        ),
    );
    // A bare /proxy is redirected to /proxy/, query kept.
    let bare = get(&client, &format!("{PROXY}/greetserver-a:9090/proxy?a=1")).await;
    assert_eq!(
        (bare.status, bare.location.as_deref()),
        (
            301,
            Some("/api/v1/namespaces/default/pods/greetserver-a:9090/proxy/?a=1")
        )
    );
    assert_eq!(
        get(&client, &format!("{PROXY}/greetserver-a:9090/proxy/")).await.status,
        204
    );
    assert_eq!(
        kube.pod_proxy_stats(),
        PodProxyStats {
            requests: 15,
            forwarded: 2,
            bytes: 0,
        }
    );
}

#[tokio::test]
async fn pod_proxy_answers_503_when_the_pod_refuses_or_hangs_up_and_504_when_it_hangs() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.proxy_to("default", "greetserver-a", 9090, refusing_addr().await);
    // Hangs up without a word.
    let (closing, _) = canned_pod(b"").await;
    kube.proxy_to("default", "greetserver-a", 9091, closing);
    kube.proxy_to("default", "greetserver-a", 9092, hung_pod().await);
    let client = client_without_retry(&kube).await;
    let path = |port: u16| format!("{PROXY}/greetserver-a:{port}/proxy/metrics");

    assert_status(
        &get(&client, &path(9090)).await,
        status(
            503,
            "ServiceUnavailable",
            "error trying to reach service: dial tcp 10.1.0.1:9090: connect: connection refused",
            None,
        ),
    );
    assert_status(
        &get(&client, &path(9091)).await,
        status(503, "ServiceUnavailable", "error trying to reach service: EOF", None),
    );
    kube.set_proxy_time_limit(Duration::from_millis(200));
    let started = Instant::now();
    assert_status(
        &get(&client, &path(9092)).await,
        status(
            504,
            "Timeout",
            "Timeout: the pod at 10.1.0.1:9092 did not answer within the fake kube API server's proxy time limit (200ms)",
            Some(json!({})),
        ),
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(
        kube.pod_proxy_stats(),
        PodProxyStats {
            requests: 3,
            forwarded: 0,
            bytes: 0,
        }
    );
}

/// A foreign server's exposition (py-grpc-prometheus: upper-case types and codes, `_created`
/// gauges, content negotiated by Accept) comes through the proxy as the pod wrote it.
#[tokio::test]
async fn pod_proxy_scrapes_a_python_grpc_prometheus_server() {
    let Some(python) = greet_tests::python::greet_server("greetserver-py").await else {
        return;
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", python.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut greet = GreetServiceClient::new(channel);
    let request = |first: &str| GreetingRequest {
        greeting: Some(Greeting {
            first_name: first.into(),
            last_name: "Lovelace".into(),
        }),
    };
    let reply = greet.greet(request("Ada")).await.unwrap().into_inner();
    assert_eq!(
        reply.result,
        "Hello, Ada Lovelace from pod: name(greetserver-py), ip(10.1.0.9)."
    );
    let status = greet.greet(request("fail-unavailable")).await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (tonic::Code::Unavailable, "failing on request: UNAVAILABLE")
    );

    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-py", "10.1.0.9"));
    kube.proxy_to("default", "greetserver-py", 9090, python.metrics);
    let client = kube.client("default").await;
    let path = format!("{PROXY}/greetserver-py:9090/proxy/metrics");
    let text_format = send(&client, http::Method::GET, &path, Some("text/plain;version=0.0.4")).await;
    let openmetrics = get(&client, &path).await;
    assert_eq!(
        text_format.content_type.as_deref(),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(
        openmetrics
            .content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/openmetrics-text; version=1.0.0")),
        "{openmetrics:?}"
    );
    assert!(openmetrics.body.ends_with(b"# EOF\n"));
    let text = String::from_utf8(text_format.body).unwrap();
    let labels = r#"grpc_method="Greet",grpc_service="greet.GreetService",grpc_type="UNARY""#;
    let mut handled: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with("grpc_server_handled_total{"))
        .collect();
    handled.sort_unstable();
    assert_eq!(
        handled,
        [
            format!(r#"grpc_server_handled_total{{grpc_code="OK",{labels}}} 1.0"#),
            format!(r#"grpc_server_handled_total{{grpc_code="UNAVAILABLE",{labels}}} 1.0"#),
        ]
    );
}

/// What a scraper using kube's default client gets: a 503 is retried, so a pod that comes up
/// between two tries is scraped as if it never refused.
#[tokio::test]
async fn kube_default_client_retries_a_pod_proxy_503() {
    let kube = FakeKube::start().await;
    kube.apply_pod(greet_pod("greetserver-a", "10.1.0.1"));
    kube.proxy_to("default", "greetserver-a", 9090, refusing_addr().await);
    let client = kube.client("default").await;
    let (up, _) = canned_pod(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nup").await;
    let path = format!("{PROXY}/greetserver-a:9090/proxy/metrics");
    let scrape = get(&client, &path);
    let pod_comes_up = async {
        while kube.pod_proxy_stats().requests == 0 {
            tokio::task::yield_now().await;
        }
        kube.proxy_to("default", "greetserver-a", 9090, up);
    };
    let (answer, ()) = within("the retried scrape", futures_util::future::join(scrape, pod_comes_up)).await;
    assert_eq!((answer.status, answer.body.as_slice()), (200, b"up".as_slice()));
    let stats = kube.pod_proxy_stats();
    assert!(stats.requests >= 2, "{stats:?}");
    assert_eq!((stats.forwarded, stats.bytes), (1, 2));
}

/// 200 pods scraped together, five rounds, each through the one fake: the load a dashboard of 200
/// pods puts on it at 1 scrape/s, squeezed. Every answer must be the pod's whole exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_proxy_serves_200_pods_scraped_at_once() {
    const PODS: usize = 200;
    const ROUNDS: usize = 5;
    let pod = greet_server_with_metrics().await;
    let metrics = pod.metrics_addr.unwrap();
    let kube = FakeKube::start().await;
    for i in 0..PODS {
        let name = format!("greetserver-{i}");
        kube.apply_pod(greet_pod(&name, &format!("10.1.{}.{}", i / 250, i % 250 + 1)));
        kube.proxy_to("default", &name, 9090, metrics);
    }
    let client = kube.client("default").await;
    let started = Instant::now();
    let mut body_bytes = 0;
    for _ in 0..ROUNDS {
        let scrapes = (0..PODS).map(|i| {
            let client = client.clone();
            async move { get(&client, &format!("{PROXY}/greetserver-{i}:9090/proxy/metrics")).await }
        });
        for answer in futures_util::future::join_all(scrapes).await {
            assert_eq!(answer.status, 200, "{answer:?}");
            assert!(answer.body.ends_with(b"# EOF\n"));
            body_bytes += answer.body.len() as u64;
        }
    }
    let elapsed = started.elapsed();
    let stats = kube.pod_proxy_stats();
    assert_eq!(
        stats,
        PodProxyStats {
            requests: (PODS * ROUNDS) as u64,
            forwarded: (PODS * ROUNDS) as u64,
            bytes: body_bytes,
        }
    );
    println!(
        "pods/proxy: {} scrapes in {elapsed:?} ({:.0}/s, {:.1} MB/s)",
        stats.requests,
        stats.requests as f64 / elapsed.as_secs_f64(),
        stats.bytes as f64 / elapsed.as_secs_f64() / 1e6
    );
    drop(pod);
}
