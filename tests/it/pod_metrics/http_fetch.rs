use std::time::Duration;

use pod_metrics::{Family, HttpFetch, ScrapeConfig, ScrapeStatus, scrape_once};

use super::support::{Answer, Server, page, url_target};

const GREET_SERVER: &[u8] = include_bytes!("../../../pod-metrics/tests/fixtures/greet_server.om");

fn config() -> ScrapeConfig {
    ScrapeConfig {
        timeout: Duration::from_secs(5),
        ..ScrapeConfig::default()
    }
}

#[tokio::test]
async fn reads_a_page_and_asks_for_openmetrics_first() {
    let server = Server::start().await;
    server.set(
        "/metrics",
        page(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            GREET_SERVER,
        ),
    );
    let fetched = HttpFetch::new()
        .fetch_url(&server.url("/metrics"), 8 << 20)
        .await
        .expect("fetched");
    assert_eq!(fetched.body.as_ref(), GREET_SERVER);
    assert_eq!(
        fetched.content_type.as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert_eq!(
        server.requests(),
        [(
            "/metrics".to_owned(),
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5".to_owned()
        )]
    );
    let reading = scrape_once(&HttpFetch::new(), &url_target("", server.url("/metrics")), &config()).await;
    assert_eq!(reading.family, Some(Family::GrpcPrometheus));
    assert_eq!(
        reading.totals.expect("totals").requests,
        13,
        "the 3 health checks are not counted"
    );
    let authority = server
        .url("/metrics")
        .trim_start_matches("http://")
        .trim_end_matches("/metrics")
        .to_owned();
    assert_eq!(reading.pod, authority, "no name given and no hint: its host:port");
    assert!(matches!(reading.status, ScrapeStatus::Ok { .. }));
}

#[tokio::test]
async fn non_2xx_shows_the_status_and_the_pages_first_line() {
    let server = Server::start().await;
    server.set("/boom", page(500, "text/plain", "boom \x1b[2J\nstack trace\n"));
    let fetch = HttpFetch::new();
    let err = fetch.fetch_url(&server.url("/metrics"), 1 << 20).await.unwrap_err();
    assert_eq!(
        err.0,
        format!("HTTP 404 from {}: 404 page not found", server.url("/metrics"))
    );
    let err = fetch.fetch_url(&server.url("/boom"), 1 << 20).await.unwrap_err();
    assert_eq!(err.0, format!("HTTP 500 from {}: boom [2J", server.url("/boom")));
}

#[tokio::test]
async fn a_body_over_the_cap_fails_while_streaming_and_by_its_length() {
    let server = Server::start().await;
    // 9 MiB in 64 KiB chunks, no Content-Length.
    server.set(
        "/huge",
        Answer::Stream {
            chunk_len: 64 << 10,
            chunks: 144,
        },
    );
    server.set("/long", page(200, "text/plain", vec![b'#'; (8 << 20) + 1]));
    let fetch = HttpFetch::new();
    let expected = "the answer is over 8 MiB; greet-top reads at most 8 MiB of metrics (is the metrics path right?)";
    assert_eq!(
        fetch.fetch_url(&server.url("/huge"), 8 << 20).await.unwrap_err().0,
        expected
    );
    assert_eq!(
        fetch.fetch_url(&server.url("/long"), 8 << 20).await.unwrap_err().0,
        expected
    );
    // At the cap exactly is fine.
    server.set("/exact", page(200, "text/plain", vec![b'#'; 1 << 20]));
    assert_eq!(
        fetch
            .fetch_url(&server.url("/exact"), 1 << 20)
            .await
            .expect("at the cap")
            .body
            .len(),
        1 << 20
    );
}

#[tokio::test]
async fn https_and_bad_urls_are_refused_in_words() {
    let fetch = HttpFetch::new();
    assert_eq!(
        fetch
            .fetch_url("https://127.0.0.1:1/metrics", 1024)
            .await
            .unwrap_err()
            .0,
        "https is not supported yet for metrics URLs (https://127.0.0.1:1/metrics); use http://, or a port-forward"
    );
    assert_eq!(
        fetch.fetch_url("ftp://127.0.0.1:1/metrics", 1024).await.unwrap_err().0,
        "not an http:// URL: ftp://127.0.0.1:1/metrics"
    );
    assert_eq!(
        fetch.fetch_url("127.0.0.1:1/metrics", 1024).await.unwrap_err().0,
        "not a URL: 127.0.0.1:1/metrics (expected http://host:port/path)"
    );
    assert_eq!(
        fetch.fetch_url("http://a b/", 1024).await.unwrap_err().0,
        "not a URL: http://a b/ (expected http://host:port/path)"
    );
}

#[tokio::test]
async fn a_closed_port_says_it_could_not_connect() {
    // Bind then drop: nothing listens there now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let err = HttpFetch::new().fetch_url(&url, 1024).await.unwrap_err().0;
    assert!(
        err.starts_with(&format!(
            "cannot connect to {url}: tcp connect error: Connection refused"
        )),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_endpoint_times_out() {
    let server = Server::start().await;
    server.set("/slow", Answer::Hang);
    let config = ScrapeConfig {
        timeout: Duration::from_millis(200),
        ..ScrapeConfig::default()
    };
    let reading = scrape_once(&HttpFetch::new(), &url_target("slow-0", server.url("/slow")), &config).await;
    match reading.status {
        ScrapeStatus::Failing { cause, last_ok, .. } => {
            assert_eq!(cause, "timed out after 200ms");
            assert_eq!(last_ok, None);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reading.totals, None);
}

#[tokio::test]
async fn html_garbage_and_non_utf8_pages_say_what_they_are() {
    let server = Server::start().await;
    server.set(
        "/html",
        page(
            200,
            "text/html; charset=utf-8",
            "<!doctype html>\n<html><body>Grafana</body></html>\n",
        ),
    );
    server.set(
        "/garbage",
        page(
            200,
            "application/octet-stream",
            vec![0xff, 0xfe, 0x00, 0x80, b'\n', 0xc3],
        ),
    );
    server.set(
        "/other",
        page(
            200,
            "text/plain",
            "# TYPE up gauge\nup 1\nprocess_cpu_seconds_total 3\n",
        ),
    );
    let mut bytes = b"\xff\xfe broken line\n".to_vec();
    bytes.extend_from_slice(GREET_SERVER);
    server.set("/mixed", page(200, "text/plain", bytes));
    let fetch = HttpFetch::new();
    let cause = |path: &'static str| {
        let (fetch, url) = (&fetch, server.url(path));
        async move {
            match scrape_once(fetch, &url_target("p", url), &config()).await.status {
                ScrapeStatus::NoGrpcMetrics { cause, .. } => cause,
                other => panic!("{other:?}"),
            }
        }
    };
    assert_eq!(
        cause("/html").await,
        format!(
            "not Prometheus metrics at {}: it answered text/html with no samples (is --metrics-path right?)",
            server.url("/html")
        )
    );
    assert_eq!(
        cause("/garbage").await,
        format!(
            "not Prometheus metrics at {}: it answered application/octet-stream with no samples (is --metrics-path right?)",
            server.url("/garbage")
        )
    );
    assert_eq!(
        cause("/other").await,
        format!(
            "no gRPC server metrics at {} — looked for grpc_server_handled_total, rpc_server_call_duration_seconds, rpc_server_duration_milliseconds",
            server.url("/other")
        )
    );
    // A bad line does not spoil the rest.
    let reading = scrape_once(&fetch, &url_target("p", server.url("/mixed")), &config()).await;
    assert_eq!(reading.totals.expect("totals").requests, 13);
}
