//! The gateway's own health checks of the endpoints discovery lists, in
//! sticky mode (where no request reaches them): the checks name every pod
//! before any request, and tell a killed pod ("connection refused") and a
//! hung one ("no answer within ...") apart; and requests in flight across
//! a mode switch, counted as carried over. Real greet-server processes and
//! an in-process gateway on 127.0.0.1.

use greet_tests as support;
use greet_tests::server_process;

use std::sync::Arc;
use std::time::Duration;

use greet_demo::rest_client::RestClient;
use greet_gateway::HubEvent;
use greet_gateway::UpstreamTimeouts;
use greet_gateway::discovery::{self, DiscoveryStream, EndpointInfo};
use greet_gateway::{DnsModeConfig, Resolver};
use greet_gateway::{GatewayConfig, GatewayHandle, Listeners, start_checking};
use greet_proto::Mode;
use greet_proto::greet::greet_service_client::GreetServiceClient;
use greet_proto::observe::{Endpoint, event};
use http::Method;
use server_process::Server;
use support::fake_pod::{greeting, pod, serve};
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::time::Instant;

const INTERVAL: Duration = Duration::from_millis(200);

/// A sticky gateway to `target` whose discovery lists `endpoints`, checking
/// them every [`INTERVAL`]; its requests time out after `request_timeout`.
async fn sticky_gateway(target: String, endpoints: DiscoveryStream, request_timeout: Duration) -> GatewayHandle {
    let config = GatewayConfig {
        name: "gateway-test".into(),
        mode: Mode::Sticky,
        sticky_target: target.clone(),
        discovery_name: "test".into(),
        discovery_health: Default::default(),
        timeouts: UpstreamTimeouts {
            request: request_timeout,
            connect: Duration::from_millis(500),
        },
        dns: DnsModeConfig {
            name: target.clone(),
            resolver: Resolver::system("127.0.0.1".into(), 1),
            interval: Duration::from_secs(3600),
        },
        control_token: None,
        front_door: greet_gateway::FrontDoorLimits::default(),
    };
    let listener = || TcpListener::bind("127.0.0.1:0");
    let listeners = Listeners {
        rest: listener().await.unwrap(),
        observe: listener().await.unwrap(),
        grpc: listener().await.unwrap(),
    };
    start_checking(config, endpoints, listeners, Some(INTERVAL))
        .await
        .unwrap()
}

/// Follows the endpoints the Observer shows: a snapshot's, then each
/// EndpointsChanged.
struct Endpoints {
    current: Vec<Endpoint>,
    events: broadcast::Receiver<Arc<HubEvent>>,
}

impl Endpoints {
    fn follow(gateway: &GatewayHandle) -> Self {
        let (state, events) = gateway.gateway.hub.subscribe();
        Endpoints {
            current: state.endpoints,
            events,
        }
    }

    /// The next EndpointsChanged within `within`, or `None`.
    async fn next_change(&mut self, within: Duration) -> Option<Vec<Endpoint>> {
        let deadline = Instant::now() + within;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()?
                .unwrap();
            if let Some(event::Kind::EndpointsChanged(changed)) = &event.kind {
                self.current.clone_from(&changed.endpoints);
                return Some(changed.endpoints.clone());
            }
        }
    }

    /// Waits (at most `within`) until the endpoints shown satisfy `done`.
    async fn until(&mut self, within: Duration, what: &str, done: impl Fn(&[Endpoint]) -> bool) -> Vec<Endpoint> {
        let deadline = Instant::now() + within;
        while !done(&self.current) {
            let left = deadline.saturating_duration_since(Instant::now());
            if self.next_change(left).await.is_none() {
                panic!("{what} within {within:?}: the endpoints are {:#?}", self.current);
            }
        }
        self.current.clone()
    }
}

fn at<'a>(endpoints: &'a [Endpoint], address: &str) -> &'a Endpoint {
    endpoints.iter().find(|e| e.address == address).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sticky_mode_checks_every_listed_endpoint_names_its_pod_and_tells_dead_from_hung() {
    let servers: Vec<Server> = ["pod-a", "pod-b", "pod-c"].into_iter().map(Server::spawn).collect();
    for server in &servers {
        server.until_listening().await;
    }
    let (a, b, c) = (&servers[0].address, &servers[1].address, &servers[2].address);
    let set = servers.iter().map(|s| EndpointInfo::ready(s.address.clone())).collect();
    let gateway = sticky_gateway(a.clone(), discovery::static_endpoints(set), Duration::from_secs(5)).await;
    let mut shown = Endpoints::follow(&gateway);

    // Named within a few intervals, before any request.
    let named = shown
        .until(INTERVAL * 8, "every endpoint named by its checks", |endpoints| {
            endpoints.len() == 3 && endpoints.iter().all(|e| !e.pod_name.is_empty())
        })
        .await;
    let mut names: Vec<(&str, &str, &str)> = named
        .iter()
        .map(|e| (e.pod_name.as_str(), e.address.as_str(), e.health_failure.as_str()))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("pod-a", a.as_str(), ""),
            ("pod-b", b.as_str(), ""),
            ("pod-c", c.as_str(), "")
        ]
    );
    assert_eq!(gateway.gateway.hub.snapshot().total_requests, 0, "no request was sent");

    // Checks that pass change nothing shown: no event per check (once the
    // namings' events, published concurrently, have all arrived)...
    let mut settling = 0;
    while shown.next_change(INTERVAL).await.is_some() {
        settling += 1;
        assert!(settling < 3, "endpoint events go on: {:#?}", shown.current);
    }
    assert_eq!(shown.next_change(INTERVAL * 5).await, None, "15 checks passed");
    // ...but a snapshot carries the last check's time.
    let snapshot = gateway.gateway.hub.snapshot().endpoints;
    assert!(snapshot.iter().all(|e| e.health_checked_unix_us > 0), "{snapshot:#?}");

    servers[1].signal("-KILL");
    let killed = shown
        .until(INTERVAL * 10, "pod-b's checks refused", |endpoints| {
            at(endpoints, b).health_failure == "connection refused"
        })
        .await;
    let killed = at(&killed, b);
    assert!(killed.health_failing_since_unix_us > 0, "{killed:?}");
    assert!(
        killed.health_checked_unix_us >= killed.health_failing_since_unix_us,
        "{killed:?}"
    );
    assert_eq!(killed.pod_name, "pod-b", "a name once learnt stays");
    let metrics = RestClient::new(format!("http://{}", gateway.rest_addr))
        .send(Method::GET, "/metrics", None, "")
        .await
        .unwrap()
        .body;
    assert!(
        metrics.lines().any(|line| line == "greet_gateway_failing_endpoints 1"),
        "{metrics}"
    );

    servers[2].signal("-STOP");
    while at(&shown.current, c).health_failure.is_empty() {
        let change = shown.next_change(INTERVAL * 10).await;
        assert!(change.is_some(), "pod-c's checks unanswered within 2s");
    }
    assert_eq!(
        at(&shown.current, c).health_failure,
        "no answer within 200ms",
        "the first failure of a hung pod says so"
    );
    servers[2].signal("-CONT");
    let continued = shown
        .until(INTERVAL * 10, "pod-c's checks answered again", |endpoints| {
            at(endpoints, c).health_failure.is_empty()
        })
        .await;
    let continued = at(&continued, c);
    assert_eq!(continued.health_failing_since_unix_us, 0, "{continued:?}");
    assert!(continued.health_checked_unix_us > 0, "{continued:?}");
    assert_eq!(
        at(&shown.current, a).health_failure,
        "",
        "the pinned endpoint stayed up throughout"
    );
    gateway.shutdown().await.unwrap();
}

/// A sticky request through each front door, in flight to a pod that never
/// answers while the mode switches to balanced, fails after the switch:
/// counted in its pod's requests and errors, and as carried over. A
/// request begun after the switch is not carried over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_across_a_mode_switch_are_counted_as_carried_over() {
    let hung = serve(pod("hung-pod", true)).await.to_string();
    let live = serve(pod("live-pod", false)).await.to_string();
    let set = vec![EndpointInfo::ready(live.clone())];
    let gateway = sticky_gateway(
        hung.clone(),
        discovery::static_endpoints(set),
        Duration::from_millis(800),
    )
    .await;
    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    let mut grpc = GreetServiceClient::connect(format!("http://{}", gateway.grpc_addr))
        .await
        .unwrap();
    let rest_call = tokio::spawn(async move { rest.greet("Ada", "Lovelace").await.unwrap().status });
    let grpc_call = tokio::spawn(async move {
        let mut request = tonic::Request::new(greeting());
        request.set_timeout(Duration::from_millis(800));
        grpc.greet(request).await.map(|_| ()).map_err(|status| status.code())
    });
    // Both are in flight on the sticky connections before the switch.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let in_flight: u64 = gateway
            .gateway
            .upstream
            .gauges(Instant::now())
            .iter()
            .filter(|g| g.endpoint == hung)
            .map(|g| g.in_flight)
            .sum();
        if in_flight == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the two sticky requests in flight");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gateway.gateway.upstream.set_mode(Mode::Balanced).await;
    assert_eq!(rest_call.await.unwrap(), 504);
    assert!(grpc_call.await.unwrap().is_err());

    let rest = RestClient::new(format!("http://{}", gateway.rest_addr));
    assert_eq!(rest.greet("Ada", "Lovelace").await.unwrap().status, 200);
    // The ingress's failed call is published when the gateway's side ends,
    // which may be just after the client's.
    let deadline = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let summary = gateway.gateway.hub.build_summary(Duration::from_millis(250));
        let rows: Vec<(String, u64, u64, u64, u64)> = summary
            .pods
            .iter()
            .filter(|p| p.requests > 0)
            .map(|p| {
                let who = if p.pod_name.is_empty() {
                    &p.endpoint
                } else {
                    &p.pod_name
                };
                (
                    who.clone(),
                    p.requests,
                    p.errors,
                    p.carried_over_requests,
                    p.carried_over_errors,
                )
            })
            .collect();
        if rows.iter().map(|r| r.1).sum::<u64>() == 3 || Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        rows,
        [(hung.clone(), 2, 2, 2, 2), ("live-pod".to_owned(), 1, 0, 0, 0)],
        "the hung pod never answered, so its failures name its address"
    );
    gateway.shutdown().await.unwrap();
}
