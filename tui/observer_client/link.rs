//! One gateway's Observer as greet-top calls it: the channel (direct, or
//! through the API server's port-forward) with the token every call carries
//! and the largest message greet-top accepts. Every call is made through
//! [`GatewayLink::client`], so none can leave either out.

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::state::Refusal;
use greet_proto::observe::observer_client::ObserverClient;
use greet_runtime::auth::ControlToken;

/// The largest message greet-top decodes from a gateway. The largest a
/// gateway sends for 1,000 pods, a summary with 253-character pod names and
/// every counter at its largest value, is about 1.7 MB (measured in the test
/// below; a real one, with short names and counts, about a quarter of that):
/// 16 MiB leaves room for several thousand pods, and bounds what a hostile or
/// broken gateway can make greet-top allocate per message.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// A gateway's Observer channel and the token greet-top sends it.
#[derive(Clone, Debug)]
pub struct GatewayLink {
    channel: Channel,
    bearer: Bearer,
}

/// No token: for gateways whose controls are open (the demo's).
impl From<Channel> for GatewayLink {
    fn from(channel: Channel) -> Self {
        GatewayLink::new(channel, None)
    }
}

impl GatewayLink {
    pub fn new(channel: Channel, token: Option<&ControlToken>) -> Self {
        // A ControlToken is printable ASCII, so it always makes a header value.
        let value = token.and_then(|t| t.header_value().parse::<MetadataValue<Ascii>>().ok());
        GatewayLink {
            channel,
            bearer: Bearer(value),
        }
    }

    /// A client for one or more calls: the token on each, the size limit on
    /// each answer.
    pub fn client(&self) -> ObserverClient<InterceptedService<Channel, Bearer>> {
        ObserverClient::with_interceptor(self.channel.clone(), self.bearer.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// Why the gateway refused a call, when `status` is a refusal.
    pub fn refusal(&self, status: &Status) -> Option<Refusal> {
        if status.code() != Code::Unauthenticated {
            return None;
        }
        // The gateway's own words tell a token lost on the way from a wrong one.
        let received_none = status.message().starts_with("missing bearer token");
        Some(match (self.bearer.0.is_some(), received_none) {
            (false, _) => Refusal::NoToken,
            (true, true) => Refusal::TokenLost,
            (true, false) => Refusal::WrongToken,
        })
    }
}

/// Adds `authorization: Bearer <token>` to every call, when there is a token.
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        };
        f.write_str(shown)
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;
    use greet_proto::latency_buckets::BUCKETS;
    use greet_proto::limits::{MAX_METHOD_CHARS, MAX_METHODS};
    use greet_proto::observe::{self, CodeCount, MethodCount, PodSummary, Summary, event};

    fn link(token: Option<&str>) -> GatewayLink {
        let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:1").connect_lazy();
        let token = token.map(|t| ControlToken::from_setting(t, "--token").unwrap());
        GatewayLink::new(channel, token.as_ref())
    }

    #[tokio::test]
    async fn refusals_say_whether_a_token_was_sent_and_arrived() {
        let missing = Status::unauthenticated("missing bearer token: ...");
        let wrong = Status::unauthenticated("wrong token: ...");
        assert_eq!(link(None).refusal(&missing), Some(Refusal::NoToken));
        assert_eq!(link(None).refusal(&wrong), Some(Refusal::NoToken));
        assert_eq!(link(Some("t")).refusal(&wrong), Some(Refusal::WrongToken));
        assert_eq!(link(Some("t")).refusal(&missing), Some(Refusal::TokenLost));
        assert_eq!(link(Some("t")).refusal(&Status::unavailable("down")), None);
        assert_eq!(format!("{:?}", link(Some("s3cret")).bearer), "Bearer(<redacted>)");
    }

    #[tokio::test]
    async fn the_bearer_interceptor_adds_the_header_only_with_a_token() {
        let header = |token: Option<&str>| {
            let mut bearer = link(token).bearer;
            let request = bearer.call(Request::new(())).unwrap();
            request
                .metadata()
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header(Some("s3cret")), Some("Bearer s3cret".to_owned()));
        assert_eq!(header(None), None);
    }

    #[test]
    fn the_size_limit_is_far_above_the_largest_message_for_a_thousand_pods() {
        let pod = |n: usize| PodSummary {
            pod_name: format!("{n:0>253}"),
            pod_ip: "fd00:ffff:ffff:ffff:ffff:ffff:ffff:ffff".into(),
            endpoint: "[fd00:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535".into(),
            requests: u64::MAX,
            errors: u64::MAX,
            error_codes: (1..=16).map(|code| CodeCount { code, count: u64::MAX }).collect(),
            attempts: u64::MAX,
            latency_us_sum: u64::MAX,
            latency_buckets: vec![u64::MAX; BUCKETS],
            methods: vec![],
            in_flight: u64::MAX,
            oldest_in_flight_us: u64::MAX,
            connections: u32::MAX,
            carried_over_requests: u64::MAX,
            carried_over_errors: u64::MAX,
        };
        let summary = observe::Event {
            kind: Some(event::Kind::Summary(Summary {
                timestamp_unix_us: i64::MAX,
                interval_ms: u32::MAX,
                pods: (0..1000).map(pod).collect(),
                total: Some(pod(0)),
            })),
        };
        let size = summary.encoded_len();
        assert!((1_500_000..1_800_000).contains(&size), "{size} bytes");
        assert!(size * 9 < MAX_MESSAGE_BYTES, "{size} bytes");

        // Every pod also called through the gRPC ingress with the most methods
        // a pod's counters name, each name as long as the gateway keeps it.
        let methods: Vec<MethodCount> = (0..=MAX_METHODS)
            .map(|m| MethodCount {
                method: format!("{m:0>width$}", width = MAX_METHOD_CHARS),
                requests: u64::MAX,
                errors: u64::MAX,
            })
            .collect();
        let Some(event::Kind::Summary(mut summary)) = summary.kind else {
            unreachable!()
        };
        for pod in summary.pods.iter_mut().chain(&mut summary.total) {
            pod.methods.clone_from(&methods);
        }
        let size = observe::Event {
            kind: Some(event::Kind::Summary(summary)),
        }
        .encoded_len();
        assert!((3_500_000..4_000_000).contains(&size), "{size} bytes");
        assert!(size * 4 < MAX_MESSAGE_BYTES, "{size} bytes");
    }
}
