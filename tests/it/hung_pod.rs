//! A pod that stops answering (SIGSTOP: hung, not dead, its connections
//! open) under balanced load through both front doors (REST and the gRPC
//! ingress): no request waits much past one try's limit, none fails, and
//! once the pod answers again (SIGCONT) a probe re-admits it.
//! Real greet-server processes, an in-process gateway, all on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use greet_demo::GatewaySpec;
use greet_demo::rest_client::RestClient;
use greet_gateway::GatewayHandle;
use greet_gateway::TRY_LIMIT_FLOOR;
use greet_gateway::UpstreamTimeouts;
use greet_gateway::discovery::{self, EndpointInfo};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::greet::{Greeting, GreetingRequest};
use greet_tests::server_process::Server;
use tokio::time::Instant;

/// Each client's answers: per pod, the failures, and the slowest answer.
#[derive(Default)]
struct Seen {
    hits: BTreeMap<String, usize>,
    failures: Vec<String>,
    slowest: Duration,
}

/// One greeting through the gateway: the pod that answered, or what failed.
#[derive(Clone)]
enum FrontDoor {
    Rest(Box<RestClient>),
    Grpc(GreetServiceClient<tonic::transport::Channel>),
}

impl FrontDoor {
    async fn greet(&mut self, last_name: String) -> Result<String, String> {
        match self {
            FrontDoor::Rest(rest) => match rest.greet("Ada", &last_name).await {
                Ok(response) if response.status == 200 => {
                    Ok(greet_proto::greeting_text::pod_from_result(&response.body)
                        .map(|(pod, _)| pod)
                        .unwrap_or_default())
                }
                Ok(response) => Err(format!("{}: {}", response.status, response.body)),
                Err(err) => Err(format!("{err:#}")),
            },
            FrontDoor::Grpc(client) => {
                let request = GreetingRequest {
                    greeting: Some(Greeting {
                        first_name: "Ada".into(),
                        last_name,
                    }),
                };
                match client.greet(request).await {
                    Ok(reply) => Ok(reply.into_inner().pod_name),
                    Err(status) => Err(format!("gRPC {status}")),
                }
            }
        }
    }
}

/// A client per front door in `doors`, each sending a greeting every 10 ms
/// (at most 100/s each) until `stop`, timing every answer.
fn load(doors: &[FrontDoor], stop: &Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<Seen>> {
    doors
        .iter()
        .enumerate()
        .map(|(c, door)| {
            let (mut door, stop) = (door.clone(), Arc::clone(stop));
            tokio::spawn(async move {
                let mut seen = Seen::default();
                let mut pace = tokio::time::interval(Duration::from_millis(10));
                pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                for i in 0.. {
                    pace.tick().await;
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let sent = Instant::now();
                    let answer = door.greet(format!("Lovelace-{c}-{i}")).await;
                    seen.slowest = seen.slowest.max(sent.elapsed());
                    match answer {
                        Ok(pod) => *seen.hits.entry(pod).or_default() += 1,
                        Err(failure) => seen.failures.push(failure),
                    }
                }
                seen
            })
        })
        .collect()
}

async fn gather(clients: Vec<tokio::task::JoinHandle<Seen>>) -> Seen {
    let mut all = Seen::default();
    for client in clients {
        let seen = client.await.unwrap();
        for (pod, n) in seen.hits {
            *all.hits.entry(pod).or_default() += n;
        }
        all.failures.extend(seen.failures);
        all.slowest = all.slowest.max(seen.slowest);
    }
    all
}

async fn balanced_gateway(servers: &[Server]) -> GatewayHandle {
    let spec = GatewaySpec {
        mode: Mode::Balanced,
        timeouts: UpstreamTimeouts {
            request: Duration::from_secs(5),
            connect: Duration::from_millis(500),
        },
        ..GatewaySpec::default()
    };
    let set = servers.iter().map(|s| EndpointInfo::ready(s.address.clone())).collect();
    spec.start(
        servers[0].address.clone(),
        discovery::static_endpoints(set),
        Default::default(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigstopped_pod_stalls_no_request_past_one_try_and_is_readmitted_after_sigcont() {
    let servers: Vec<Server> = (1..=3).map(|n| Server::spawn(&format!("hung-pod-{n}"))).collect();
    for server in &servers {
        server.until_listening().await;
    }
    let gateway = balanced_gateway(&servers).await;
    let rest = FrontDoor::Rest(Box::new(RestClient::new(format!("http://{}", gateway.rest_addr))));
    let grpc = FrontDoor::Grpc(
        GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
            .await
            .unwrap(),
    );
    // Two REST clients, two gRPC clients sharing one connection.
    let doors = [rest.clone(), rest, grpc.clone(), grpc];

    // Warm: every pod answers, so each has a latency to derive its limit from.
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&doors, &stop);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let member = gateway
        .gateway
        .upstream
        .balancer()
        .members()
        .into_iter()
        .find(|m| m.info.address == servers[1].address)
        .unwrap();
    // 500 ms unless a busy machine made one of its answers take over 50 ms.
    let limit = member.try_limit(Duration::from_secs(5));
    servers[1].signal("-STOP");
    let stopped_at = Instant::now();
    // Long enough for the first skip (2 s) to end and its probe to time out.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    let while_hung = gather(clients).await;
    println!(
        "while hung: slowest answer {:?} (try limit {limit:?}), {:?}, {} failures",
        while_hung.slowest,
        while_hung.hits,
        while_hung.failures.len()
    );
    assert_eq!(while_hung.failures, Vec::<String>::new());
    // One try's limit, then a retry on a pod that answers in a millisecond;
    // the rest is slack for a busy machine (the flat timeout was 5 s).
    assert!(limit >= TRY_LIMIT_FLOOR && limit < Duration::from_secs(2), "{limit:?}");
    assert!(
        while_hung.slowest < limit + Duration::from_millis(400),
        "a request waited {:?}",
        while_hung.slowest
    );
    let skipped = gateway.gateway.upstream.balancer().report();
    let hung = skipped
        .iter()
        .find(|(info, _)| info.address == servers[1].address)
        .unwrap();
    assert_eq!(hung.0.pod_name.as_deref(), Some("hung-pod-2"), "named by its replies");
    let reason = hung.1.as_ref().map(|skip| skip.reason.clone()).unwrap_or_default();
    if limit == TRY_LIMIT_FLOOR {
        assert_eq!(reason, "no answer within 500ms", "{skipped:?}");
    } else {
        // A limit above the floor moves with every answer until the stop.
        assert!(reason.starts_with("no answer within "), "{skipped:?}");
    }

    // Answering again: a probe re-admits it once its skip is due (at most
    // 4 s after the failed probe), with no request failing meanwhile.
    servers[1].signal("-CONT");
    let stop = Arc::new(AtomicBool::new(false));
    let clients = load(&doors, &stop);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = gateway.gateway.upstream.balancer().report();
        if report.iter().all(|(_, skip)| skip.is_none()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not re-admitted 10 s after SIGCONT: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let after = gather(clients).await;
    println!(
        "after SIGCONT ({:?} after SIGSTOP): slowest {:?}, {:?}",
        stopped_at.elapsed(),
        after.slowest,
        after.hits
    );
    assert_eq!(after.failures, Vec::<String>::new());
    assert!(after.hits.get("hung-pod-2").is_some_and(|&n| n > 0), "{:?}", after.hits);
    gateway.shutdown().await.unwrap();
}
