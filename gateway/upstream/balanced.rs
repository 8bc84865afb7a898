//! Balanced, least-loaded and dns mode's calls: a member per try, each
//! try within its own limit (balancer/try_limit.rs), the call retried on
//! the next member when one is unavailable or does not answer in time.

use std::time::Duration;

use tokio::time::Instant;

use super::{Tried, Upstream, UpstreamError};
use greet_proto::Mode;
use greet_proto::greet::GreetingRequest;

impl Upstream {
    /// Round robin (over discovery's set or the last DNS answer) or least
    /// loaded; an endpoint that is unavailable, or does not answer within
    /// its try's limit (balancer/try_limit.rs), is skipped for a while and
    /// the call retried on the next one (Greet is idempotent). The tries
    /// share the call's deadline (`--upstream-timeout`); the last one
    /// possible gets all that is left of it.
    pub(super) async fn greet_balanced(&self, mode: Mode, request: GreetingRequest) -> Tried {
        let balancer = self.pool(mode);
        let max_attempts = u32::try_from(balancer.ready_count().clamp(1, 3)).unwrap_or(3);
        let deadline = Instant::now() + self.timeouts.request;
        let mut attempts = 0;
        loop {
            let picked_at = Instant::now();
            let picked = match mode {
                Mode::LeastLoaded => balancer.pick_least_loaded(picked_at),
                _ => balancer.pick(picked_at),
            };
            let Some(member) = picked else {
                let err = match mode {
                    Mode::Dns => UpstreamError::NoDnsAnswer(self.dns.no_address_message()),
                    _ => UpstreamError::NoEndpoints {
                        discovery: self.discovery_description(),
                    },
                };
                return Tried {
                    result: Err(err),
                    endpoint: String::new(),
                    pod_hint: None,
                    attempts,
                    last_try: picked_at,
                };
            };
            attempts += 1;
            let address = &member.info.address;
            let left = deadline.saturating_duration_since(picked_at);
            let limit = if attempts < max_attempts {
                member.try_limit(left)
            } else {
                left
            };
            // The deadline's error names --upstream-timeout itself.
            let limit = Limit {
                wait: limit,
                named: if limit < left { limit } else { self.timeouts.request },
            };
            // In every mode, so least-loaded starts from warm estimates.
            let in_flight = balancer.start(&member, Instant::now());
            let result = match &member.conn {
                Ok(conns) => self.call(address, &conns.channel, request.clone(), limit).await,
                Err(message) => Err(UpstreamError::BadEndpoint {
                    endpoint: address.clone(),
                    message: message.clone(),
                }),
            };
            if let Ok(reply) = &result {
                in_flight.finish(Instant::now());
                if member.replied_from(&reply.pod_name) {
                    self.pool_changed(mode);
                }
            }
            let eject = |err| {
                let Some(reason) = super::error::skip_reason(err) else {
                    return;
                };
                if balancer.eject(&member, picked_at, Instant::now(), &reason) {
                    self.pool_changed(mode);
                }
            };
            match &result {
                Err(err @ (UpstreamError::Unavailable { .. } | UpstreamError::BadEndpoint { .. })) => {
                    eject(err);
                    if attempts < max_attempts {
                        continue;
                    }
                }
                // A hanging pod is skipped for a while. The call goes to the
                // next pod when only its try's limit passed (Greet is
                // idempotent), not when the call's deadline is spent.
                Err(err @ UpstreamError::Timeout { .. }) => {
                    eject(err);
                    if limit.wait < left && attempts < max_attempts {
                        continue;
                    }
                }
                Ok(_) => {
                    if balancer.succeeded(&member, picked_at, Instant::now()) {
                        self.pool_changed(mode);
                    }
                }
                Err(_) => {}
            }
            return Tried {
                result,
                endpoint: address.clone(),
                pod_hint: member.pod_name(),
                attempts,
                last_try: picked_at,
            };
        }
    }
}

/// How long one try waits, and the time its timeout error names.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limit {
    pub(super) wait: Duration,
    pub(super) named: Duration,
}

impl Limit {
    /// The whole call's deadline.
    pub(super) fn whole(timeout: Duration) -> Self {
        Limit {
            wait: timeout,
            named: timeout,
        }
    }
}
