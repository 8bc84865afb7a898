//! REST's Greet calls: the route the mode gives (route.rs, as the ingress's
//! calls take), each try within its own limit (balancer/try_limit.rs) and
//! the call's deadline (`--upstream-timeout`), tried again elsewhere when
//! it did not get through. Greet is idempotent and its request is whole in
//! hand, so any try that got no reply may go again, even after the reply's
//! headers (nothing has been sent to the REST client yet): a pod killed
//! between a reply's headers and its message lost one request in 1,585
//! when sticky mode waited for no response to have begun
//! (tests/it/rolling_restart.rs).

use std::time::Duration;

use tokio::time::Instant;

use super::outcome::CallOutcome;
use super::route::{NoRoute, Route};
use super::tries::{Attempt, Tries, try_call};
use super::{GreetReply, Upstream, UpstreamError};
use greet_proto::Mode;
use greet_proto::greet::GreetingRequest;

impl Upstream {
    /// Tries `request` on `mode`'s route: an endpoint that is unavailable,
    /// or does not answer within its try's limit, is skipped for a while
    /// and the call goes to the next one (sticky: once more on the
    /// connection made anew). The last try possible gets all that is left
    /// of the call's deadline (`--upstream-timeout`). `outcome` follows the
    /// tries; the caller finishes it.
    pub(super) async fn greet_routed(
        &self,
        mode: Mode,
        request: GreetingRequest,
        outcome: &mut CallOutcome,
    ) -> Result<GreetReply, UpstreamError> {
        let deadline = Instant::now() + self.timeouts.request;
        let route = match Route::pick(self, mode) {
            Ok(route) => route,
            Err(NoRoute { error, endpoint }) => {
                outcome.no_route(mode, endpoint, (error.grpc_code(), error.to_string()));
                return Err(error);
            }
        };
        let mut greet = Greet {
            upstream: self,
            request: &request,
            deadline,
        };
        let Tries { mut route, result, .. } = try_call(self, route, &mut greet, Some(deadline), outcome).await;
        match &result {
            Ok(reply) => {
                route.succeeded(self, Some(&reply.pod_name));
                outcome.replied_from(&reply.pod_name, &reply.pod_ip);
            }
            // The pod as known once the call failed: a sticky connection's
            // replies may have named it meanwhile.
            Err(_) => outcome.unanswered_from(route.known_pod(self)),
        }
        result
    }
}

/// One REST Greet call's tries.
struct Greet<'a> {
    upstream: &'a Upstream,
    request: &'a GreetingRequest,
    deadline: Instant,
}

impl Attempt<Upstream> for Greet<'_> {
    type Answer = GreetReply;
    type Failure = UpstreamError;

    async fn send(&mut self, route: &Route<Upstream>, limit: Option<Duration>) -> Result<GreetReply, UpstreamError> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        let wait = limit.unwrap_or(left).min(left);
        // The deadline's error names --upstream-timeout itself.
        let limit = Limit {
            wait,
            named: if wait < left {
                wait
            } else {
                self.upstream.timeouts.request
            },
        };
        self.upstream
            .call(&route.endpoint, route.connection(), self.request, limit)
            .await
    }

    fn skip_reason(failure: &UpstreamError) -> Option<String> {
        super::error::skip_reason(failure)
    }

    fn may_retry(&self, failure: &UpstreamError, cut_short: bool) -> bool {
        goes_again(failure, cut_short)
    }
}

/// Whether a failed try goes once more (elsewhere, or sticky on the
/// connection made anew): it did not get through (UNAVAILABLE, including a
/// reset, GOAWAY or "connection closed" of a draining or killed pod; an
/// address that cannot be dialled), or it timed out when only its try's
/// limit was spent (`cut_short`), not the call's deadline. A server's
/// answer, even a failure, is the call's.
fn goes_again(failure: &UpstreamError, cut_short: bool) -> bool {
    match failure {
        UpstreamError::Unavailable { .. } | UpstreamError::BadEndpoint { .. } => true,
        UpstreamError::Timeout { .. } => cut_short,
        _ => false,
    }
}

/// How long one try waits, and the time its timeout error names.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    pub(super) wait: Duration,
    pub(super) named: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_try_that_did_not_get_through_goes_again() {
        let unavailable = UpstreamError::Unavailable {
            endpoint: "svc:50051".into(),
            message: "connection closed".into(),
            skip: None,
        };
        assert!(goes_again(&unavailable, false));
        let timeout = UpstreamError::Timeout {
            endpoint: "svc:50051".into(),
            after: Duration::from_secs(5),
        };
        assert!(goes_again(&timeout, true), "its try's limit passed: the next pod");
        assert!(
            !goes_again(&timeout, false),
            "it may have been served, and the deadline is spent"
        );
        let failed = UpstreamError::Failed {
            endpoint: "svc:50051".into(),
            code: tonic::Code::Internal,
            message: "boom".into(),
        };
        assert!(!goes_again(&failed, true), "the server answered: the call's answer");
    }
}
