//! greet-server's gRPC metrics, named and labelled as go-grpc-prometheus
//! names them, so dashboards built for other gRPC servers work unchanged:
//! `grpc_server_started_total`, `grpc_server_handled_total` (with
//! `grpc_code`), `grpc_server_msg_received_total`, `grpc_server_msg_sent_total`
//! and the `grpc_server_handling_seconds` histogram, each by `grpc_type`,
//! `grpc_service` and `grpc_method`. Counted by a tower layer on the tonic
//! server (layer.rs), so Greet, health and reflection are all covered.
//!
//! Every served method's series exist from the start, every code of
//! `grpc_server_handled_total` included, as go-grpc-prometheus's
//! `InitializeMetrics` makes them; a path that names no served method is not
//! counted (grpc-go does not count it either), so a client cannot add series.

mod layer;

pub(crate) use layer::MetricsLayer;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use prost::Message;

use greet_proto::grpc_code::go_code_name;

/// Status codes 0..=16 (OK to UNAUTHENTICATED).
const CODES: usize = 17;

/// The Prometheus client's default buckets (`prometheus.DefBuckets`, which
/// go-grpc-prometheus's handling-time histogram uses unless told otherwise),
/// below 5 ms split further: a Greet call takes well under a millisecond,
/// and with 5 ms as the first bound every p50 and p99 read from these
/// metrics would be a guess inside it.
pub(crate) const DEFAULT_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The services greet-server serves (reflection lists the same ones).
pub(crate) const SERVED: [&str; 4] = [
    "greet.GreetService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandledLabels {
    grpc_type: &'static str,
    grpc_service: String,
    grpc_method: String,
    grpc_code: &'static str,
}

/// One method's series, resolved once: a call only bumps atomics and the
/// histogram.
struct MethodMetrics {
    client_streaming: bool,
    server_streaming: bool,
    started: Counter,
    received: Counter,
    sent: Counter,
    handled: [Counter; CODES],
    handling: Histogram,
}

impl MethodMetrics {
    /// Counts a finished call: its code (an out-of-range one as Unknown) and
    /// its duration; a unary call that succeeded sent its one message.
    fn handled(&self, code: i32, seconds: f64) {
        let index = usize::try_from(code).ok().filter(|&c| c < CODES).unwrap_or(2);
        self.handled[index].inc();
        self.handling.observe(seconds);
        if !self.server_streaming && code == 0 {
            self.sent.inc();
        }
    }
}

/// The registry and, by request path (`/greet.GreetService/Greet`), each
/// served method's series.
pub(crate) struct GrpcMetrics {
    registry: Registry,
    methods: HashMap<String, Arc<MethodMetrics>>,
    /// Open connections and their client addresses (clients.rs).
    clients: super::clients::Clients,
}

impl std::fmt::Debug for GrpcMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrpcMetrics")
            .field("methods", &self.methods.len())
            .finish()
    }
}

/// A method of a served service, read from the compiled descriptors.
struct Method {
    service: String,
    name: String,
    client_streaming: bool,
    server_streaming: bool,
}

impl Method {
    fn grpc_type(&self) -> &'static str {
        match (self.client_streaming, self.server_streaming) {
            (false, false) => "unary",
            (true, false) => "client_stream",
            (false, true) => "server_stream",
            (true, true) => "bidi_stream",
        }
    }
}

/// Every method of `services`, from the descriptor sets greet-server serves.
fn methods_of(services: &[&str]) -> anyhow::Result<Vec<Method>> {
    let sets = [
        greet_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = Vec::new();
    for encoded in sets {
        let set = prost_types::FileDescriptorSet::decode(encoded).context("reading a compiled descriptor set")?;
        for file in set.file {
            for service in &file.service {
                let full = match file.package() {
                    "" => service.name().to_owned(),
                    package => format!("{package}.{}", service.name()),
                };
                if !services.contains(&full.as_str()) {
                    continue;
                }
                methods.extend(service.method.iter().map(|m| Method {
                    service: full.clone(),
                    name: m.name().to_owned(),
                    client_streaming: m.client_streaming(),
                    server_streaming: m.server_streaming(),
                }));
            }
        }
    }
    Ok(methods)
}

impl GrpcMetrics {
    /// The series of every method of `services`.
    pub(crate) fn new(services: &[&str]) -> anyhow::Result<Arc<GrpcMetrics>> {
        let started = Family::<MethodLabels, Counter>::default();
        let received = Family::<MethodLabels, Counter>::default();
        let sent = Family::<MethodLabels, Counter>::default();
        let handled = Family::<HandledLabels, Counter>::default();
        let handling = Family::<MethodLabels, Histogram, fn() -> Histogram>::new_with_constructor(|| {
            Histogram::new(DEFAULT_BUCKETS)
        });
        let mut by_path = HashMap::new();
        for method in methods_of(services)? {
            let labels = MethodLabels {
                grpc_type: method.grpc_type(),
                grpc_service: method.service.clone(),
                grpc_method: method.name.clone(),
            };
            let handled_as = |code: usize| HandledLabels {
                grpc_type: labels.grpc_type,
                grpc_service: labels.grpc_service.clone(),
                grpc_method: labels.grpc_method.clone(),
                grpc_code: go_code_name(code as i32),
            };
            let metrics = MethodMetrics {
                client_streaming: method.client_streaming,
                server_streaming: method.server_streaming,
                started: started.get_or_create_owned(&labels),
                received: received.get_or_create_owned(&labels),
                sent: sent.get_or_create_owned(&labels),
                handled: std::array::from_fn(|code| handled.get_or_create_owned(&handled_as(code))),
                handling: handling.get_or_create_owned(&labels),
            };
            by_path.insert(format!("/{}/{}", method.service, method.name), Arc::new(metrics));
        }
        let missing: Vec<&&str> = services
            .iter()
            .filter(|s| !by_path.keys().any(|path| path.starts_with(&format!("/{s}/"))))
            .collect();
        anyhow::ensure!(missing.is_empty(), "no descriptor for the services {missing:?}");

        let mut registry = Registry::default();
        registry.register(
            "grpc_server_started",
            "Total number of RPCs started on the server",
            started,
        );
        registry.register(
            "grpc_server_handled",
            "Total number of RPCs completed on the server, regardless of success or failure",
            handled,
        );
        registry.register(
            "grpc_server_msg_received",
            "Total number of RPC stream messages received on the server",
            received,
        );
        registry.register(
            "grpc_server_msg_sent",
            "Total number of gRPC stream messages sent by the server",
            sent,
        );
        registry.register(
            "grpc_server_handling_seconds",
            "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server",
            handling,
        );
        let clients = super::clients::Clients::default();
        clients.register(&mut registry);
        Ok(Arc::new(GrpcMetrics {
            registry,
            methods: by_path,
            clients,
        }))
    }

    /// The connection gauges, for the accept loop to count into.
    pub(crate) fn clients(&self) -> &super::clients::Clients {
        &self.clients
    }

    /// The layer that counts the calls of a tonic server into these series.
    pub(crate) fn layer(self: &Arc<Self>) -> MetricsLayer {
        MetricsLayer::new(Arc::clone(self))
    }

    /// The HTTP routes of the metrics listener: `GET /metrics`.
    pub(crate) fn router(self: &Arc<Self>) -> axum::Router {
        let metrics = Arc::clone(self);
        axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let metrics = Arc::clone(&metrics);
                async move { greet_runtime::metrics::exposition(&metrics.registry) }
            }),
        )
    }

    fn method(&self, path: &str) -> Option<&Arc<MethodMetrics>> {
        self.methods.get(path)
    }
}
