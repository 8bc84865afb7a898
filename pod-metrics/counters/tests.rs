use std::collections::BTreeMap;
use std::fmt::Write;

use super::*;
use crate::families::read;
use crate::parse::MAX_SAMPLES;

/// Applies each body in turn to fresh (baselined) counters.
fn scrapes(bodies: &[&str]) -> Totals {
    let mut counters = PodCounters::new();
    for body in bodies {
        let observed = read(body.as_bytes(), MAX_SAMPLES).observed.expect("a gRPC family");
        counters.apply(&observed);
    }
    counters.totals().clone()
}

fn handled(ok: u64, unavailable: u64) -> String {
    format!(
        "grpc_server_handled_total{{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"OK\"}} {ok}\n\
         grpc_server_handled_total{{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"Unavailable\"}} {unavailable}\n"
    )
}

#[test]
fn the_first_scrape_is_the_baseline() {
    let totals = scrapes(&[&handled(1_000, 50)]);
    assert_eq!(totals.requests, 0);
    assert_eq!(totals.methods, BTreeMap::from([("/s/m".to_owned(), (0, 0))]));
    let totals = scrapes(&[&handled(1_000, 50), &handled(1_010, 52)]);
    assert_eq!((totals.requests, totals.errors), (12, 2));
    assert_eq!(totals.error_codes, BTreeMap::from([(14, 2)]));
    assert_eq!(totals.methods, BTreeMap::from([("/s/m".to_owned(), (12, 2))]));
}

#[test]
fn a_counter_that_goes_down_reset_and_counts_its_new_value() {
    // 200 → 50: the pod restarted and has served 50 since.
    let totals = scrapes(&[&handled(100, 0), &handled(200, 0), &handled(50, 0), &handled(60, 0)]);
    assert_eq!(totals.requests, 100 + 50 + 10);
    // Backwards by a little (a broken exporter) is still never negative.
    let totals = scrapes(&[&handled(10, 0), &handled(9, 0)]);
    assert_eq!(totals.requests, 9);
}

#[test]
fn a_series_that_appears_after_the_baseline_counts_from_zero() {
    let first = "grpc_server_handled_total{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"OK\"} 5\n";
    let later = format!(
        "{first}grpc_server_handled_total{{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"INVALID_ARGUMENT\"}} 1\n"
    );
    let totals = scrapes(&[first, &later]);
    assert_eq!((totals.requests, totals.errors), (1, 1));
    assert_eq!(totals.error_codes, BTreeMap::from([(3, 1)]));
}

#[test]
fn histogram_deltas_reset_per_bucket_and_in_flight_is_current() {
    let body = |fast: u64, all: u64, started: u64| {
        format!(
            "grpc_server_started_total{{grpc_service=\"s\",grpc_method=\"m\"}} {started}\n\
             grpc_server_handled_total{{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"OK\"}} {all}\n\
             grpc_server_handling_seconds_bucket{{grpc_service=\"s\",grpc_method=\"m\",le=\"0.005\"}} {fast}\n\
             grpc_server_handling_seconds_bucket{{grpc_service=\"s\",grpc_method=\"m\",le=\"+Inf\"}} {all}\n"
        )
    };
    let totals = scrapes(&[&body(90, 100, 103), &body(95, 110, 111), &body(3, 4, 4)]);
    let latency = totals.latency_buckets.expect("a histogram");
    // 5 + 3 fast calls spread over 0..5 ms; 5 + 1 slow ones pinned at 5 ms.
    let mut expected = vec![0; BUCKETS];
    spread_into(&mut expected, &[(5_000.0, 5), (f64::INFINITY, 5)]);
    spread_into(&mut expected, &[(5_000.0, 3), (f64::INFINITY, 1)]);
    assert_eq!(latency, expected);
    assert_eq!(totals.requests, 14);
    assert_eq!(totals.in_flight, Some(0));
    assert_eq!(scrapes(&[&body(0, 0, 3)]).in_flight, Some(3));
    // Fewer started than handled (py-grpc-prometheus does not count
    // client-streaming starts): clamped at zero, never negative.
    assert_eq!(scrapes(&[&body(0, 5, 3)]).in_flight, Some(0));
}

#[test]
fn series_of_the_same_method_add_up() {
    let body = |a: u64, b: u64| {
        format!(
            "rpc_server_duration_milliseconds_count{{otel_scope_name=\"a\",rpc_service=\"s\",rpc_method=\"m\",rpc_grpc_status_code=\"0\"}} {a}\n\
             rpc_server_duration_milliseconds_count{{otel_scope_name=\"b\",rpc_service=\"s\",rpc_method=\"m\",rpc_grpc_status_code=\"0\"}} {b}\n"
        )
    };
    // Scope a restarts (20 → 5) while b grows: the reset is seen per series.
    let totals = scrapes(&[&body(10, 10), &body(20, 15), &body(5, 30)]);
    assert_eq!(totals.requests, 10 + 5 + 5 + 15);
}

#[test]
fn ten_thousand_methods_stay_bounded() {
    let body = |value: u64| {
        let mut body = String::new();
        for i in 0..10_000 {
            let _ = writeln!(
                body,
                "grpc_server_handled_total{{grpc_service=\"svc\",grpc_method=\"m{i:05}\",grpc_code=\"OK\"}} {value}"
            );
        }
        body
    };
    let totals = scrapes(&[&body(1), &body(3)]);
    assert_eq!(totals.methods.len(), MAX_METHODS + 1);
    assert_eq!(totals.requests, 20_000);
    assert_eq!(totals.methods["/svc/m00000"], (2, 0));
    assert_eq!(totals.methods["/svc/m00015"], (2, 0));
    assert_eq!(totals.methods[OTHER_METHODS], ((10_000 - MAX_METHODS as u64) * 2, 0));
}

#[test]
fn counts_are_whole_and_non_negative() {
    assert_eq!(to_count(f64::NAN), 0);
    assert_eq!(to_count(f64::INFINITY), 0);
    assert_eq!(to_count(-3.0), 0);
    assert_eq!(to_count(2.6), 3);
    assert_eq!(to_count(1e30), u64::MAX);
}

#[test]
fn le_spelled_1_0_or_1_is_the_same_bucket() {
    let body = |le: &str, n: u64| {
        format!(
            "grpc_server_handled_total{{grpc_service=\"s\",grpc_method=\"m\",grpc_code=\"OK\"}} {n}\n\
             grpc_server_handling_seconds_bucket{{grpc_service=\"s\",grpc_method=\"m\",le=\"{le}\"}} {n}\n"
        )
    };
    let totals = scrapes(&[&body("1.0", 10), &body("1", 12)]);
    let mut expected = vec![0; BUCKETS];
    spread_into(&mut expected, &[(1e6, 2)]);
    assert_eq!(totals.latency_buckets, Some(expected), "2 calls, not 12");
}
