//! The health checks' I/O: one task per listed endpoint, checking every
//! interval on the connection requests to it use, once they opened it (so
//! the gateway holds one connection per endpoint, and a check finds what a
//! request would); else on one of its own, uncounted in the endpoint's
//! gauges (sticky mode sends no request to the listed endpoints: its pods'
//! connections are the Service's one), dropped once requests open theirs
//! or the endpoint leaves the set. A semaphore bounds how many
//! checks run at once; each check waits at most its limit, so a hung
//! endpoint holds one permit for that long and never delays the others'.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

use super::{CheckOutcome, check_limit};
use crate::Gateway;
use crate::connection::raw_h2::RawH2;
use crate::connection::unary::{self, UnaryFailure};
use crate::discovery::EndpointSet;

/// Checks running at once, at most.
const MAX_CONCURRENT_CHECKS: usize = 64;
/// How soon a newly listed endpoint gets its first check, at most.
const FOLLOW_SET_EVERY: Duration = Duration::from_millis(100);

/// Checks every endpoint discovery lists every `interval`, until aborted
/// (which aborts every endpoint's task with it).
pub(crate) async fn follow(gateway: Arc<Gateway>, interval: Duration) {
    let permits = Arc::new(Semaphore::new(MAX_CONCURRENT_CHECKS));
    let mut tasks = JoinSet::new();
    let mut checked: HashMap<String, AbortHandle> = HashMap::new();
    let mut last: Option<Arc<EndpointSet>> = None;
    let mut ticker = tokio::time::interval(FOLLOW_SET_EVERY.min(interval));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Reaps the tasks of endpoints that left the set.
        while tasks.try_join_next().is_some() {}
        let set = gateway.upstream.balancer().endpoints();
        if last.as_ref().is_some_and(|last| Arc::ptr_eq(last, &set)) {
            continue;
        }
        let listed = |address: &str| set.iter().any(|e| e.address == address);
        checked.retain(|address, task| {
            let keep = listed(address);
            if !keep {
                task.abort();
            }
            keep
        });
        gateway.upstream.health().retain(listed);
        for endpoint in set.iter() {
            if !checked.contains_key(&endpoint.address) {
                let task = check_every(
                    Arc::clone(&gateway),
                    endpoint.address.clone(),
                    interval,
                    Arc::clone(&permits),
                );
                checked.insert(endpoint.address.clone(), tasks.spawn(task));
            }
        }
        last = Some(set);
    }
}

/// Checks `address` every `interval`.
async fn check_every(gateway: Arc<Gateway>, address: String, interval: Duration, permits: Arc<Semaphore>) {
    let limit = check_limit(interval);
    let fresh = || RawH2::new(&address, limit).map(Arc::new);
    let mut own = match fresh() {
        Ok(own) => Some(own),
        Err(err) => {
            let outcome = CheckOutcome::Unreachable(format!("not a valid address: {err}"));
            gateway.upstream.health_checked(&address, &outcome, None);
            return;
        }
    };
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Ok(_permit) = permits.acquire().await else { return };
        let requests = gateway
            .upstream
            .connection_to(&address)
            .filter(|connection| connection.connections() > 0);
        let connection = match (requests, &own) {
            (Some(requests), _) => {
                own = None;
                requests
            }
            (None, Some(own)) => Arc::clone(own),
            // The address was valid at the start: it still is.
            (None, None) => match fresh() {
                Ok(fresh) => Arc::clone(own.insert(fresh)),
                Err(_) => continue,
            },
        };
        let (outcome, pod) = check(&connection, limit).await;
        gateway.upstream.health_checked(&address, &outcome, pod.as_deref());
    }
}

/// One Check (service ""), and the pod its answer named (`x-pod-name`).
async fn check(connection: &RawH2, limit: Duration) -> (CheckOutcome, Option<String>) {
    let request = HealthCheckRequest { service: String::new() };
    let pod = |headers: &http::HeaderMap| crate::response_headers::pod_header(headers);
    match unary::call::<_, HealthCheckResponse>(connection, CHECK_PATH, &request, limit).await {
        Ok((response, headers)) => (CheckOutcome::from_serving_status(response.status), pod(&headers)),
        Err(UnaryFailure::NoAnswer(_)) => (CheckOutcome::NoAnswer(limit), None),
        Err(UnaryFailure::Status(status, headers)) => (
            CheckOutcome::from_status(status.code(), status.message(), limit),
            pod(&headers),
        ),
        // A connection that closed under the check with no I/O cause (a
        // GOAWAY race): the pod said nothing; it is checked again next time.
        Err(UnaryFailure::Raw(failure)) => {
            let outcome = match failure.skip_reason() {
                Some(cause) => CheckOutcome::Unreachable(cause),
                None => CheckOutcome::from_status(tonic::Code::Unavailable, &failure.to_string(), limit),
            };
            (outcome, None)
        }
        Err(UnaryFailure::BadReply(why)) => (CheckOutcome::from_status(tonic::Code::Internal, &why, limit), None),
    }
}

/// The health service's Check method, as its descriptor names it.
const CHECK_PATH: &str = "/grpc.health.v1.Health/Check";
