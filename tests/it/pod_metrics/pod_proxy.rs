//! PodProxyFetch against a loopback server standing in for the API server.

use pod_metrics::{Fetch, PodProxyFetch, Target, Via, pod_proxy_path};

use super::support::{Server, page, url_target};

fn fetcher(server: &Server) -> PodProxyFetch {
    let config = kube::Config::new(server.url("").parse().expect("cluster url"));
    PodProxyFetch::new(config).expect("client")
}

fn pod(name: &str) -> Target {
    Target {
        pod: name.to_owned(),
        ip: "10.1.2.3".to_owned(),
        via: Via::PodProxy {
            namespace: "default".to_owned(),
            pod: name.to_owned(),
            port: 9090,
            path: "/metrics".to_owned(),
        },
    }
}

fn status(code: u16, reason: &str, message: &str) -> String {
    serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code,
    })
    .to_string()
}

fn path(name: &str) -> String {
    pod_proxy_path("default", name, 9090, "/metrics").expect("path")
}

#[tokio::test]
async fn reads_the_pods_page_through_the_api_server_as_bytes() {
    let server = Server::start().await;
    let body: &[u8] = b"\xff\xfe not utf-8\ngrpc_server_handled_total{grpc_code=\"OK\"} 3\n";
    server.set(&path("greet-0"), page(200, "text/plain; version=0.0.4", body));
    let fetched = fetcher(&server).fetch(&pod("greet-0"), 1 << 20).await.expect("fetched");
    assert_eq!(fetched.body.as_ref(), body);
    assert_eq!(fetched.content_type.as_deref(), Some("text/plain; version=0.0.4"));
    assert_eq!(
        server.requests(),
        [(
            "/api/v1/namespaces/default/pods/greet-0:9090/proxy/metrics".to_owned(),
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5".to_owned()
        )]
    );
}

#[tokio::test]
async fn the_api_servers_refusals_read_as_causes() {
    let server = Server::start().await;
    server.set(
        &path("greet-0"),
        page(
            403,
            "application/json",
            status(
                403,
                "Forbidden",
                "pods \"greet-0:9090\" is forbidden: User \"dev\" cannot get resource \"pods/proxy\" in API group \"\" in the namespace \"default\"",
            ),
        ),
    );
    server.set(
        &path("down-0"),
        page(
            503,
            "application/json",
            status(
                503,
                "ServiceUnavailable",
                "error trying to reach service: dial tcp 10.1.2.3:9090: connect: connection refused",
            ),
        ),
    );
    server.set(
        &path("ghost"),
        page(
            404,
            "application/json",
            status(404, "NotFound", "pods \"ghost\" not found"),
        ),
    );
    server.set(
        &path("noip"),
        page(
            400,
            "application/json",
            status(400, "BadRequest", "address not allowed"),
        ),
    );
    server.set(&path("plain-404"), page(404, "text/plain", "404 page not found\n"));
    let fetch = fetcher(&server);
    let cause = |name: &'static str| {
        let fetch = &fetch;
        async move { fetch.fetch(&pod(name), 1 << 20).await.unwrap_err().0 }
    };
    assert_eq!(
        cause("greet-0").await,
        "greet-top may not get pods/proxy in namespace default (RBAC: needs verb get on resource pods/proxy); \
         grant it (k8s/greet-top-rbac.yaml) or use --metrics-url / a port-forward instead"
    );
    assert_eq!(
        cause("down-0").await,
        "the API server could not reach the pod: error trying to reach service: dial tcp 10.1.2.3:9090: connect: connection refused"
    );
    assert_eq!(
        cause("ghost").await,
        "the API server has no pod ghost in namespace default: pods \"ghost\" not found"
    );
    assert_eq!(
        cause("noip").await,
        "the API server will not proxy to pod noip: address not allowed (it has no routable IP yet, or the port is wrong)"
    );
    // Not a Status: the pod's own answer, passed through.
    assert_eq!(
        cause("plain-404").await,
        "HTTP 404 from pod plain-404:9090/metrics (through the API server): 404 page not found"
    );
    // One request each: kube's retry layer (which retries 503s) is off.
    let down = server.requests().iter().filter(|r| r.0.contains("down-0")).count();
    assert_eq!(down, 1);
}

#[tokio::test]
async fn urls_are_read_directly() {
    let server = Server::start().await;
    server.set("/metrics", page(200, "text/plain", "up 1\n"));
    let fetched = fetcher(&server)
        .fetch(&url_target("p", server.url("/metrics")), 1024)
        .await
        .expect("fetched");
    assert_eq!(fetched.body.as_ref(), b"up 1\n");
}
