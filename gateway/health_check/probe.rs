//! The health checks' I/O: one task per listed endpoint, each with its own
//! connection (kept across checks, dropped with the task when the endpoint
//! leaves the set), checking every interval. A semaphore bounds how many
//! checks run at once; each check waits at most its limit, so a hung
//! endpoint holds one permit for that long and never delays the others'.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use super::{CheckOutcome, check_limit};
use crate::Gateway;
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

/// Checks `address` every `interval` on a connection of its own.
async fn check_every(gateway: Arc<Gateway>, address: String, interval: Duration, permits: Arc<Semaphore>) {
    let limit = check_limit(interval);
    let channel = match Endpoint::from_shared(format!("http://{address}")) {
        // PINGed as the upstream channels are: a connection whose peer
        // vanished without a reset is dropped and dialled anew, not kept
        // failing every check.
        Ok(endpoint) => endpoint
            .connect_timeout(limit)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true)
            .connect_lazy(),
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
        let (outcome, pod) = check(&channel, limit).await;
        gateway.upstream.health_checked(&address, &outcome, pod.as_deref());
    }
}

/// One Check (service ""), and the pod its answer named (`x-pod-name`).
async fn check(channel: &Channel, limit: Duration) -> (CheckOutcome, Option<String>) {
    let mut client = HealthClient::new(channel.clone());
    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    request.set_timeout(limit);
    let started = tokio::time::Instant::now();
    match tokio::time::timeout(limit, client.check(request)).await {
        Err(_) => (CheckOutcome::NoAnswer(limit), None),
        // tonic's client enforces the deadline it sends, and may end the
        // call first (CANCELLED "Timeout expired"): still no answer.
        Ok(Err(_)) if started.elapsed() >= limit => (CheckOutcome::NoAnswer(limit), None),
        Ok(Ok(response)) => {
            let pod = crate::response_headers::pod_header(response.metadata().as_ref());
            (CheckOutcome::from_serving_status(response.get_ref().status), pod)
        }
        Ok(Err(status)) => {
            let pod = crate::response_headers::pod_header(status.metadata().as_ref());
            let outcome = match io_cause(&status) {
                Some(cause) => CheckOutcome::Unreachable(cause),
                None => CheckOutcome::from_status(status.code(), status.message(), limit),
            };
            (outcome, pod)
        }
    }
}

/// The I/O error under a status the client made ("connection refused"), if any.
fn io_cause(status: &tonic::Status) -> Option<String> {
    let mut source = std::error::Error::source(status);
    while let Some(err) = source {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            return Some(crate::io_reason::io_reason(io));
        }
        source = err.source();
    }
    None
}
