//! Clients sending `POST /greet` through a gateway until stopped, counting
//! replies per pod and every failure.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use greet_demo::rest_client::RestClient;
use tokio::task::JoinHandle;

/// Clients sending `POST /greet` one after another until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    /// Requests answered 200 so far, by all clients.
    served: Arc<AtomicUsize>,
    clients: Vec<JoinHandle<Outcomes>>,
}

/// Replies per pod, and every failure with its status and body.
#[derive(Default)]
pub struct Outcomes {
    pub hits: BTreeMap<String, usize>,
    pub failures: Vec<String>,
}

impl Load {
    pub fn start(rest: &RestClient, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let clients = (0..clients)
            .map(|c| {
                let (rest, stop, served) = (rest.clone(), Arc::clone(&stop), Arc::clone(&served));
                tokio::spawn(async move {
                    let mut outcomes = Outcomes::default();
                    let mut pace = tokio::time::interval(Duration::from_millis(2));
                    for i in 0.. {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        pace.tick().await;
                        match rest.greet("Ada", &format!("Lovelace-{c}-{i}")).await {
                            Ok(response) if response.status == 200 => {
                                served.fetch_add(1, Ordering::Relaxed);
                                *outcomes.hits.entry(super::pod_of(&response.body)).or_default() += 1;
                            }
                            Ok(response) => outcomes
                                .failures
                                .push(format!("{}: {}", response.status, response.body)),
                            Err(err) => outcomes.failures.push(format!("{err:#}")),
                        }
                    }
                    outcomes
                })
            })
            .collect();
        Load { stop, served, clients }
    }

    /// Waits until `more` requests beyond those answered now are answered (at most 20 s).
    pub async fn until_served(&self, more: usize) {
        let wanted = self.served.load(Ordering::Relaxed) + more;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.served.load(Ordering::Relaxed) < wanted {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{more} more requests not answered within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    pub async fn stop(self) -> Outcomes {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Outcomes::default();
        for client in self.clients {
            let outcomes = client.await.unwrap();
            for (pod, n) in outcomes.hits {
                *all.hits.entry(pod).or_default() += n;
            }
            all.failures.extend(outcomes.failures);
        }
        all
    }
}
