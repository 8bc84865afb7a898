use super::*;

fn pod(name: &str, ip: &str, hits: u64, share: f64, p50_ms: Option<f64>) -> PodReport {
    PodReport {
        kind: "pod",
        name: name.into(),
        ip: ip.into(),
        ready: true,
        readiness: "yes",
        gone: false,
        skipped: None,
        down: None,
        hits,
        errors: 0,
        success_rate: (hits > 0).then_some(1.0),
        errors_by_code: BTreeMap::new(),
        share,
        rps: hits as f64 / 5.0,
        p50_ms,
        p99_ms: p50_ms.map(|p| p * 2.0),
        phase: None,
        restarts: None,
        node: None,
        url: None,
        family: None,
        methods: BTreeMap::new(),
    }
}

fn report() -> Report {
    let mut gone = pod("greetserver-demo-c", "127.0.0.13", 0, 0.0, None);
    gone.gone = true;
    gone.readiness = "gone";
    let mut failing = pod("greetserver-demo-b", "127.0.0.12", 83, 83.0 / 252.0, Some(0.415));
    failing.errors = 5;
    failing.ready = false;
    failing.readiness = "skip";
    failing.skipped = Some("connection refused".into());
    failing.success_rate = Some(0.9375);
    failing.errors_by_code = [("UNAVAILABLE", 5)].into();
    Report {
        at: "2026-11-28T12:00:00Z".into(),
        gateways: vec!["http://127.0.0.1:9092".into()],
        window: "over the last 5 s".into(),
        state: "EVEN",
        diagnosis: "EVEN: 2 pods, fairness 0.90 over the last 5 s".into(),
        verdict: Verdict::Even,
        errors: 5,
        client_errors: 0,
        fairness: Some(0.9),
        mode: Some(Mode::Balanced),
        unknown_mode: None,
        total: 252,
        unattributed: 1,
        refused: BTreeMap::new(),
        pods: vec![
            pod("greetserver-demo-a", "127.0.0.11", 168, 2.0 / 3.0, Some(0.43)),
            failing,
            gone,
        ],
    }
}

#[test]
fn the_table_has_a_row_per_pod() {
    assert_eq!(
        report().to_table(Duration::from_secs(5)),
        "mode: balanced   total: 252   observed: 5.0s   fairness: 0.90 over the last 5 s   at: 2026-11-28T12:00:00Z   gateway: http://127.0.0.1:9092\n\
         EVEN: 2 pods, fairness 0.90 over the last 5 s\n\
         failed requests naming no pod: 1\n\
         POD                 IP               READY     HITS     ERR   SHARE      RPS   P50 ms   P99 ms\n\
         greetserver-demo-a  127.0.0.11       yes        168       0   66.7%     33.6     0.43     0.86\n\
         greetserver-demo-b  127.0.0.12       skip        83       5   32.9%     16.6     0.41     0.83\n\
         greetserver-demo-c  127.0.0.13       gone         0       0    0.0%      0.0        -        -\n"
    );
}

#[test]
fn markdown_pastes_as_a_table_with_the_verdict_quoted() {
    let mut report = report();
    report.pods[0].name = "evil|pod".into();
    assert_eq!(
        report.to_markdown(Duration::from_secs(5)),
        "**greet-top** · mode **balanced** · 252 requests, 5 failed · observed 5.0 s · fairness 0.90 over the last 5 s · \
         2026-11-28T12:00:00Z · `http://127.0.0.1:9092`\n\n\
         > EVEN: 2 pods, fairness 0.90 over the last 5 s\n\n\
         | pod | IP | ready | hits | errors | share | rps | p50 ms | p99 ms |\n\
         |---|---|---|---:|---:|---:|---:|---:|---:|\n\
         | evil\\|pod | 127.0.0.11 | yes | 168 | 0 | 66.7% | 33.6 | 0.43 | 0.86 |\n\
         | greetserver-demo-b | 127.0.0.12 | skip | 83 | 5 | 32.9% | 16.6 | 0.41 | 0.83 |\n\
         | greetserver-demo-c | 127.0.0.13 | gone | 0 | 0 | 0.0% | 0.0 | - | - |\n"
    );
}

#[test]
fn fail_on_conditions_read_the_report() {
    let on = |spec: &str| spec.parse::<FailOn>().unwrap();
    let mut report = report();
    assert_eq!(
        on("errors").holds(&report).as_deref(),
        Some("5 of 252 requests failed (client errors not counted)")
    );
    assert_eq!(on("errors>5").holds(&report), None);
    assert_eq!(
        on("errors>1%").holds(&report).as_deref(),
        Some("5 of 252 requests failed, 1.98 % (client errors not counted)")
    );
    assert_eq!(on("errors>2%").holds(&report), None);
    assert_eq!(
        on("skipped").holds(&report).as_deref(),
        Some("greetserver-demo-b is skipped: connection refused")
    );
    assert_eq!(on("p99>0.86ms").holds(&report), None);
    assert_eq!(
        on("p99>850us").holds(&report).as_deref(),
        Some("greetserver-demo-a's p99 is 0.86 ms")
    );
    assert_eq!(on("fairness<0.9").holds(&report), None);
    assert_eq!(
        on("fairness<0.95").holds(&report).as_deref(),
        Some("fairness 0.90 over the last 5 s")
    );
    assert_eq!(on("stuck").holds(&report), None);
    report.verdict = Verdict::Stuck;
    assert_eq!(on("stuck").holds(&report), Some(report.diagnosis.clone()));
    report.verdict = Verdict::Uneven;
    assert!(on("stuck").holds(&report).is_some());
    // Client errors (a method that does not exist) are not a pod failing.
    report.client_errors = 5;
    assert_eq!(on("errors").holds(&report), None);
    report.errors = 0;
    report.pods.iter_mut().for_each(|p| p.skipped = None);
    assert_eq!(on("skipped").holds(&report), None);
    let matched = FailOnMatched {
        condition: on("p99>50ms"),
        reason: "greetserver-demo-a's p99 is 71.30 ms".into(),
    };
    assert_eq!(
        matched.to_string(),
        "--fail-on p99>50ms: greetserver-demo-a's p99 is 71.30 ms"
    );
}

#[test]
fn json_has_null_latencies_for_silent_pods_and_no_kube_fields_without_kube() {
    let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    assert_eq!(json["mode"], "balanced");
    assert_eq!(json["diagnosis"], "EVEN: 2 pods, fairness 0.90 over the last 5 s");
    assert_eq!(
        (json["fairness"].as_f64(), json["at"].as_str()),
        (Some(0.9), Some("2026-11-28T12:00:00Z"))
    );
    assert_eq!(json["gateways"][0], "http://127.0.0.1:9092");
    assert_eq!(json["unattributed"], 1);
    assert_eq!(json["pods"].as_array().map(Vec::len), Some(3));
    assert_eq!(json["pods"][0]["hits"], 168);
    assert!(json["pods"][2]["p50_ms"].is_null());
    assert!(json["pods"][2].get("p50_ms").is_some(), "present, as null");
    assert!(json["pods"][0].get("phase").is_none());
    assert_eq!(
        (
            json["pods"][1]["errors"].as_u64(),
            json["pods"][1]["success_rate"].as_f64()
        ),
        (Some(5), Some(0.9375))
    );
    assert!(json["pods"][2]["success_rate"].is_null(), "no hits, no rate");
    assert_eq!(json["pods"][1]["skipped"], "connection refused");
    assert_eq!(json["pods"][1]["errors_by_code"]["UNAVAILABLE"], 5);
    assert!(json["pods"][0].get("errors_by_code").is_none(), "only with errors");
    assert!(json["pods"][0].get("skipped").is_none(), "only when skipped");
}

#[test]
fn gateways_that_refuse_greet_top_are_in_the_table_and_the_json() {
    use std::time::Instant;

    use crate::state::{AppEvent, GatewayEvent, Refusal, Snapshot};

    let t0 = Instant::now();
    let mut app = App::new("two", t0);
    let snapshot = GatewayEvent::Snapshot(Snapshot {
        mode: Some(Mode::Balanced),
        ..Snapshot::default()
    });
    app.update(
        AppEvent::Gateway {
            gateway: "gw-1".into(),
            event: snapshot,
        },
        t0,
    );
    app.update(
        AppEvent::Refused {
            gateway: "gw-2".into(),
            refusal: Refusal::NoToken,
            retry_in: Duration::from_secs(1),
        },
        t0,
    );
    let report = build(&app, Duration::from_secs(1));
    let why = "refused: the gateway wants a token — start greet-top with --token or GREET_TOP_TOKEN";
    assert_eq!(report.refused, BTreeMap::from([("gw-2".to_owned(), why.to_owned())]));
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["refused"]["gw-2"], why);
    let table = report.to_table(Duration::from_secs(1));
    assert_eq!(table.lines().nth(2), Some(format!("gw-2 {why}").as_str()), "{table}");
    // Without a refusal the JSON has no such field.
    let json: serde_json::Value = serde_json::from_str(&super::tests::report().to_json()).unwrap();
    assert!(json.get("refused").is_none());
}

#[test]
fn every_format_names_the_least_loaded_mode_as_the_gateway_spells_it() {
    let least_loaded = Report {
        mode: Some(Mode::LeastLoaded),
        ..report()
    };
    let observed = Duration::from_secs(5);
    assert!(
        least_loaded
            .to_table(observed)
            .starts_with("mode: least-loaded   total: 252")
    );
    assert!(
        least_loaded
            .to_markdown(observed)
            .starts_with("**greet-top** · mode **least-loaded** ·")
    );
    let json: serde_json::Value = serde_json::from_str(&least_loaded.to_json()).unwrap();
    assert_eq!(json["mode"], "least-loaded");
    assert!(json.get("unknown_mode").is_none());
    // A newer gateway's mode: by its number.
    let newer = Report {
        mode: None,
        unknown_mode: Some(7),
        ..report()
    };
    assert!(newer.to_table(observed).starts_with("mode: mode 7   total: 252"));
    let json: serde_json::Value = serde_json::from_str(&newer.to_json()).unwrap();
    assert_eq!(
        (&json["mode"], &json["unknown_mode"]),
        (&serde_json::Value::Null, &serde_json::json!(7))
    );
}

#[test]
fn calls_through_the_grpc_ingress_are_listed_by_method_and_pod() {
    let mut report = report();
    let counts = |hits, errors| MethodReport { hits, errors };
    report.pods[0].methods = [
        ("/greet.GreetService/Greet".to_owned(), counts(100, 0)),
        ("POST /greet".to_owned(), counts(68, 0)),
    ]
    .into();
    report.pods[1].methods = [("/greet.GreetService/Greet".to_owned(), counts(83, 5))].into();
    let table = report.to_table(Duration::from_secs(5));
    let methods = &table[table.find("\nMETHOD").unwrap() + 1..];
    assert_eq!(
        methods,
        "METHOD                     POD                    HITS     ERR\n\
         /greet.GreetService/Greet  greetserver-demo-a      100       0\n\
         /greet.GreetService/Greet  greetserver-demo-b       83       5\n\
         POST /greet                greetserver-demo-a       68       0\n"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(
        json["pods"][1]["methods"],
        serde_json::json!({"/greet.GreetService/Greet": {"hits": 83, "errors": 5}})
    );
    assert!(json["pods"][2].get("methods").is_none(), "none without ingress calls");
}

#[test]
fn every_format_names_the_dns_mode() {
    let dns = Report {
        mode: Some(Mode::Dns),
        ..report()
    };
    let observed = Duration::from_secs(5);
    assert!(dns.to_table(observed).starts_with("mode: dns   total: 252"));
    assert!(dns.to_markdown(observed).starts_with("**greet-top** · mode **dns** ·"));
    let json: serde_json::Value = serde_json::from_str(&dns.to_json()).unwrap();
    assert_eq!(json["mode"], "dns");
    assert!(json.get("unknown_mode").is_none());
}

#[test]
fn the_report_drops_key_hints_and_names_its_state_and_each_rows_kind() {
    assert_eq!(Verdict::Stuck.label(), "STUCK");
    assert_eq!(Verdict::Steered.label(), "UNEVEN_ON_PURPOSE");
    assert_eq!(Verdict::PartlyDown.label(), "PARTLY_DOWN");
    let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    assert_eq!(json["state"], "EVEN");
    let kinds: Vec<&str> = json["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pod", "pod", "pod"]);
}

#[test]
fn the_total_and_the_verdicts_counts_are_one_count_over_the_whole_observation() {
    use crate::state::{AppEvent, GatewayEvent, PodInfo, Request, Snapshot};

    let gw = |event| AppEvent::Gateway {
        gateway: "gw".into(),
        event,
    };

    // 15 s observed (longer than the dashboard's 10-s window): 10 requests a
    // second over three pods, pod-c failing every request of its share.
    let t0 = Instant::now() - Duration::from_secs(15);
    let mut app = App::new("gw", t0).counting_from_now().over_everything_counted();
    let pods = [
        ("pod-a", "10.0.0.1", 0),
        ("pod-b", "10.0.0.2", 0),
        ("pod-c", "10.0.0.3", 0),
    ];
    let snapshot = Snapshot {
        mode: Some(Mode::Balanced),
        started_unix_us: 1,
        endpoints: pods
            .iter()
            .map(|(name, ip, _)| PodInfo {
                name: (*name).into(),
                ip: (*ip).into(),
                ready: true,
                ..PodInfo::default()
            })
            .collect(),
        ..Snapshot::default()
    };
    app.update(gw(GatewayEvent::Snapshot(snapshot)), t0);
    for seq in 1..=150u64 {
        let (name, ip, _) = pods[(seq % 3) as usize];
        let failed = name == "pod-c";
        let request = Request {
            seq,
            name: name.into(),
            ip: ip.into(),
            endpoint: format!("{ip}:50051"),
            mode: Some(Mode::Balanced),
            latency_us: 500,
            grpc_code: if failed { 14 } else { 0 },
            error: if failed {
                "connection refused".into()
            } else {
                String::new()
            },
        };
        app.update(
            gw(GatewayEvent::Request(request)),
            t0 + Duration::from_millis(100 * seq - 50),
        );
    }
    let report = build(&app, Duration::from_secs(15));
    assert_eq!((report.total, report.errors), (150, 50));
    assert_eq!(report.window, "over the last 15 s");
    assert_eq!(report.state, "FAILING");
    assert!(
        report
            .diagnosis
            .starts_with("FAILING: 50 of 150 requests failed over the last 15 s"),
        "{}",
        report.diagnosis
    );
    assert_eq!(report.pods.iter().map(|p| p.hits).sum::<u64>(), 150);
    let readiness: Vec<(&str, &str, bool)> = report
        .pods
        .iter()
        .map(|p| (p.name.as_str(), p.readiness, p.ready))
        .collect();
    assert_eq!(
        readiness,
        [
            ("pod-a", "yes", true),
            ("pod-b", "yes", true),
            ("pod-c", "failing", false)
        ],
        "a pod whose every request failed is never ready"
    );
    let table = report.to_table(Duration::from_secs(15));
    assert!(
        table.starts_with("mode: balanced   total: 150   observed: 15.0s   fairness: 1.00 over the last 15 s"),
        "{table}"
    );
}

#[test]
fn client_errors_split_a_pods_uncoded_failures_like_its_coded_ones() {
    let mut a = pod("a", "10.0.0.1", 100, 0.5, None);
    a.errors = 24;
    a.errors_by_code = [("UNIMPLEMENTED", 23)].into();
    let mut b = pod("b", "10.0.0.2", 100, 0.5, None);
    b.errors = 10;
    b.errors_by_code = [("UNAVAILABLE", 4), ("NOT_FOUND", 4)].into();
    let mut c = pod("c", "10.0.0.3", 10, 0.0, None);
    c.errors = 3;
    // a: 23 + the uncoded 1; b: 4 + half of the uncoded 2; c: nothing coded, no client error known.
    assert_eq!(client_errors(&[a, b, c]), 24 + 5);
}

mod down;
