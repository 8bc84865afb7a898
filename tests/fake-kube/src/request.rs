//! Routing a request: authentication, RBAC, get and list, and `Status` errors.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use serde_json::{Value, json};

use crate::pod_proxy::{pod_proxy, pod_proxy_path};
use crate::port_forward::{PortForwardRequest, port_forward, port_forward_path};
use crate::query::Params;
use crate::store::{Inner, Kind, Shared};
use crate::watch::watch;
use crate::{FAKE_TOKEN, FAKE_USER};

/// Which objects a request is about.
pub(crate) struct Target {
    pub(crate) kind: Kind,
    pub(crate) namespace: Option<String>,
    name: Option<String>,
}

impl Target {
    fn parse(path: &str) -> Option<Target> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (kind, rest) = match segments.as_slice() {
            ["api", "v1", rest @ ..] => (Kind::Pods, rest),
            ["apis", "discovery.k8s.io", "v1", rest @ ..] => (Kind::EndpointSlices, rest),
            _ => return None,
        };
        let (namespace, plural, name) = match rest {
            [plural] => (None, *plural, None),
            ["namespaces", ns, plural] => (Some(*ns), *plural, None),
            ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
            _ => return None,
        };
        if Kind::from_plural(plural) != Some(kind) || [namespace, name].into_iter().flatten().any(str::is_empty) {
            return None;
        }
        Some(Target {
            kind,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
        })
    }

    pub(crate) fn contains(&self, kind: Kind, namespace: &str) -> bool {
        self.kind == kind && self.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
}

/// `Status` JSON with `code` and the matching HTTP status.
pub(crate) fn status_response(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    (code, json_body(&status_object(code.as_u16(), reason, message, details))).into_response()
}

pub(crate) fn status_object(code: u16, reason: &str, message: &str, details: Option<Value>) -> Value {
    let mut status = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        status["details"] = details;
    }
    status
}

fn json_body(value: &Value) -> ([(header::HeaderName, &'static str); 1], String) {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string())
}

pub(crate) fn bad_request(message: &str) -> Response {
    status_response(StatusCode::BAD_REQUEST, "BadRequest", message, None)
}

pub(crate) fn forbidden(kind: Kind, verb: &str, namespace: Option<&str>) -> Response {
    let scope = match namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_owned(),
    };
    let message = format!(
        "{} is forbidden: User \"{FAKE_USER}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
        kind.qualified(),
        kind.plural(),
        kind.group()
    );
    let mut details = json!({"kind": kind.plural()});
    if !kind.group().is_empty() {
        details["group"] = json!(kind.group());
    }
    status_response(StatusCode::FORBIDDEN, "Forbidden", &message, Some(details))
}

pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let axum::http::request::Parts {
        method,
        uri,
        headers,
        mut extensions,
        ..
    } = parts;
    let line = match uri.query() {
        Some(query) => format!("{method} {}?{query}", uri.path()),
        None => format!("{method} {}", uri.path()),
    };
    shared.lock().requests.push(line);

    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {FAKE_TOKEN}"));
    if !authorized {
        return status_response(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized", None);
    }
    if let Some(path) = pod_proxy_path(uri.path()) {
        return pod_proxy(&shared, &method, &uri, &headers, path).await;
    }
    if let Some((namespace, pod)) = port_forward_path(uri.path()) {
        let request = PortForwardRequest {
            method: &method,
            uri: &uri,
            headers: &headers,
            namespace,
            pod,
        };
        return port_forward(&shared, &request, extensions.remove::<OnUpgrade>());
    }
    let Some(target) = Target::parse(uri.path()) else {
        return status_response(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource",
            Some(json!({})),
        );
    };
    if method != Method::GET {
        return status_response(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the fake kube API server only serves GET, not {method}"),
            None,
        );
    }
    let params = match Params::parse(&uri) {
        Ok(params) => params,
        Err(message) => return bad_request(&message),
    };
    match (&target.name, params.watch) {
        (Some(_), true) => bad_request("watch of a single object by path is not supported; use fieldSelector"),
        (Some(name), false) => get(&shared, &target, name),
        (None, false) => list(&shared, &target, &params),
        (None, true) => watch(&shared, target, params),
    }
}

fn get(shared: &Shared, target: &Target, name: &str) -> Response {
    let inner = shared.lock();
    let Some(namespace) = target.namespace.as_deref() else {
        return bad_request("get needs a namespace");
    };
    if inner.forbidden.contains(&target.kind) {
        return forbidden(target.kind, "get", Some(namespace));
    }
    match inner.objects.get(&(target.kind, namespace.to_owned(), name.to_owned())) {
        Some(object) => (StatusCode::OK, json_body(object)).into_response(),
        None => {
            let mut details = json!({"name": name, "kind": target.kind.plural()});
            if !target.kind.group().is_empty() {
                details["group"] = json!(target.kind.group());
            }
            status_response(
                StatusCode::NOT_FOUND,
                "NotFound",
                &format!("{} \"{name}\" not found", target.kind.qualified()),
                Some(details),
            )
        }
    }
}

fn list(shared: &Shared, target: &Target, params: &Params) -> Response {
    let inner = shared.lock();
    if inner.forbidden.contains(&target.kind) {
        return forbidden(target.kind, "list", target.namespace.as_deref());
    }
    let items: Vec<Value> = matching(&inner, target, params)
        .map(|object| {
            // Items of a typed list carry no kind/apiVersion, as with the real API server.
            let mut item = (**object).clone();
            if let Some(map) = item.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            item
        })
        .collect();
    let list = json!({
        "kind": format!("{}List", target.kind.kind()),
        "apiVersion": target.kind.api_version(),
        "metadata": {"resourceVersion": inner.rv.to_string()},
        "items": items,
    });
    (StatusCode::OK, json_body(&list)).into_response()
}

pub(crate) fn matching<'a>(
    inner: &'a Inner,
    target: &'a Target,
    params: &'a Params,
) -> impl Iterator<Item = &'a Arc<Value>> {
    inner
        .objects
        .iter()
        .filter(move |((kind, namespace, _), object)| target.contains(*kind, namespace) && params.matches(object))
        .map(|(_, object)| object)
}
