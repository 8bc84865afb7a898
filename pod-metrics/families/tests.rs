use std::collections::BTreeMap;

use greet_proto::latency_buckets::BUCKETS;

use super::*;
use crate::counters::PodCounters;
use crate::histogram::spread_into;
use crate::parse::MAX_SAMPLES;
use crate::reading::Totals;

/// What a pod reported over its lifetime, read from `body`.
fn lifetime(body: &[u8]) -> (Family, Totals) {
    let read = read(body, MAX_SAMPLES);
    let observed = read.observed.expect("a gRPC family");
    let mut counters = PodCounters::lifetime();
    counters.apply(&observed);
    (observed.family, counters.totals().clone())
}

/// Log-linear buckets for histograms given as `(le in µs, own calls)` each.
fn latency(histograms: &[&[(f64, u64)]]) -> Option<Vec<u64>> {
    let mut into = vec![0; BUCKETS];
    for h in histograms {
        spread_into(&mut into, h);
    }
    Some(into)
}

fn methods(list: &[(&str, u64, u64)]) -> BTreeMap<String, (u64, u64)> {
    list.iter().map(|&(m, r, e)| (m.to_owned(), (r, e))).collect()
}

const MS: f64 = 1_000.0;

#[test]
fn greet_server_openmetrics() {
    let (family, totals) = lifetime(include_bytes!("../tests/fixtures/greet_server.om"));
    assert_eq!(family, Family::GrpcPrometheus);
    assert_eq!(
        totals,
        Totals {
            // Health checks (3) and the health Watch are not the workload's traffic.
            requests: 13,
            errors: 3,
            error_codes: BTreeMap::from([(1, 1), (3, 2)]),
            methods: methods(&[("/greet.GreetService/Greet", 13, 3)]),
            latency_buckets: latency(&[&[(5.0 * MS, 12), (10.0 * MS, 1)]]),
            // Greet 14 started, 13 handled.
            in_flight: Some(1),
        }
    );
}

#[test]
fn py_grpc_prometheus_text_with_created_gauges() {
    let (family, totals) = lifetime(include_bytes!("../tests/fixtures/py_grpc_prometheus.prom"));
    assert_eq!(family, Family::GrpcPrometheus);
    assert_eq!(
        totals,
        Totals {
            requests: 6,
            errors: 1,
            error_codes: BTreeMap::from([(3, 1)]),
            methods: methods(&[("/greet.GreetService/Greet", 6, 1)]),
            latency_buckets: latency(&[&[(10.0 * MS, 0), (25.0 * MS, 1), (50.0 * MS, 0), (75.0 * MS, 5)]]),
            in_flight: Some(0),
        }
    );
}

#[test]
fn py_grpc_prometheus_legacy_labels() {
    let (family, totals) = lifetime(include_bytes!("../tests/fixtures/py_legacy.prom"));
    assert_eq!(family, Family::GrpcPrometheus);
    assert_eq!(
        totals,
        Totals {
            requests: 4,
            errors: 1,
            error_codes: BTreeMap::from([(14, 1)]),
            methods: methods(&[("/greet.GreetService/Greet", 4, 1)]),
            latency_buckets: latency(&[&[(5.0 * MS, 2), (10.0 * MS, 2)]]),
            in_flight: Some(0),
        }
    );
}

#[test]
fn otel_old_milliseconds_with_numeric_codes_summed_over_scopes() {
    let (family, totals) = lifetime(include_bytes!("../tests/fixtures/otel_old.prom"));
    assert_eq!(family, Family::OtelRpcDuration);
    assert_eq!(
        totals,
        Totals {
            requests: 12,
            errors: 3,
            error_codes: BTreeMap::from([(3, 2), (14, 1)]),
            methods: methods(&[("/greet.GreetService/Greet", 12, 3)]),
            latency_buckets: latency(&[
                &[(0.0, 0), (5.0 * MS, 7), (10.0 * MS, 1)],
                &[(0.0, 0), (5.0 * MS, 2)],
                &[(0.0, 0), (5.0 * MS, 1)],
                &[(0.0, 0), (10_000.0 * MS, 0), (f64::INFINITY, 1)],
            ]),
            in_flight: None,
        }
    );
}

#[test]
fn otel_new_seconds_with_both_status_label_names() {
    let body = include_bytes!("../tests/fixtures/otel_new.om");
    let (family, totals) = lifetime(body);
    assert_eq!(family, Family::OtelRpcCallDuration);
    assert_eq!(
        totals,
        Totals {
            // The failed health check is not the workload's traffic.
            requests: 43,
            errors: 1,
            error_codes: BTreeMap::from([(4, 1)]),
            methods: methods(&[("/greet.GreetService/Greet", 43, 1)]),
            latency_buckets: latency(&[
                &[(5.0 * MS, 40)],
                &[(5.0 * MS, 0), (750.0 * MS, 0), (1_000.0 * MS, 1)],
                &[(5.0 * MS, 2)],
            ]),
            in_flight: None,
        }
    );
    assert_eq!(pod_name_hint(body).as_deref(), Some("greetserver-7d9f-x2"));
}

#[test]
fn prefers_grpc_prometheus_then_the_newer_otel() {
    let grpc = "grpc_server_handled_total{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"OK\"} 1\n";
    let new = "rpc_server_call_duration_seconds_count{rpc_method=\"s/m\",rpc_response_status_code=\"OK\"} 2\n";
    let old =
        "rpc_server_duration_milliseconds_count{rpc_service=\"s\",rpc_method=\"m\",rpc_grpc_status_code=\"0\"} 3\n";
    let family = |body: String| read(body.as_bytes(), MAX_SAMPLES).observed.map(|o| o.family);
    assert_eq!(family(format!("{old}{new}{grpc}")), Some(Family::GrpcPrometheus));
    assert_eq!(family(format!("{old}{new}")), Some(Family::OtelRpcCallDuration));
    assert_eq!(family(old.to_owned()), Some(Family::OtelRpcDuration));
    // Declared only (py-grpc-prometheus before its first call) is present,
    // but a family with samples wins.
    let declared = "# TYPE grpc_server_handled_total counter\n";
    assert_eq!(family(declared.to_owned()), Some(Family::GrpcPrometheus));
    assert_eq!(family(format!("{declared}{old}")), Some(Family::OtelRpcDuration));
    assert_eq!(family("process_cpu_seconds_total 1\n".to_owned()), None);
}

#[test]
fn a_declared_family_without_series_reads_as_zero() {
    let (family, totals) = lifetime(b"# HELP grpc_server_handled_total x\n# TYPE grpc_server_handled_total counter\n");
    assert_eq!(family, Family::GrpcPrometheus);
    assert_eq!(totals, Totals::default());
}

#[test]
fn method_names_are_sanitised_and_cut() {
    let long = "M".repeat(300);
    let body = format!(
        "grpc_server_handled_total{{grpc_service=\"s\\n\u{1b}[2J\",grpc_method=\"Gr\u{7}eet\",grpc_code=\"OK\"}} 1\n\
         grpc_server_handled_total{{grpc_service=\"s\",grpc_method=\"{long}\",grpc_code=\"OK\"}} 1\n"
    );
    let (_, totals) = lifetime(body.as_bytes());
    let names: Vec<&String> = totals.methods.keys().collect();
    let cut = format!("/s/{}…", "M".repeat(96));
    assert_eq!(names, [&cut, &"/s[2J/Greet".to_owned()]);
}

#[test]
fn pod_name_hints_come_from_target_info_or_pod_labels() {
    assert_eq!(
        pod_name_hint("target_info{k8s_pod_name=\"p-1\u{1b}\"} 1\n".as_bytes()).as_deref(),
        Some("p-1")
    );
    let body = b"grpc_server_handled_total{pod=\"p-2\",grpc_code=\"OK\"} 1\n";
    assert_eq!(pod_name_hint(body).as_deref(), Some("p-2"));
    let body = b"rpc_server_duration_milliseconds_count{pod_name=\"p-3\"} 1\n";
    assert_eq!(pod_name_hint(body).as_deref(), Some("p-3"));
    // target_info wins wherever it is; other metrics' pod labels do not count.
    let body = b"grpc_server_handled_total{pod=\"p-2\"} 1\nup{pod=\"x\"} 1\ntarget_info{k8s_pod_name=\"p-1\"} 1\n";
    assert_eq!(pod_name_hint(body).as_deref(), Some("p-1"));
    assert_eq!(pod_name_hint(b"up{pod=\"x\"} 1\n"), None);
    assert_eq!(pod_name_hint(b"target_info{k8s_pod_name=\"\"} 1\n"), None);
}

#[test]
fn unknown_codes_count_as_unknown_and_missing_otel_status_follows_error_type() {
    let body = b"grpc_server_handled_total{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"Bogus\"} 1\n\
grpc_server_handled_total{grpc_service=\"s\",grpc_method=\"m\"} 1\n\
grpc_server_handled_total{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"99\"} 1\n";
    let (_, totals) = lifetime(body);
    assert_eq!(totals.error_codes, BTreeMap::from([(2, 3)]));
    let body = b"rpc_server_call_duration_seconds_count{rpc_method=\"s/m\",error_type=\"x\"} 1\n\
rpc_server_call_duration_seconds_count{rpc_method=\"s/n\"} 2\n\
rpc_server_call_duration_seconds_count{rpc_method=\"_OTHER\",rpc_method_original=\"s/o\",rpc_response_status_code=\"UNIMPLEMENTED\"} 3\n";
    let (_, totals) = lifetime(body);
    assert_eq!(totals.error_codes, BTreeMap::from([(2, 1), (12, 3)]));
    assert_eq!(
        totals.methods,
        methods(&[("/s/m", 1, 1), ("/s/n", 2, 0), ("/s/o", 3, 3)])
    );
}

#[test]
fn only_health_and_reflection_are_left_out_not_every_grpc_service() {
    let body = "grpc_server_handled_total{grpc_service=\"grpc.testing.TestService\",grpc_method=\"UnaryCall\",grpc_code=\"OK\"} 7\n\
                grpc_server_handled_total{grpc_service=\"grpc.health.v1.Health\",grpc_method=\"Check\",grpc_code=\"OK\"} 5\n\
                rpc_server_call_duration_seconds_count{rpc_method=\"grpc.reflection.v1.ServerReflection/ServerReflectionInfo\",rpc_response_status_code=\"OK\"} 3\n";
    let (_, totals) = lifetime(body.as_bytes());
    assert_eq!(totals.requests, 7);
    assert_eq!(
        totals.methods,
        methods(&[("/grpc.testing.TestService/UnaryCall", 7, 0)])
    );
}
