//! The tries over fake pools (route/tests.rs) with scripted answers: no
//! socket, no clock but the call's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::events::{EventHub, GatewayInfo};
use crate::upstream::outcome::CallOutcome;
use crate::upstream::route::tests::{Fake, pick};
use greet_proto::Mode;
use greet_proto::observe::PodSummary;

/// How a try on an endpoint ends.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Ends {
    Answers,
    /// Refused: skipped, and the call may go again.
    Refused,
    /// The server answered with an error: the call's, no skip, no retry.
    Fails,
}

/// Answers by endpoint; records each try's endpoint and limit.
struct Script {
    ends: HashMap<String, Ends>,
    tries: Vec<(String, Option<Duration>)>,
    retried: Vec<u32>,
}

impl Script {
    fn new(ends: &[(&str, Ends)]) -> Self {
        Script {
            ends: ends.iter().map(|(e, ends)| ((*e).to_owned(), *ends)).collect(),
            tries: Vec::new(),
            retried: Vec::new(),
        }
    }
}

impl Attempt<Fake> for Script {
    type Answer = String;
    type Failure = Ends;

    async fn send(&mut self, route: &Route<Fake>, limit: Option<Duration>) -> Result<String, Ends> {
        self.tries.push((route.endpoint.clone(), limit));
        match self.ends.get(&route.endpoint).copied().unwrap_or(Ends::Answers) {
            Ends::Answers => Ok(route.endpoint.clone()),
            ends => Err(ends),
        }
    }

    fn skip_reason(failure: &Ends) -> Option<String> {
        (*failure == Ends::Refused).then(|| "connection refused".to_owned())
    }

    fn may_retry(&self, failure: &Ends, _cut_short: bool) -> bool {
        *failure == Ends::Refused
    }

    fn retrying(&mut self, _route: &Route<Fake>, attempts: u32) {
        self.retried.push(attempts);
    }
}

/// The call's tries, and what its one outcome added to the hub's totals
/// once finished: one request, whatever the tries.
async fn run(
    fake: &Fake,
    route: Route<Fake>,
    script: &mut Script,
    deadline: Option<Instant>,
) -> (Tries<Fake, Result<String, Ends>>, PodSummary) {
    let hub = Arc::new(EventHub::new(GatewayInfo::default(), Mode::Balanced));
    let mut outcome = CallOutcome::begin(&hub, String::new());
    let tries = try_call(fake, route, script, deadline, &mut outcome).await;
    let failure = tries.result.as_ref().err();
    outcome.finish(failure.map(|ends| (tonic::Code::Unavailable, format!("{ends:?}"))));
    let totals = hub.totals();
    assert_eq!(totals.requests, 1, "counted once");
    assert_eq!(totals.errors, u64::from(failure.is_some()));
    (tries, totals)
}

fn tried(script: &Script) -> Vec<&str> {
    script.tries.iter().map(|(endpoint, _)| endpoint.as_str()).collect()
}

#[tokio::test]
async fn a_refused_try_skips_its_endpoint_and_the_next_one_answers() {
    let fake = Fake::with(&["a:1", "b:1", "c:1"]);
    // Round robin over 3: the call's pick, three picks on, is `first` again.
    let first = pick(&fake, Mode::Balanced).endpoint;
    let mut script = Script::new(&[(first.as_str(), Ends::Refused)]);
    for _ in 0..2 {
        pick(&fake, Mode::Balanced);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    let (tries, totals) = run(&fake, pick(&fake, Mode::Balanced), &mut script, Some(deadline)).await;
    assert_eq!(totals.attempts, 2);
    assert_eq!(tries.result.as_deref(), Ok(tries.route.endpoint.as_str()));
    assert_ne!(tries.route.endpoint, first);
    assert_eq!(tried(&script)[0], first);
    assert_eq!(script.retried, [2]);
    assert_eq!(fake.skip_of(&first).as_deref(), Some("connection refused"));
    // Every try but the last possible has its own limit (the pods are
    // unmeasured: balancer/try_limit.rs's 2 s).
    assert_eq!(script.tries[0].1, Some(Duration::from_secs(2)));
}

#[tokio::test]
async fn the_tries_end_at_the_routes_count_and_the_last_waits_for_the_deadline() {
    let fake = Fake::with(&["a:1", "b:1", "c:1", "d:1"]);
    let mut script = Script::new(&[
        ("a:1", Ends::Refused),
        ("b:1", Ends::Refused),
        ("c:1", Ends::Refused),
        ("d:1", Ends::Refused),
    ]);
    let (tries, totals) = run(&fake, pick(&fake, Mode::Balanced), &mut script, None).await;
    assert_eq!(totals.attempts, 3, "at most 3 tries, whatever the pool");
    assert_eq!(tries.result, Err(Ends::Refused));
    let limits: Vec<bool> = script.tries.iter().map(|(_, limit)| limit.is_some()).collect();
    assert_eq!(limits, [true, true, false]);
    let mut endpoints = tried(&script);
    endpoints.sort_unstable();
    endpoints.dedup();
    assert_eq!(endpoints.len(), 3, "each try on another endpoint: {:?}", script.tries);
}

#[tokio::test]
async fn a_servers_failure_is_the_calls_answer_with_no_skip_and_no_retry() {
    let fake = Fake::with(&["a:1", "b:1"]);
    let mut script = Script::new(&[("a:1", Ends::Fails), ("b:1", Ends::Fails)]);
    let (tries, totals) = run(&fake, pick(&fake, Mode::Balanced), &mut script, None).await;
    assert_eq!((totals.attempts, tries.result), (1, Err(Ends::Fails)));
    assert_eq!(fake.changes(), 0, "nothing skipped");
    assert!(script.retried.is_empty());
}

#[tokio::test]
async fn sticky_goes_once_more_on_the_connection_made_anew_then_gives_up() {
    let fake = Fake::with(&[]);
    let mut script = Script::new(&[("svc:50051", Ends::Refused)]);
    let (_, totals) = run(&fake, pick(&fake, Mode::Sticky), &mut script, None).await;
    assert_eq!(totals.attempts, 2);
    assert_eq!(tried(&script), ["svc:50051", "svc:50051"]);
    assert_eq!(script.tries[0].1, None, "sticky tries wait for the deadline");
}
