//! A fake Kubernetes API server for tests, spoken to by the real `kube::Client`.
//!
//! [`FakeKube::start`] serves plain HTTP on `127.0.0.1:<free port>`; [`FakeKube::client`] builds a
//! `kube::Client` from a generated kubeconfig (static bearer token, current context with a
//! namespace), so code under test goes through the same config, HTTP and watch machinery as in a
//! cluster.
//!
//! What it serves (GET only; anything else is a `Status` JSON error like the real API server's):
//!
//! | path | does |
//! |---|---|
//! | `/api/v1/namespaces/{ns}/pods/{name}/portforward?ports=P[,P...]` | WebSocket port-forward, see below |
//! | `/api/v1/namespaces/{ns}/pods/{id}/proxy[/{path}][?query]` | HTTP GET proxied to the pod, see below |
//! | `/api/v1/namespaces/{ns}/pods` | list, or watch with `watch=true` |
//! | `/api/v1/pods` | list, or watch (all namespaces) |
//! | `/api/v1/namespaces/{ns}/pods/{name}` | get |
//! | `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices` | list, or watch |
//! | `/apis/discovery.k8s.io/v1/endpointslices` | list, or watch (all namespaces) |
//! | `/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}` | get |
//!
//! Semantics, as far as `kube::Api` and `kube::runtime::watcher` need them:
//!
//! - One global resourceVersion, an integer as a string, bumped by every change. Stored objects
//!   carry theirs in `metadata.resourceVersion`; a list carries the current one in its metadata.
//! - `labelSelector` (`k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-separated, all must hold) and
//!   `fieldSelector` (`metadata.name`, `metadata.namespace`, same operators) filter lists and
//!   watches. Set-based selectors (`k in (a,b)`) answer 400.
//! - A watch replays the history after the given resourceVersion, then streams live changes, one
//!   JSON `WatchEvent` per line of a chunked `application/json` body. A change that moves an object
//!   into the selector is sent as `ADDED`, out of it as `DELETED`, as the API server's watch cache
//!   does. Without a resourceVersion (or with `"0"`) it first sends `ADDED` for every current match;
//!   with `sendInitialEvents=true` it also follows those with the `k8s.io/initial-events-end`
//!   bookmark (streaming lists).
//! - With `allowWatchBookmarks=true` a `BOOKMARK` carrying the newest resourceVersion the watch has
//!   accounted for goes out every [`BOOKMARK_INTERVAL`]; `timeoutSeconds` ends the response cleanly
//!   after that long.
//! - A watch from a resourceVersion older than the last [`FakeKube::expire_history`] answers 200 with
//!   a single `ERROR` event holding a 410 `Expired` `Status`, then ends, exactly as the API server's
//!   watch cache does. kube 5's watcher re-lists on that ERROR event (`watcher::Error::WatchError`,
//!   then `Init`...`InitDone`). It would *not* re-list on an HTTP 410 answer to the watch request: that
//!   surfaces as `WatchStartFailed` and the watcher retries the same resourceVersion forever, which is
//!   why the fake never answers a watch that way.
//! - Requests need `Authorization: Bearer <the kubeconfig's token>` (else 401).
//!
//! Port-forward (`Api::<Pod>::portforward`), as the API server and kubelet do it for kube 5's client:
//!
//! - kube 5 sends `GET .../pods/{name}/portforward?&ports=9092` with `Upgrade: websocket`,
//!   `Connection: Upgrade`, `Sec-WebSocket-Version: 13`, a `Sec-WebSocket-Key` and
//!   `Sec-WebSocket-Protocol: v5.channel.k8s.io, v4.channel.k8s.io`. The kubelet's port-forward
//!   speaks no v5, so the fake answers `101` with `v4.channel.k8s.io` and the `Sec-WebSocket-Accept`
//!   kube checks (it also wants `Upgrade: websocket` and `Connection: Upgrade` back).
//! - Checked before upgrading, in the API server's order: 401; 405 for a method other than GET
//!   (SPDY's POST is not spoken); 403 if [`FakeKube::forbid`]`("pods/portforward", true)` (verb
//!   `create`, as RBAC wants for a WebSocket port-forward); 404 for an unknown pod; 404 if no
//!   [`FakeKube::port_forward_to`] target is registered for the pod (a fake-only answer); 400 for a
//!   missing or bad `ports`; 400 for a request that is no WebSocket upgrade or offers no
//!   `v4.channel.k8s.io`. Every request lands in [`FakeKube::requests`].
//! - v4 channel framing: requested port `i` has data channel `2*i` and error channel `2*i+1`; every
//!   binary message starts with its channel byte. Right after the upgrade the server sends, on both
//!   channels of every port, the port number as 2 bytes little-endian (kube checks this). Then each
//!   port gets its own TCP connection to the registered target, and bytes are pumped both ways,
//!   client data arriving on the data channel. If that connection cannot be made, the error channel
//!   carries `error forwarding port P to pod NAME, uid UID: ...` (what kube's `take_error` yields) and
//!   the port is done.
//! - A port is done when its target connection ends (EOF or error) or cannot be made. When all are
//!   done the server sends a WebSocket Close (1000), which kube turns into EOF on every port's stream,
//!   and drops the connection once the client answers the Close (or after [`CLOSE_GRACE`]). v4 has
//!   no per-port half-close: when the client is done (kube sends Close once every port's stream has
//!   been shut down or dropped) the server answers the Close and drops the target connections.
//!   Dropping the [`FakeKube`] cuts every tunnel. (kube 5 quirk: after a server-sent Close, kube
//!   still sends its own Close when the streams are dropped, tungstenite refuses it, and
//!   `Portforwarder::join` returns `SendWebSocketMessage(Protocol(SendAfterClosing))`; a
//!   client-initiated close joins `Ok`. kube's `take_error` future resolves only when its task ends.)
//!
//! Pod proxy (`GET .../pods/{id}/proxy/{path}`, how a scraper reads a pod's `/metrics` through the
//! API server), as the API server does it:
//!
//! - `id` is `name`, `name:port` or `scheme:name:port`, split like apimachinery's
//!   `SplitSchemeNamePort` (scheme `http` or `https`). Without a port, the first `containerPort` of
//!   the pod's first container that declares one, else 80 (443 for https).
//! - Checked in the API server's order: 401; 403 if [`FakeKube::forbid`]`("pods/proxy", true)`
//!   (verb from the method, `get` for GET; the message names the path's `id`, port and all, as
//!   RBAC's request info does); 405 for a method other than GET (fake-only: a real API server
//!   proxies every method); 400 `invalid pod request "ID"` for a bad id; 404 `pods "NAME" not
//!   found`; 400 `address not allowed` for a pod without `status.podIP` or without any
//!   [`FakeKube::proxy_to`] target (a real API server says this for a pod with no IP yet, or one it
//!   may not dial); 301 to `.../proxy/` for a bare `.../proxy` (apimachinery's redirect); then the
//!   forward.
//! - The forward goes to the target registered for (namespace, pod, port) over a fresh HTTP/1.1
//!   connection: `GET /{path}?{query}` with the caller's `Accept` header (nothing else of the
//!   caller's, as the API server drops its credentials), `Host: PODIP:PORT`. The pod's status,
//!   `Content-Type` and body come back unchanged, bytes as they are, whatever the status (a pod's own
//!   404 is no `Status`).
//! - When the pod cannot be reached: 503 `ServiceUnavailable`, `error trying to reach service:
//!   dial tcp PODIP:PORT: connect: connection refused` (no target for that port, or nobody listens on
//!   it), `...: EOF` (the pod hung up without answering), `...: dial tcp: lookup tcp/NAME: unknown
//!   port` (a named port: pods/proxy resolves none). An `https:` id to a listening target answers 503
//!   `error trying to reach service: http: server gave HTTP response to HTTPS client`, what Go's TLS
//!   client says to a plain-HTTP pod (targets here are all plain HTTP).
//! - Fake-only limits: a request that takes longer than [`PROXY_TIME_LIMIT`] (see
//!   [`FakeKube::set_proxy_time_limit`]) answers 504 `Timeout` (a real API server waits as long as
//!   the client does), and a body over [`PROXY_BODY_LIMIT`] answers 503. Pod IPs are not checked
//!   for being dialable (a real API server refuses loopback ones).
//! - [`FakeKube::pod_proxy_stats`] counts requests, forwarded answers and body bytes, outside the
//!   store's lock; the store's lock is held only to look the pod and target up, never across the
//!   forward.
//!
//! All state sits behind one `std::sync::Mutex` (the pods/proxy counters are atomics beside it);
//! request handling never panics on client input.

mod objects;
mod pod_proxy;
mod port_forward;
mod query;
mod request;
mod server;
mod store;
mod watch;

pub use objects::{endpoint_slice, pod};
pub use pod_proxy::PodProxyStats;
pub use server::FakeKube;

use std::time::Duration;

/// The bearer token the generated kubeconfig carries and the server demands.
pub const FAKE_TOKEN: &str = "fake-kube-token";
/// The user the fake's 403 messages name, as a real API server names the caller.
pub const FAKE_USER: &str = "system:serviceaccount:default:fake-kube-test";
/// How often a watch with `allowWatchBookmarks=true` gets a `BOOKMARK`.
pub const BOOKMARK_INTERVAL: Duration = Duration::from_secs(1);
/// The port-forward WebSocket subprotocol the fake speaks (the kubelet's; kube 5 also offers v5).
pub const PORT_FORWARD_PROTOCOL: &str = "v4.channel.k8s.io";
/// How long a port-forward tunnel that sent its Close waits for the client's before hanging up.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// How long one pods/proxy request may take, connect to last body byte, before the fake answers
/// 504 (so a hung target cannot hang a test); [`FakeKube::set_proxy_time_limit`] changes it.
pub const PROXY_TIME_LIMIT: Duration = Duration::from_secs(10);
/// The largest pod answer the pods/proxy route passes back (it reads answers whole).
pub const PROXY_BODY_LIMIT: usize = 64 * 1024 * 1024;
