//! Items 7 and 8 in one run: the gateway's VmRSS after `first` and after
//! `total` balanced requests at full speed, with 10 aggregated subscribers
//! and 1 raw one attached throughout; then every subscriber's per-pod totals
//! must equal, exactly, the gateway's totals before the load plus what the
//! clients counted from the reply texts (each names its pod).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use greet_demo::rest_client::RestClient;
use greet_proto::Mode;
use greet_proto::greeting_text::pod_from_result;
use greet_proto::observe::GetStateRequest;
use greet_proto::observe::observer_client::ObserverClient;

use super::procs::{Servers, rss_kib, start_gateway};
use super::subscribers::{self, Kind};

const CLIENTS: usize = 32;

pub(crate) struct RssRun {
    pub rss_first_kib: f64,
    pub rss_total_kib: f64,
    pub rate: f64,
}

/// Sends requests from CLIENTS clients until `issued` reaches `until`;
/// returns the replies per pod. Any non-200 fails the run.
async fn load(rest: &RestClient, issued: &Arc<AtomicUsize>, until: usize) -> anyhow::Result<BTreeMap<String, u64>> {
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (rest, issued) = (rest.clone(), Arc::clone(issued));
            tokio::spawn(async move {
                let mut hits = BTreeMap::<String, u64>::new();
                while issued.fetch_add(1, Ordering::Relaxed) < until {
                    let response = rest.greet("Hitesh", "Pattanayak").await?;
                    if response.status != 200 {
                        bail!("POST /greet: {} {}", response.status, response.body);
                    }
                    let (pod, _) = pod_from_result(&response.body).context("reply names no pod")?;
                    *hits.entry(pod).or_default() += 1;
                }
                anyhow::Ok(hits)
            })
        })
        .collect();
    let mut hits = BTreeMap::new();
    for worker in workers {
        for (pod, n) in worker.await?? {
            *hits.entry(pod).or_default() += n;
        }
    }
    // fetch_add overshoots by one per worker; the next phase starts from `until`.
    issued.store(until, Ordering::Relaxed);
    Ok(hits)
}

pub(crate) async fn run(servers: &Servers, first: usize, total: usize) -> anyhow::Result<RssRun> {
    let gateway = start_gateway(servers, Mode::Balanced).await?;
    let mut observer = ObserverClient::connect(gateway.observe_url.clone()).await?;
    let before = observer.get_state(GetStateRequest {}).await?.into_inner();
    let mut expected: BTreeMap<String, u64> = before.pods.into_iter().map(|p| (p.pod_name, p.requests)).collect();
    let mut counters = Vec::new();
    for _ in 0..10 {
        counters.push(subscribers::counter(&gateway.observe_url, Kind::Aggregated).await?);
    }
    counters.push(subscribers::counter(&gateway.observe_url, Kind::Raw).await?);

    let (pid, issued) = (gateway.child.pid(), Arc::new(AtomicUsize::new(0)));
    let started = std::time::Instant::now();
    let mut hits = load(&gateway.rest, &issued, first).await?;
    let rss_first_kib = rss_kib(pid)? as f64;
    for (pod, n) in load(&gateway.rest, &issued, total).await? {
        *hits.entry(pod).or_default() += n;
    }
    let rate = total as f64 / started.elapsed().as_secs_f64();
    let rss_total_kib = rss_kib(pid)? as f64;
    for (pod, n) in hits {
        *expected.entry(pod).or_default() += n;
    }
    expected.retain(|_, v| *v > 0);
    // Summaries come once a second: give the last one time to arrive.
    let wrong = subscribers::until_equal(&counters, &expected, Duration::from_secs(5)).await;
    if !wrong.is_empty() {
        bail!("totals differ from the clients' {expected:?}: {}", wrong.join("; "));
    }
    Ok(RssRun {
        rss_first_kib,
        rss_total_kib,
        rate,
    })
}
