//! A call's tries, for both front doors: each try's limit (the route's,
//! none for the last try possible), the endpoint skipped when a try finds
//! it down, and the call sent once more (to the next endpoint, or sticky on
//! the connection made anew) when the front door's rule allows, up to its
//! number of tries. A front door says only how a try is sent, why it
//! failed, and which failures may go again; what a response does to the
//! pool (`Route::succeeded`) stays with it, since only it reads the pod.
//! Each try moves the call's one outcome on (outcome.rs), which the front
//! door then finishes: the only place a call is counted.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::outcome::CallOutcome;
use super::route::{Pools, Route};

/// One front door's way of trying a call on a route.
pub(crate) trait Attempt<P: Pools> {
    type Answer;
    type Failure;

    /// The most tries this call may make, given the route's (one per ready
    /// endpoint, at most 3; sticky 2).
    fn max_attempts(&self, route_max: u32) -> u32 {
        route_max
    }

    /// Sends the call on `route`, waiting at most `limit` for its answer when
    /// there is one, else as long as the call's own deadline allows.
    fn send(
        &mut self,
        route: &Route<P>,
        limit: Option<Duration>,
    ) -> impl Future<Output = Result<Self::Answer, Self::Failure>>;

    /// Why the endpoint is skipped after `failure`, if it is.
    fn skip_reason(failure: &Self::Failure) -> Option<String>;

    /// Whether the call may go once more after `failure`; `cut_short` when
    /// the try's own limit ended it, not the call's deadline.
    fn may_retry(&self, failure: &Self::Failure, cut_short: bool) -> bool;

    /// The call goes once more, on `route`, as its `attempts`th try.
    fn retrying(&mut self, _route: &Route<P>, _attempts: u32) {}
}

/// How a call's tries ended: on which route, and its result (how many
/// there were, and when the last began, is the call's outcome's).
pub(crate) struct Tries<P: Pools, T> {
    pub(crate) route: Route<P>,
    pub(crate) result: T,
}

/// Tries the call on `route` and, as `attempt` allows, on the routes after
/// it, until one answers, a failure may not go again, or the tries are spent.
/// `outcome` follows each try (its route, its number, when it began).
pub(crate) async fn try_call<P: Pools, A: Attempt<P>>(
    pools: &P,
    mut route: Route<P>,
    attempt: &mut A,
    deadline: Option<Instant>,
    outcome: &mut CallOutcome,
) -> Tries<P, Result<A::Answer, A::Failure>> {
    let max_attempts = attempt.max_attempts(route.max_attempts(pools));
    let mut attempts = 1;
    loop {
        outcome.trying(pools, &route, attempts);
        let last_try = Instant::now();
        let limit = route.try_limit(pools, deadline).filter(|_| attempts < max_attempts);
        let failure = match attempt.send(&route, limit).await {
            Ok(answer) => {
                return Tries {
                    route,
                    result: Ok(answer),
                };
            }
            Err(failure) => failure,
        };
        if let Some(reason) = A::skip_reason(&failure) {
            route.failed(pools, &reason);
        }
        let left = deadline.map_or(Duration::MAX, |deadline| deadline.saturating_duration_since(last_try));
        let cut_short = limit.is_some_and(|limit| limit < left);
        if attempts < max_attempts
            && attempt.may_retry(&failure, cut_short)
            && let Ok(next) = route.retry(pools)
        {
            attempts += 1;
            route = next;
            attempt.retrying(&route, attempts);
            continue;
        }
        return Tries {
            route,
            result: Err(failure),
        };
    }
}

#[cfg(test)]
mod tests;
