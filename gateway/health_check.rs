//! The gateway's own health checks of every endpoint discovery lists
//! (grpc.health.v1 Check, every --health-check-interval), as pure state:
//! what a check's outcome says in words, and each endpoint's health, whose
//! changes (up to down, down to up, another cause) are what the Observer
//! is told. The checks themselves are in health_check/probe.rs.
//!
//! They only inform: routing stays with the balancer's passive ejection.
//! In sticky mode no request reaches the listed endpoints, so without
//! these nothing would say that one of them died.

pub(crate) mod probe;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use greet_proto::grpc_code::grpc_code_name;
use greet_proto::observe;

/// The longest one check may wait for its answer, whatever the interval.
pub(crate) const MAX_CHECK_TIME: Duration = Duration::from_secs(1);

/// How long one check may wait: the interval, at most [`MAX_CHECK_TIME`].
pub(crate) fn check_limit(interval: Duration) -> Duration {
    interval.min(MAX_CHECK_TIME)
}

/// How one check ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckOutcome {
    /// SERVING; or UNIMPLEMENTED: the server has no health service, but it answered.
    Up,
    /// The health service answered with another status ("NOT_SERVING", "SERVICE_UNKNOWN", "UNKNOWN").
    NotServing(&'static str),
    /// The call failed with a gRPC status (its code and message).
    Status { code: i32, message: String },
    /// The connection failed, in a few words ("connection refused").
    Unreachable(String),
    /// No answer within the limit.
    NoAnswer(Duration),
}

impl CheckOutcome {
    /// The health service's answer, `status` being its ServingStatus number.
    pub fn from_serving_status(status: i32) -> Self {
        match status {
            1 => CheckOutcome::Up,
            2 => CheckOutcome::NotServing("NOT_SERVING"),
            3 => CheckOutcome::NotServing("SERVICE_UNKNOWN"),
            _ => CheckOutcome::NotServing("UNKNOWN"),
        }
    }

    /// A failed call's status (its I/O cause, when it has one, is the
    /// caller's to find: it becomes [`CheckOutcome::Unreachable`]).
    pub fn from_status(code: tonic::Code, message: &str, limit: Duration) -> Self {
        match code {
            tonic::Code::Unimplemented => CheckOutcome::Up,
            // The health service's answer for a service it does not know.
            tonic::Code::NotFound => CheckOutcome::NotServing("SERVICE_UNKNOWN"),
            // The server enforced the deadline the check sent.
            tonic::Code::DeadlineExceeded => CheckOutcome::NoAnswer(limit),
            code => CheckOutcome::Status {
                code: code as i32,
                message: greet_proto::sanitize::sanitize_truncated(message, 200),
            },
        }
    }

    /// The failure as the Observer shows it, cause first; `None` when up.
    pub fn failure(&self) -> Option<String> {
        match self {
            CheckOutcome::Up => None,
            CheckOutcome::NotServing(status) => Some((*status).to_owned()),
            CheckOutcome::Status { code, message } if message.is_empty() => Some(grpc_code_name(*code).to_owned()),
            CheckOutcome::Status { code, message } => Some(format!("{}: {message}", grpc_code_name(*code))),
            CheckOutcome::Unreachable(cause) => Some(cause.clone()),
            CheckOutcome::NoAnswer(limit) => Some(format!("no answer within {limit:?}")),
        }
    }
}

/// One endpoint's health as its checks found it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EndpointHealth {
    /// The last check's failure; `None` when it passed or none has ended.
    pub failure: Option<String>,
    /// When the last check ended (Unix µs); 0 before the first.
    pub checked_unix_us: i64,
    /// Since when the checks have failed without a break (Unix µs); 0 while they pass.
    pub failing_since_unix_us: i64,
}

impl EndpointHealth {
    /// A check ended at `ended_unix_us` with `outcome`. Returns whether what
    /// the Observer shows changed: up to down, down to up, or another cause
    /// (not merely the check's time).
    pub(crate) fn record(&mut self, outcome: &CheckOutcome, ended_unix_us: i64) -> bool {
        let failure = outcome.failure();
        let changed = failure != self.failure;
        self.failing_since_unix_us = match (&self.failure, &failure) {
            (_, None) => 0,
            (None, Some(_)) => ended_unix_us,
            (Some(_), Some(_)) => self.failing_since_unix_us,
        };
        self.failure = failure;
        self.checked_unix_us = ended_unix_us;
        changed
    }

    /// Writes this health into the Observer's endpoint.
    pub(crate) fn fill(&self, endpoint: &mut observe::Endpoint) {
        endpoint.health_failure = self.failure.clone().unwrap_or_default();
        endpoint.health_checked_unix_us = self.checked_unix_us;
        endpoint.health_failing_since_unix_us = self.failing_since_unix_us;
    }
}

/// Every checked endpoint's health, by address.
#[derive(Debug, Default)]
pub struct HealthBoard {
    endpoints: Mutex<HashMap<String, EndpointHealth>>,
}

impl HealthBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, EndpointHealth>> {
        // Every update is an assignment: the map stays whole after a panic.
        self.endpoints.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A check of `address` ended; returns whether its shown health changed.
    pub fn record(&self, address: &str, outcome: &CheckOutcome, ended_unix_us: i64) -> bool {
        self.lock()
            .entry(address.to_owned())
            .or_default()
            .record(outcome, ended_unix_us)
    }

    /// Forgets the endpoints `keep` says are no longer listed.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.lock().retain(|address, _| keep(address));
    }

    /// How many of `listed` failed their last check. (A check that ended
    /// just as its endpoint left the set may have recorded it again.)
    pub fn failing<'a>(&self, listed: impl IntoIterator<Item = &'a str>) -> usize {
        let board = self.lock();
        listed
            .into_iter()
            .filter(|address| board.get(*address).is_some_and(|health| health.failure.is_some()))
            .count()
    }

    /// Fills each endpoint's health fields from its checks (none: left empty).
    pub fn fill(&self, endpoints: &mut [observe::Endpoint]) {
        let board = self.lock();
        for endpoint in endpoints {
            if let Some(health) = board.get(&endpoint.address) {
                health.fill(endpoint);
            }
        }
    }
}

#[cfg(test)]
mod tests;
