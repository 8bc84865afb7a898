//! `pods/{id}/proxy`: a GET forwarded to a loopback stand-in for the pod's IP and port, as the API
//! server proxies to a pod (`pkg/registry/core/pod/strategy.go` ResourceLocation, then
//! apimachinery's upgrade-aware proxy).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::request::{bad_request, status_response};
use crate::store::{Kind, Shared};
use crate::{FAKE_USER, PROXY_BODY_LIMIT};

/// `/api/v1/namespaces/{ns}/pods/{id}/proxy[/{rest}]`, split.
pub(crate) struct ProxyPath<'a> {
    pub(crate) namespace: &'a str,
    /// The path's pod segment as sent: `name`, `name:port` or `scheme:name:port`.
    pub(crate) id: &'a str,
    /// What follows `/proxy/` (`""` for `/proxy/`); `None` for a bare `/proxy`.
    pub(crate) rest: Option<&'a str>,
}

pub(crate) fn pod_proxy_path(path: &str) -> Option<ProxyPath<'_>> {
    // At most 8 parts: the eighth is everything after `proxy/`, slashes and all.
    let segments: Vec<&str> = path.trim_start_matches('/').splitn(8, '/').collect();
    let (namespace, id, rest) = match segments.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", id, "proxy"] => (*ns, *id, None),
        ["api", "v1", "namespaces", ns, "pods", id, "proxy", rest] => (*ns, *id, Some(*rest)),
        _ => return None,
    };
    (!namespace.is_empty() && !id.is_empty()).then_some(ProxyPath { namespace, id, rest })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

/// The pod segment, split as apimachinery's `SplitSchemeNamePort` does: 1 to 3 parts, a non-empty
/// name, scheme `""`, `http` or `https`. The port is not checked here (the API server finds out
/// when it dials); an empty one means "none given".
fn split_scheme_name_port(id: &str) -> Option<(Scheme, &str, Option<&str>)> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => return None,
    };
    let scheme = match scheme {
        "" | "http" => Scheme::Http,
        "https" => Scheme::Https,
        _ => return None,
    };
    (!name.is_empty()).then_some((scheme, name, (!port.is_empty()).then_some(port)))
}

/// Counters of the route, kept outside the store's lock so a scrape storm doesn't contend on it.
#[derive(Debug, Default)]
pub(crate) struct ProxyCounters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    bytes: AtomicU64,
}

impl ProxyCounters {
    pub(crate) fn stats(&self) -> PodProxyStats {
        PodProxyStats {
            requests: self.requests.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
        }
    }
}

/// What the `pods/{id}/proxy` route has done since the fake started (see
/// [`crate::FakeKube::pod_proxy_stats`]): the API-server load a metrics scraper causes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodProxyStats {
    /// Authenticated requests to the route, whatever they were answered.
    pub requests: u64,
    /// Requests the target answered, whose status and body were passed back.
    pub forwarded: u64,
    /// Response body bytes passed back from targets.
    pub bytes: u64,
}

/// Everything the forward needs, copied out of the store so its lock is not held across it.
struct Forward {
    scheme: Scheme,
    /// `IP:PORT` as the API server would dial it (`[IP]:PORT` for IPv6): what error messages name.
    dialed: String,
    /// The loopback address standing in for `dialed`; `None`: nothing listens on that pod port.
    target: Option<SocketAddr>,
    path_and_query: String,
    accept: Option<HeaderValue>,
    time_limit: Duration,
}

/// Answers a `pods/{id}/proxy` request, checked in the API server's order: 403 (RBAC), 405 (the
/// fake serves GET only), 400 bad id, 404 no such pod, 400 `address not allowed`, 301 for a bare
/// `/proxy`, then the forward (503 when nothing listens).
pub(crate) async fn pod_proxy(
    shared: &Arc<Shared>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    path: ProxyPath<'_>,
) -> Response {
    shared.proxy_counters.requests.fetch_add(1, Ordering::Relaxed);
    let forward = match check(shared, method, uri, headers, &path) {
        Ok(forward) => forward,
        Err(response) => return *response,
    };
    match tokio::time::timeout(forward.time_limit, exchange(&forward)).await {
        Ok(Ok((response, bytes))) => {
            shared.proxy_counters.forwarded.fetch_add(1, Ordering::Relaxed);
            shared.proxy_counters.bytes.fetch_add(bytes, Ordering::Relaxed);
            response
        }
        Ok(Err(reason)) => unreachable_pod(&reason),
        Err(_) => status_response(
            StatusCode::GATEWAY_TIMEOUT,
            "Timeout",
            &format!(
                "Timeout: the pod at {} did not answer within the fake kube API server's proxy time limit ({:?})",
                forward.dialed, forward.time_limit
            ),
            Some(json!({})),
        ),
    }
}

/// The checks that need the store, under one short lock.
fn check(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    path: &ProxyPath<'_>,
) -> Result<Forward, Box<Response>> {
    let inner = shared.lock();
    let (namespace, id) = (path.namespace, path.id);
    if inner.pod_proxy_forbidden {
        let message = format!(
            "pods \"{id}\" is forbidden: User \"{FAKE_USER}\" cannot {} resource \"pods/proxy\" in API group \"\" \
             in the namespace \"{namespace}\"",
            verb(method)
        );
        let details = json!({"name": id, "kind": "pods"});
        return Err(Box::new(status_response(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &message,
            Some(details),
        )));
    }
    if method != Method::GET {
        return Err(Box::new(status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the fake kube API server proxies GET to pods, not {method}"),
            None,
        )));
    }
    let Some((scheme, name, port)) = split_scheme_name_port(id) else {
        return Err(Box::new(bad_request(&format!("invalid pod request {}", go_quote(id)))));
    };
    let Some(pod) = inner.objects.get(&(Kind::Pods, namespace.to_owned(), name.to_owned())) else {
        return Err(Box::new(status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            &format!("pods \"{name}\" not found"),
            Some(json!({"name": name, "kind": "pods"})),
        )));
    };
    let pod_ip = pod["status"]["podIP"].as_str().unwrap_or_default();
    let has_target = inner
        .pod_proxy_targets
        .keys()
        .any(|(ns, pod, _)| ns == namespace && pod == name);
    // A real API server refuses a pod without an IP (or with one it may not dial). Pods here keep
    // made-up IPs, so a pod nobody registered a target for stands in for one without an IP.
    if pod_ip.is_empty() || !has_target {
        return Err(Box::new(bad_request("address not allowed")));
    }
    let port = port.map(str::to_owned).unwrap_or_else(|| default_port(pod, scheme));
    let dialed = join_host_port(pod_ip, &port);
    let number = match port_number(&port) {
        Ok(number) => number,
        Err(reason) => return Err(Box::new(unreachable_pod(&format!("dial tcp: {reason}")))),
    };
    let query = uri.query().map(|query| format!("?{query}")).unwrap_or_default();
    let Some(rest) = path.rest else {
        // apimachinery redirects a GET of the bare proxy root to the same path with a `/`.
        let location = format!("{}/{query}", uri.path());
        return Err(Box::new(
            (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]).into_response(),
        ));
    };
    Ok(Forward {
        scheme,
        target: inner
            .pod_proxy_targets
            .get(&(namespace.to_owned(), name.to_owned(), number))
            .copied(),
        dialed,
        path_and_query: format!("/{rest}{query}"),
        accept: headers.get(header::ACCEPT).cloned(),
        time_limit: inner.pod_proxy_time_limit,
    })
}

/// The RBAC verb of an HTTP method, as the API server's request info derives it.
fn verb(method: &Method) -> &'static str {
    match *method {
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "get",
    }
}

/// Go's `%q` for the ids this route sees (path segments: printable ASCII or percent-encoded).
fn go_quote(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Without a port in the id the API server takes the first `containerPort` of the first container
/// that declares one, else the scheme's default port (the URL then has none).
fn default_port(pod: &Value, scheme: Scheme) -> String {
    let declared = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|container| container["ports"][0]["containerPort"].as_i64());
    match (declared, scheme) {
        (Some(port), _) => port.to_string(),
        (None, Scheme::Http) => "80".to_owned(),
        (None, Scheme::Https) => "443".to_owned(),
    }
}

/// The port as Go's dialer reads it, with its errors (a pure-Go resolver, as kube-apiserver is
/// built): digits must fit 0..=65535, anything else is looked up as a service name, which the fake
/// knows none of.
fn port_number(port: &str) -> Result<u16, String> {
    if port.bytes().all(|b| b.is_ascii_digit()) {
        port.parse::<u16>().map_err(|_| format!("address {port}: invalid port"))
    } else {
        Err(format!("lookup tcp/{port}: unknown port"))
    }
}

/// `net.JoinHostPort`.
fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// 503, the API server's answer when it cannot get an answer from the pod.
fn unreachable_pod(reason: &str) -> Response {
    status_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailable",
        &format!("error trying to reach service: {reason}"),
        None,
    )
}

/// One request to the target over a fresh HTTP/1.1 connection; the response as the pod gave it
/// (status, Content-Type, body bytes) and the body's length, or why there is none (Go's words).
async fn exchange(forward: &Forward) -> Result<(Response, u64), String> {
    let Some(target) = forward.target else {
        return Err(format!("dial tcp {}: connect: connection refused", forward.dialed));
    };
    let tcp = TcpStream::connect(target).await.map_err(|error| {
        let reason = match error.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
            _ => error.to_string(),
        };
        format!("dial tcp {}: connect: {reason}", forward.dialed)
    })?;
    if forward.scheme == Scheme::Https {
        // Targets are plain HTTP listeners: Go's TLS client reads their 400 to its ClientHello.
        return Err("http: server gave HTTP response to HTTPS client".to_owned());
    }
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|error| error.to_string())?;
    let mut request = Request::get(forward.path_and_query.as_str())
        .header(header::HOST, forward.dialed.as_str())
        .header(header::CONNECTION, "close");
    if let Some(accept) = &forward.accept {
        request = request.header(header::ACCEPT, accept);
    }
    let request = request.body(Body::empty()).map_err(|error| error.to_string())?;
    let exchange = async move {
        let response = sender.send_request(request).await.map_err(|error| {
            if error.is_incomplete_message() {
                "EOF".to_owned()
            } else {
                error.to_string()
            }
        })?;
        let (parts, body) = response.into_parts();
        // Whole, so the byte count is exact and a target that stalls mid-body meets the time
        // limit; metrics bodies are small.
        let body = axum::body::to_bytes(Body::new(body), PROXY_BODY_LIMIT)
            .await
            .map_err(|error| format!("reading the pod's answer: {error}"))?;
        Ok::<_, String>((parts, body))
    };
    // The connection is driven alongside, and ends once the answer is read (`Connection: close`).
    let (result, _) = tokio::join!(exchange, connection);
    let (parts, body) = result?;
    let bytes = body.len() as u64;
    let mut response = (parts.status, body).into_response();
    if let Some(content_type) = parts.headers.get(header::CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, content_type.clone());
    } else {
        response.headers_mut().remove(header::CONTENT_TYPE);
    }
    Ok((response, bytes))
}

#[cfg(test)]
mod tests;
