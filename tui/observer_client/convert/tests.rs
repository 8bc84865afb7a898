use super::*;

fn gateway_event_raw(kind: event::Kind) -> GatewayEvent {
    gateway_event(kind, false)
}

fn request(pod_name: &str, pod_ip: &str, endpoint: &str) -> event::Kind {
    event::Kind::Request(observe::RequestEvent {
        seq: 7,
        pod_name: pod_name.into(),
        pod_ip: pod_ip.into(),
        endpoint: endpoint.into(),
        mode: observe::Mode::Balanced as i32,
        latency_us: 100,
        grpc_code: 14,
        error: "bad\u{1b}[2J news".into(),
        ..observe::RequestEvent::default()
    })
}

#[test]
fn requests_are_converted_with_their_text_sanitised() {
    assert_eq!(
        gateway_event_raw(request("evil\u{1b}]0;pwned\u{7}", "10.0.0.7", "10.0.0.7:50051")),
        GatewayEvent::Request(Request {
            seq: 7,
            name: "evil]0;pwned".into(),
            ip: "10.0.0.7".into(),
            endpoint: "10.0.0.7:50051".into(),
            mode: Some(Mode::Balanced),
            latency_us: 100,
            grpc_code: 14,
            error: "bad[2J news".into(),
        })
    );
    let GatewayEvent::Request(long) = gateway_event_raw(request(&"p".repeat(300), "", "")) else {
        panic!("not a request");
    };
    assert_eq!(long.name, format!("{}…", "p".repeat(network_text::MAX_NAME - 1)));
    assert_eq!(long.ip, "", "no pod address: nothing names a pod");
}

#[test]
fn the_ip_comes_from_the_endpoint_address_when_pod_ip_is_empty() {
    let GatewayEvent::Request(request) = gateway_event_raw(request("", "", "[fd00::9]:50051")) else {
        panic!("not a request");
    };
    assert_eq!(request.ip, "fd00::9");
    let snapshot = gateway_event_raw(event::Kind::Snapshot(observe::State {
        mode: observe::Mode::Sticky as i32,
        last_seq: 3,
        endpoints: vec![observe::Endpoint {
            address: "10.0.0.9:50051".into(),
            pod_name: String::new(),
            ready: true,
            ..Default::default()
        }],
        pods: vec![observe::PodTotals {
            pod_name: "pod-a".into(),
            endpoint: "10.0.0.1:50051".into(),
            requests: 5,
            errors: 1,
            methods: vec![observe::MethodCount {
                method: "/a.S/M".into(),
                requests: 5,
                errors: 1,
            }],
            ..observe::PodTotals::default()
        }],
        ..observe::State::default()
    }));
    assert_eq!(
        snapshot,
        GatewayEvent::Snapshot(Snapshot {
            mode: Some(Mode::Sticky),
            unknown_mode: None,
            started_unix_us: 0,
            sticky_target: String::new(),
            last_seq: 3,
            endpoints: vec![PodInfo {
                // Named by its address until a reply names it.
                name: "10.0.0.9:50051".into(),
                ip: "10.0.0.9".into(),
                endpoint: "10.0.0.9:50051".into(),
                ready: true,
                ..PodInfo::default()
            }],
            pods: vec![PodTotals {
                name: "pod-a".into(),
                ip: "10.0.0.1".into(),
                endpoint: "10.0.0.1:50051".into(),
                requests: 5,
                errors: 1,
                methods: [("/a.S/M".into(), Tally { requests: 5, errors: 1 })].into(),
                ..PodTotals::default()
            }],
        })
    );
}

#[test]
fn unknown_modes_become_none_and_lag_is_kept() {
    let change = observe::ModeChanged {
        seq: 4,
        mode: 99,
        ..observe::ModeChanged::default()
    };
    assert_eq!(
        gateway_event_raw(event::Kind::ModeChanged(change)),
        GatewayEvent::ModeChanged {
            seq: 4,
            mode: None,
            unknown: Some(99)
        }
    );
    assert_eq!(
        gateway_event_raw(event::Kind::Lagged(observe::Lagged { dropped: 12 })),
        GatewayEvent::Lagged { dropped: 12 }
    );
    let endpoints = observe::EndpointsChanged {
        seq: 5,
        endpoints: vec![observe::Endpoint {
            address: "10.0.0.2:50051".into(),
            pod_name: "pod\u{7}-b".into(),
            ready: false,
            health_failure: "connection\u{1b}[2J refused".into(),
            health_checked_unix_us: 9,
            health_failing_since_unix_us: 3,
            ..Default::default()
        }],
        ..observe::EndpointsChanged::default()
    };
    assert_eq!(
        gateway_event_raw(event::Kind::EndpointsChanged(endpoints)),
        GatewayEvent::EndpointsChanged {
            seq: 5,
            endpoints: vec![PodInfo {
                name: "pod-b".into(),
                ip: "10.0.0.2".into(),
                endpoint: "10.0.0.2:50051".into(),
                ready: false,
                down: Some("connection[2J refused".into()),
                ..PodInfo::default()
            }],
        }
    );
}

#[test]
fn summaries_become_cumulative_totals_and_requests_in_them_samples() {
    let summary = observe::Summary {
        pods: vec![observe::PodSummary {
            pod_name: "pod\u{1b}[31m-a".into(),
            endpoint: "10.0.0.1:50051".into(),
            requests: 40,
            errors: 3,
            latency_buckets: vec![1; latency_buckets::BUCKETS + 5],
            error_codes: [(14, 2), (4, 1), (99, 5)]
                .map(|(code, count)| observe::CodeCount { code, count })
                .to_vec(),
            methods: vec![
                observe::MethodCount {
                    method: String::new(),
                    requests: 10,
                    errors: 0,
                },
                observe::MethodCount {
                    method: "/a.S/M\u{1b}[2J".into(),
                    requests: 30,
                    errors: 3,
                },
            ],
            in_flight: 2,
            oldest_in_flight_us: 1_500,
            connections: 1,
            carried_over_requests: 7,
            carried_over_errors: 2,
            ..observe::PodSummary::default()
        }],
        ..observe::Summary::default()
    };
    assert_eq!(
        gateway_event(event::Kind::Summary(summary), true),
        GatewayEvent::Summary(vec![PodTotals {
            name: "pod[31m-a".into(),
            ip: "10.0.0.1".into(),
            endpoint: "10.0.0.1:50051".into(),
            requests: 40,
            errors: 3,
            // Cut to the fixed buckets: more come from no gateway that follows the proto.
            latency_buckets: Some(vec![1; latency_buckets::BUCKETS]),
            error_codes: [(14, 2), (4, 1)].into(),
            methods: [
                (
                    String::new(),
                    Tally {
                        requests: 10,
                        errors: 0
                    }
                ),
                (
                    "/a.S/M[2J".into(),
                    Tally {
                        requests: 30,
                        errors: 3
                    }
                ),
            ]
            .into(),
            gauges: Some(Gauges {
                in_flight: 2,
                oldest_in_flight_us: 1_500,
                connections: 1,
            }),
            carried_over: Tally { requests: 7, errors: 2 },
        }])
    );
    let GatewayEvent::Sample(sample) = gateway_event(request("pod-a", "", "10.0.0.1:50051"), true) else {
        panic!("a request in a summary subscription is a sample");
    };
    assert_eq!((sample.seq, sample.name.as_str()), (7, "pod-a"));
}

#[test]
fn a_message_keeps_at_most_max_pods() {
    let many = MAX_PODS + 5;
    let endpoints: Vec<observe::Endpoint> = (0..many)
        .map(|i| observe::Endpoint {
            address: format!("10.{}.{}.{}:50051", i >> 16, (i >> 8) & 255, i & 255),
            ..Default::default()
        })
        .collect();
    let pods: Vec<observe::PodTotals> = (0..many)
        .map(|i| observe::PodTotals {
            pod_name: format!("p{i}"),
            ..Default::default()
        })
        .collect();
    let summaries = (0..many)
        .map(|i| observe::PodSummary {
            pod_name: format!("p{i}"),
            ..Default::default()
        })
        .collect();
    let GatewayEvent::Snapshot(snapshot) = gateway_event_raw(event::Kind::Snapshot(observe::State {
        endpoints: endpoints.clone(),
        pods,
        ..Default::default()
    })) else {
        panic!("not a snapshot");
    };
    assert_eq!((snapshot.endpoints.len(), snapshot.pods.len()), (MAX_PODS, MAX_PODS));
    let change = observe::EndpointsChanged {
        endpoints,
        ..Default::default()
    };
    let GatewayEvent::EndpointsChanged { endpoints, .. } = gateway_event_raw(event::Kind::EndpointsChanged(change))
    else {
        panic!("not an endpoint change");
    };
    assert_eq!(endpoints.len(), MAX_PODS);
    let summary = observe::Summary {
        pods: summaries,
        ..Default::default()
    };
    let GatewayEvent::Summary(totals) = gateway_event(event::Kind::Summary(summary), true) else {
        panic!("not a summary");
    };
    assert_eq!(totals.len(), MAX_PODS);
}

#[test]
fn mode_switch_errors_are_sanitised() {
    let AppEvent::ModeSet { gateway, result } = mode_set("gw".into(), Err("gateway unreachable\u{1b}[2J".into()))
    else {
        panic!("not a mode answer");
    };
    assert_eq!(gateway, "gw");
    assert_eq!(result, Err("gateway unreachable[2J".to_owned()));
}

#[test]
fn only_a_ready_terminating_endpoint_is_served_while_terminating() {
    let endpoint = |ready: bool| observe::Endpoint {
        address: "10.0.0.3:50051".into(),
        pod_name: "pod-c".into(),
        ready,
        serving_terminating: true,
        ..Default::default()
    };
    let converted = |ready: bool| {
        let changed = observe::EndpointsChanged {
            seq: 6,
            endpoints: vec![endpoint(ready)],
            ..observe::EndpointsChanged::default()
        };
        match gateway_event_raw(event::Kind::EndpointsChanged(changed)) {
            GatewayEvent::EndpointsChanged { endpoints, .. } => (endpoints[0].ready, endpoints[0].serving_terminating),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(converted(true), (true, true));
    assert_eq!(
        converted(false),
        (false, false),
        "terminating, not routed to: plainly not ready"
    );
}

#[test]
fn discovery_state_comes_with_snapshots_and_endpoint_sets_sanitised() {
    let state = observe::DiscoveryState {
        source: "kube\u{7}".into(),
        failing_since_unix_us: 5,
        last_error: "EndpointSlice watch: refused\u{1b}[2J".into(),
        set_age_ms: 8200,
    };
    let expected = GatewayEvent::Discovery(DiscoveryStatus {
        source: "kube".into(),
        last_error: "EndpointSlice watch: refused[2J".into(),
        failing_since_unix_us: 5,
        set_age: std::time::Duration::from_millis(8200),
    });
    let snapshot = event::Kind::Snapshot(observe::State {
        discovery_state: Some(state.clone()),
        ..observe::State::default()
    });
    assert_eq!(discovery_event(&snapshot), Some(expected.clone()));
    let changed = event::Kind::EndpointsChanged(observe::EndpointsChanged {
        discovery: Some(state),
        ..observe::EndpointsChanged::default()
    });
    assert_eq!(discovery_event(&changed), Some(expected));
    // A gateway built before it sends none.
    let older = event::Kind::EndpointsChanged(observe::EndpointsChanged::default());
    assert_eq!(discovery_event(&older), None);
    assert_eq!(
        discovery_event(&event::Kind::Lagged(observe::Lagged { dropped: 1 })),
        None
    );
}
