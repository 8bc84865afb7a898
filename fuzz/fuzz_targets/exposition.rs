//! Fuzzes the Prometheus / OpenMetrics exposition reader of pod-metrics:
//! any bytes (a hostile or broken metrics endpoint) must be read without a
//! panic, and a pod name found in them must come out sanitised.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(name) = pod_metrics::pod_name_hint(data) {
        assert!(!name.chars().any(char::is_control), "{name:?}");
    }
});
