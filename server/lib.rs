//! greet-server: the seed article's Greet service, plus gRPC health,
//! reflection, graceful drain and an optional max connection age.

pub mod cli;
mod clients;
mod connection_age;
mod connections;
mod metrics;
mod reply_delay;

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;

pub use connection_age::MaxConnectionAge;
use greet_runtime::shutdown::{DrainPolicy, serve_until_drained};
pub use reply_delay::ReplyDelay;

use greet_proto::greet::greet_service_server::{GreetService, GreetServiceServer};
use greet_proto::greet::{GreetingRequest, GreetingResponse};

/// Streams a client may reset before the server accepted them, at once,
/// and streams open on one connection: sized for a proxy in front (the
/// gateway's ingress allows 200 a client connection, and several clients
/// share its one upstream connection).
const MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 1024;
const MAX_CONCURRENT_STREAMS: u32 = 1024;
use greet_proto::greeting_text::greeting_text;

/// Who this server says it is, and how it treats connections.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// `POD_NAME`: reported in every reply.
    pub pod_name: String,
    /// `POD_IP`: reported in every reply.
    pub pod_ip: String,
    /// Send GOAWAY to a connection after this age (±10 % jitter), so clients
    /// reconnect and a connection-level balancer gets another chance (the
    /// server-side remedy). The start value: [`serve_with_max_age`] takes a
    /// handle that changes it at run time.
    pub max_connection_age: Option<Duration>,
    /// Time between reporting NOT_SERVING and closing the listener on shutdown,
    /// so load balancers notice before connections are refused.
    pub shutdown_delay: Duration,
    /// Longest wait for in-flight calls and open connections after that;
    /// then the server stops anyway (a stuck client must not block a rollout).
    pub drain_timeout: Duration,
    /// Added to every Greet reply (zero normally): a slow pod on demand.
    pub reply_delay: ReplyDelay,
}

/// The Greet service implementation.
#[derive(Clone, Debug)]
pub struct Greeter {
    pod_name: String,
    pod_ip: String,
    reply_delay: ReplyDelay,
}

impl Greeter {
    pub fn new(pod_name: impl Into<String>, pod_ip: impl Into<String>) -> Self {
        Greeter {
            pod_name: pod_name.into(),
            pod_ip: pod_ip.into(),
            reply_delay: ReplyDelay::default(),
        }
    }

    /// Every reply waits `delay` first (read per call: changeable at run time).
    pub fn with_reply_delay(self, reply_delay: ReplyDelay) -> Self {
        Greeter { reply_delay, ..self }
    }
}

#[tonic::async_trait]
impl GreetService for Greeter {
    async fn greet(&self, request: Request<GreetingRequest>) -> Result<Response<GreetingResponse>, Status> {
        let greeting = request.into_inner().greeting.ok_or_else(|| {
            Status::invalid_argument("GreetingRequest.greeting is missing: send first_name and last_name")
        })?;
        self.reply_delay.wait().await;
        Ok(Response::new(GreetingResponse {
            result: greeting_text(&greeting.first_name, &greeting.last_name, &self.pod_name, &self.pod_ip),
            pod_name: self.pod_name.clone(),
            pod_ip: self.pod_ip.clone(),
        }))
    }
}

/// Names the pod on every response (`x-pod-name`, `x-pod-ip`), so a proxy
/// that forwards any method (the gateway's gRPC ingress) knows who answered.
fn pod_headers(
    pod_name: &str,
    pod_ip: &str,
) -> tower::util::MapResponseLayer<
    impl Fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body> + Clone + use<>,
> {
    // A name or IP that is no header value is simply not sent.
    let name = http::HeaderValue::from_str(pod_name).ok();
    let ip = http::HeaderValue::from_str(pod_ip).ok();
    tower::util::MapResponseLayer::new(move |mut response: http::Response<tonic::body::Body>| {
        let headers = response.headers_mut();
        if let Some(name) = &name {
            headers.insert("x-pod-name", name.clone());
        }
        if let Some(ip) = &ip {
            headers.insert("x-pod-ip", ip.clone());
        }
        response
    })
}

/// Serves Greet, health and reflection on `listener` until `shutdown`
/// completes, then reports NOT_SERVING, waits `shutdown_delay`, stops
/// accepting and lets in-flight calls finish. No metrics listener.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_metrics(listener, None, config, shutdown).await
}

/// [`serve`], and `GET /metrics` on `metrics_listener` until the gRPC
/// server has drained (scrapes during the drain still answer).
pub async fn serve_with_metrics(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let max_age = MaxConnectionAge::new(config.max_connection_age);
    serve_with_max_age(listener, metrics_listener, config, max_age, shutdown).await
}

/// [`serve_with_metrics`], with the max connection age `max_age` says, as it
/// changes (`config.max_connection_age` is not read: `max_age` starts where
/// its creator set it).
pub async fn serve_with_max_age(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    config: ServerConfig,
    max_age: MaxConnectionAge,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let local_addr = listener.local_addr().context("reading the listener's address")?;
    let grpc_metrics = metrics::GrpcMetrics::new(&metrics::SERVED)?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<GreetServiceServer<Greeter>>().await;
    health.set_service_status("", ServingStatus::Serving).await;

    let (reflection, reflection_v1alpha) = greet_runtime::reflection::services(&["greet.GreetService"])?;

    let greeter =
        Greeter::new(config.pod_name.clone(), config.pod_ip.clone()).with_reply_delay(config.reply_delay.clone());
    // No max connection age here: the builder's is fixed at start
    // (connections.rs sends the GOAWAYs; it sets TCP_NODELAY too).
    let router = tonic::transport::Server::builder()
        // A client gone without a FIN would hold its connection (and the
        // drain) until TCP gave up, some 15 minutes: PING it instead.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(20)))
        // Its client is usually the gateway, one connection multiplexing
        // many clients' calls: their cancels arrive as resets of streams
        // not yet accepted, and h2's default of 20 at once closed the
        // connection every client shared (GOAWAY too_many_resets).
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESET_STREAMS))
        .max_concurrent_streams(Some(MAX_CONCURRENT_STREAMS))
        .layer(grpc_metrics.layer())
        .layer(pod_headers(&config.pod_name, &config.pod_ip))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(GreetServiceServer::new(greeter));

    tracing::info!(
        addr = %local_addr,
        pod_name = %config.pod_name,
        pod_ip = %config.pod_ip,
        max_connection_age = ?max_age.get(),
        "greet-server listening"
    );
    let stop = CancellationToken::new();
    let serving = {
        let stop = stop.clone();
        let clients = grpc_metrics.clients().clone();
        async move {
            connections::serve(listener, max_age, clients, stop, move |connection, signal| {
                router.clone().serve_with_incoming_shutdown(connection, signal)
            })
            .await
            .with_context(|| format!("greet-server on {local_addr} failed"))
        }
    };
    let announce = async move {
        health.set_not_serving::<GreetServiceServer<Greeter>>().await;
        health.set_service_status("", ServingStatus::NotServing).await;
    };
    let policy = DrainPolicy {
        delay: config.shutdown_delay,
        timeout: config.drain_timeout,
    };
    let metrics_stop = CancellationToken::new();
    let metrics_server = match metrics_listener {
        Some(listener) => Some(serve_metrics(listener, &grpc_metrics, metrics_stop.clone())?),
        None => None,
    };
    let served = serve_until_drained("greet-server", serving, shutdown, announce, stop, policy).await;
    metrics_stop.cancel();
    if let Some(metrics_server) = metrics_server {
        match metrics_server.await {
            Ok(result) => result?,
            Err(join) => anyhow::bail!("the metrics listener's task failed: {join}"),
        }
    }
    served
}

/// Serves `GET /metrics` on `listener` until `stop`.
fn serve_metrics(
    listener: TcpListener,
    grpc_metrics: &std::sync::Arc<metrics::GrpcMetrics>,
    stop: CancellationToken,
) -> anyhow::Result<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let addr = listener
        .local_addr()
        .context("reading the metrics listener's address")?;
    tracing::info!(%addr, "greet-server metrics at http://{addr}/metrics");
    let router = grpc_metrics.router();
    Ok(tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
            .with_context(|| format!("greet-server's metrics listener on {addr} failed"))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use greet_proto::greet::Greeting;

    #[tokio::test]
    async fn greet_reports_pod_in_text_and_fields() {
        let greeter = Greeter::new("pod-a", "10.0.0.7");
        let reply = greeter
            .greet(Request::new(GreetingRequest {
                greeting: Some(Greeting {
                    first_name: "Ada".into(),
                    last_name: "Lovelace".into(),
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(reply.result, "Hello, Ada Lovelace from pod: name(pod-a), ip(10.0.0.7).");
        assert_eq!(reply.pod_name, "pod-a");
        assert_eq!(reply.pod_ip, "10.0.0.7");
    }

    #[tokio::test]
    async fn greet_without_greeting_is_invalid_argument() {
        let status = Greeter::new("p", "i")
            .greet(Request::new(GreetingRequest { greeting: None }))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().contains("greeting is missing"), "{}", status.message());
    }
}
