//! Fetching through the API server's `pods/proxy` subresource, with the
//! user's own credentials: no port-forward and nothing to deploy. kube 5
//! has no helper for it, so the request is built here and sent raw
//! (`kube::Client::send`: any status, the body as bytes, no UTF-8 assumed).

use greet_proto::sanitize::sanitize_truncated;

use super::{
    ACCEPT, BodyError, Fetch, FetchError, FetchFuture, Fetched, HttpFetch, content_type, error_chain,
    http_status_cause, read_capped, read_excerpt, too_big_cause,
};
use crate::reading::{Target, Via};

/// Reads [`Via::PodProxy`] targets through the API server, and
/// [`Via::Url`] ones directly.
#[derive(Clone)]
pub struct PodProxyFetch {
    client: kube::Client,
    direct: HttpFetch,
}

impl PodProxyFetch {
    /// A client for `config` with kube's retry layer off: it retries a 503
    /// (the API server could not reach the pod) up to 15 times with growing
    /// pauses, so the scrape's time limit would hide the cause.
    pub fn new(mut config: kube::Config) -> Result<Self, FetchError> {
        config.default_retry = false;
        let client = kube::Client::try_from(config)
            .map_err(|e| FetchError(format!("cannot build a Kubernetes client: {}", error_chain(&e))))?;
        Ok(PodProxyFetch::with_client(client))
    }

    /// Uses `client` as is. One built with kube's default retry layer on
    /// (`Config::default_retry`) reports a pod the API server cannot reach
    /// as `timed out`, not as the API server's 503: prefer [`Self::new`].
    pub fn with_client(client: kube::Client) -> Self {
        PodProxyFetch {
            client,
            direct: HttpFetch::new(),
        }
    }

    async fn fetch_pod(
        &self,
        namespace: &str,
        pod: &str,
        port: u16,
        path: &str,
        max_bytes: usize,
    ) -> Result<Fetched, FetchError> {
        let uri = pod_proxy_path(namespace, pod, port, path)?;
        let request = http::Request::get(&uri)
            .header(http::header::ACCEPT, ACCEPT)
            .body(kube::client::Body::from(Vec::new()))
            .map_err(|e| {
                FetchError(format!(
                    "cannot request {}: {}",
                    sanitize_truncated(&uri, 300),
                    error_chain(&e)
                ))
            })?;
        let response = self
            .client
            .send(request)
            .await
            .map_err(|e| FetchError(format!("cannot reach the API server: {}", error_chain(&e))))?;
        let (parts, body) = response.into_parts();
        if !parts.status.is_success() {
            let excerpt = read_excerpt(body).await;
            return Err(FetchError(proxy_error_cause(
                parts.status,
                &excerpt,
                namespace,
                pod,
                port,
                path,
            )));
        }
        let body = read_capped(body, max_bytes).await.map_err(|e| match e {
            BodyError::TooBig => FetchError(too_big_cause(max_bytes)),
            BodyError::Failed(e) => FetchError(format!(
                "the answer from pod {pod} broke off: {}",
                sanitize_truncated(&e, 200)
            )),
        })?;
        Ok(Fetched {
            body,
            content_type: content_type(&parts.headers),
        })
    }
}

impl Fetch for PodProxyFetch {
    fn fetch<'a>(&'a self, target: &'a Target, max_bytes: usize) -> FetchFuture<'a> {
        Box::pin(async move {
            match &target.via {
                Via::Url(url) => self.direct.fetch_url(url, max_bytes).await,
                Via::PodProxy {
                    namespace,
                    pod,
                    port,
                    path,
                } => self.fetch_pod(namespace, pod, *port, path, max_bytes).await,
            }
        })
    }
}

/// `/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{path}`. The port
/// is a number: the API server does not resolve named ports for pods.
/// Namespace and pod names are DNS labels/subdomains, so nothing needs
/// escaping; anything else is refused rather than spliced into the path.
pub fn pod_proxy_path(namespace: &str, pod: &str, port: u16, path: &str) -> Result<String, FetchError> {
    for (what, name) in [("namespace", namespace), ("pod", pod)] {
        let ok = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !ok {
            return Err(FetchError(format!(
                "not a Kubernetes {what} name: {:?}",
                sanitize_truncated(name, 100)
            )));
        }
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b'#') {
        return Err(FetchError(format!(
            "not a metrics path: {:?}",
            sanitize_truncated(path, 100)
        )));
    }
    let slash = if path.starts_with('/') { "" } else { "/" };
    Ok(format!(
        "/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy{slash}{path}"
    ))
}

/// The API server's answer to a failed proxy request, in words. A Status
/// body is the API server's own; anything else is the pod's page, passed
/// through.
fn proxy_error_cause(
    status: http::StatusCode,
    body: &[u8],
    namespace: &str,
    pod: &str,
    port: u16,
    path: &str,
) -> String {
    let Some(message) = status_message(body) else {
        let from = sanitize_truncated(&format!("pod {pod}:{port}{path} (through the API server)"), 300);
        return http_status_cause(status, &from, body);
    };
    match status.as_u16() {
        403 => format!(
            "greet-top may not get pods/proxy in namespace {namespace} (RBAC: needs verb get on resource pods/proxy); \
             grant it (k8s/greet-top-rbac.yaml) or use --metrics-url / a port-forward instead"
        ),
        503 | 502 => format!("the API server could not reach the pod: {message}"),
        404 => format!("the API server has no pod {pod} in namespace {namespace}: {message}"),
        400 => format!(
            "the API server will not proxy to pod {pod}: {message} (it has no routable IP yet, or the port is wrong)"
        ),
        401 => format!("the API server did not accept greet-top's credentials: {message}"),
        code => format!("HTTP {code} from the API server: {message}"),
    }
}

/// The `message` of a `kind: Status` body, sanitised and cut.
fn status_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("kind")?.as_str()? != "Status" {
        return None;
    }
    let message = value.get("message").and_then(|m| m.as_str()).unwrap_or("");
    Some(sanitize_truncated(message, 300))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_path_names_the_pod_and_port_and_keeps_the_metrics_path() {
        assert_eq!(
            pod_proxy_path("default", "greet-0", 9090, "/metrics").as_deref(),
            Ok("/api/v1/namespaces/default/pods/greet-0:9090/proxy/metrics")
        );
        assert_eq!(
            pod_proxy_path("ns", "a.b", 8080, "stats/prometheus?x=1").as_deref(),
            Ok("/api/v1/namespaces/ns/pods/a.b:8080/proxy/stats/prometheus?x=1")
        );
        assert_eq!(
            pod_proxy_path("ns", "../x", 1, "/m"),
            Err(FetchError("not a Kubernetes pod name: \"../x\"".to_owned()))
        );
        assert_eq!(
            pod_proxy_path("", "p", 1, "/m"),
            Err(FetchError("not a Kubernetes namespace name: \"\"".to_owned()))
        );
        assert_eq!(
            pod_proxy_path("ns", "p", 1, "/m etrics"),
            Err(FetchError("not a metrics path: \"/m etrics\"".to_owned()))
        );
    }
}
