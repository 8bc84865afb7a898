//! The gateway's gRPC ingress end to end: real greet-servers
//! behind the Service proxy, any gRPC call sent to the gateway's gRPC port;
//! every kind of call to a test-only streaming service (ingress/streams.rs).

mod echo;
mod streams;
use greet_tests as support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use greet_demo::LocalCluster;
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use greet_proto::observe::MethodCount;
use tonic::transport::Channel;

fn greeting(i: usize) -> GreetingRequest {
    GreetingRequest {
        greeting: Some(Greeting {
            first_name: "Ada".into(),
            last_name: format!("Lovelace-{i}"),
        }),
    }
}

async fn ingress_channel(cluster: &LocalCluster) -> Channel {
    Channel::from_shared(format!("http://{}", cluster.gateway.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// The pods that answered `n` Greet calls through the ingress, in order.
async fn greet_pods(client: &mut GreetServiceClient<Channel>, n: usize) -> Vec<String> {
    let mut pods = Vec::new();
    for i in 0..n {
        let reply = client.greet(greeting(i)).await.unwrap().into_inner();
        assert!(reply.result.contains(&format!("Lovelace-{i}")), "{reply:?}");
        pods.push(reply.pod_name);
    }
    pods
}

#[tokio::test]
async fn greet_through_the_ingress_is_sticky_then_round_robin_and_observed() {
    let cluster = support::cluster(3, Mode::Sticky).await;
    let mut client = GreetServiceClient::new(ingress_channel(&cluster).await);

    // More than 100 calls on one upstream connection: h2 closes a connection
    // that received 100 empty DATA frames, which the ingress must not send.
    let sticky = greet_pods(&mut client, 150).await;
    assert!(sticky.iter().all(|p| *p == sticky[0]), "sticky: one pod: {sticky:?}");

    cluster.rest().set_mode(Mode::Balanced).await.unwrap();
    // The same client connection: balancing is per call, not per connection.
    let balanced = greet_pods(&mut client, 30).await;
    let mut names: Vec<String> = cluster.pods().map(|(name, _)| name.to_owned()).collect();
    names.sort();
    let first: Vec<String> = balanced[..3].to_vec();
    let mut sorted = first.clone();
    sorted.sort();
    assert_eq!(sorted, names, "the first three calls went to three different pods");
    for (i, pod) in balanced.iter().enumerate() {
        assert_eq!(*pod, first[i % 3], "call {i} in exact round robin: {balanced:?}");
    }

    // Observed as REST requests are: counted per pod, in the totals.
    let state = cluster.gateway.gateway.hub.snapshot();
    assert_eq!(state.total_requests, 180);
    let hits: BTreeMap<String, u64> = state.pods.iter().map(|p| (p.pod_name.clone(), p.requests)).collect();
    let mut expected: BTreeMap<String, u64> = names.iter().map(|n| (n.clone(), 10)).collect();
    *expected.get_mut(&sticky[0]).unwrap() += 150;
    assert_eq!(hits, expected);
    assert!(state.pods.iter().all(|p| p.errors == 0), "{:?}", state.pods);

    // Counted by method beside REST's /greet (no method).
    let rest = cluster.rest().greet("Ada", "Lovelace").await.unwrap();
    assert_eq!(rest.status, 200);
    let method = |method: &str, requests| MethodCount {
        method: method.into(),
        requests,
        errors: 0,
    };
    assert_eq!(
        cluster.gateway.gateway.hub.totals().methods,
        [method("", 1), method("/greet.GreetService/Greet", 180)]
    );
}

/// Replies per pod, and every failure.
type Tally = (BTreeMap<String, usize>, Vec<String>);

/// Clients calling Greet through the ingress one after another, each on its
/// own connection, until stopped: replies per pod, and every failure.
struct GreetLoad {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicUsize>,
    clients: Vec<tokio::task::JoinHandle<Tally>>,
}

impl GreetLoad {
    async fn start(cluster: &LocalCluster, clients: usize) -> GreetLoad {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let mut client = GreetServiceClient::new(ingress_channel(cluster).await);
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            tasks.push(tokio::spawn(async move {
                let (mut hits, mut failures) = (BTreeMap::new(), Vec::new());
                let mut pace = tokio::time::interval(Duration::from_millis(2));
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    pace.tick().await;
                    match client.greet(greeting(c * 1_000_000 + i)).await {
                        Ok(reply) => {
                            served.fetch_add(1, Ordering::Relaxed);
                            *hits.entry(reply.into_inner().pod_name).or_default() += 1;
                        }
                        Err(status) => failures.push(format!("{:?}: {}", status.code(), status.message())),
                    }
                }
                (hits, failures)
            }));
        }
        GreetLoad {
            stop,
            served,
            clients: tasks,
        }
    }

    /// Waits until `more` calls beyond those answered now are answered (at most 20 s).
    async fn until_served(&self, more: usize) {
        let wanted = self.served.load(Ordering::Relaxed) + more;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while self.served.load(Ordering::Relaxed) < wanted {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{more} more calls not answered within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    async fn stop(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let (mut hits, mut failures) = (BTreeMap::new(), Vec::new());
        for client in self.clients {
            let (client_hits, client_failures) = client.await.unwrap();
            for (pod, n) in client_hits {
                *hits.entry(pod).or_default() += n;
            }
            failures.extend(client_failures);
        }
        (hits, failures)
    }
}

#[tokio::test]
async fn killing_a_server_under_balanced_grpc_load_loses_no_call() {
    let mut cluster = support::cluster(3, Mode::Balanced).await;
    let victim = cluster.pods().next().unwrap().0.to_owned();
    let load = GreetLoad::start(&cluster, 4).await;
    load.until_served(300).await;
    // Down but still in the endpoint set, as a crashed pod is until
    // Kubernetes notices: calls to it are refused, then it is skipped.
    cluster.crash_pod(&victim).await.unwrap();
    load.until_served(600).await;
    cluster.kill_pod(&victim).await.unwrap();
    load.until_served(300).await;
    let (hits, failures) = load.stop().await;
    assert_eq!(failures, Vec::<String>::new(), "no call may fail");
    assert_eq!(hits.len(), 3, "{hits:?}");
    let totals = cluster.gateway.gateway.hub.totals();
    assert_eq!(totals.requests, hits.values().sum::<usize>() as u64);
    assert_eq!(totals.errors, 0);
    assert!(
        totals.attempts > totals.requests,
        "the refused calls were retried: {} attempts for {} calls",
        totals.attempts,
        totals.requests
    );
}
