//! Which gRPC server family a body holds, read into one shape: completed
//! calls by (method, code), histogram buckets, calls in flight.
//!
//! Families are told apart by sample name (`X_total`, `X_bucket{le}`,
//! `X_count`; `X_created` ignored), never by `# TYPE`, which 0.0.4 and
//! OpenMetrics name differently. A family's `# TYPE`/`# HELP` line alone
//! still counts as present: py-grpc-prometheus registers its families but
//! has no series until the first call.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use greet_proto::limits::MAX_METHOD_CHARS;
use greet_proto::sanitize::sanitize_truncated;

use crate::codes::{UNKNOWN, code_from_label};
use crate::parse::{ParseStats, Sample, parse};
use crate::reading::Family;

/// Longest pod name kept from a hint (a DNS subdomain's limit).
const MAX_POD_NAME_CHARS: usize = 253;

/// A counter of completed calls, cumulative as the pod reports it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Calls {
    /// The series' identity across scrapes: its name and every label.
    pub(crate) id: u64,
    /// `/package.Service/Method`, sanitised and cut to MAX_METHOD_CHARS.
    pub(crate) method: String,
    pub(crate) code: i32,
    pub(crate) value: f64,
}

/// One cumulative histogram bucket.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Bucket {
    /// The histogram's identity (name and labels but `le`).
    pub(crate) histogram: u64,
    /// This bucket's identity (the histogram's and `le`).
    pub(crate) id: u64,
    /// The bound, in microseconds (`+Inf` as is).
    pub(crate) le_us: f64,
    pub(crate) value: f64,
}

/// A body's gRPC server numbers, in the family it was read from.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observed {
    pub(crate) family: Family,
    pub(crate) calls: Vec<Calls>,
    pub(crate) buckets: Vec<Bucket>,
    /// Whether the pod exports a latency histogram (py-grpc-prometheus
    /// declares one even when it is off: only samples count).
    pub(crate) has_histogram: bool,
    pub(crate) in_flight: Option<u64>,
}

/// What one body held.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Read {
    pub(crate) observed: Option<Observed>,
    pub(crate) stats: ParseStats,
    pub(crate) pod_hint: Option<String>,
}

#[derive(Default)]
struct Found {
    calls: Vec<Calls>,
    buckets: Vec<Bucket>,
    /// Started calls by method (GrpcPrometheus only).
    started: HashMap<String, f64>,
}

impl Found {
    fn has_samples(&self) -> bool {
        !self.calls.is_empty() || !self.buckets.is_empty()
    }
}

/// Reads a scraped body.
pub(crate) fn read(body: &[u8], max_samples: usize) -> Read {
    let mut grpc = Found::default();
    let mut otel_new = Found::default();
    let mut otel_old = Found::default();
    let mut pod_hint: Option<String> = None;
    let mut sample_hint: Option<String> = None;
    let stats = parse(body, max_samples, names_infrastructure, |s| {
        let name = s.name.as_ref();
        if name == "target_info" {
            if pod_hint.is_none() {
                pod_hint = s.label("k8s_pod_name").and_then(clean_pod_name);
            }
            return;
        }
        if is_infrastructure(s) {
            return;
        }
        if let Some(base) = name.strip_prefix("grpc_server_") {
            match base {
                "handled_total" => {
                    let code = s.label("grpc_code").or_else(|| s.label("code"));
                    grpc.calls.push(Calls {
                        id: series_id(s, None),
                        method: grpc_method(s),
                        code: code.map_or(UNKNOWN, code_from_label),
                        value: s.value,
                    });
                }
                "started_total" => *grpc.started.entry(grpc_method(s)).or_default() += nonnegative(s.value),
                "handling_seconds_bucket" | "handled_latency_seconds_bucket" => push_bucket(&mut grpc.buckets, s, 1e6),
                _ => return,
            }
        } else if let Some(part) = name.strip_prefix("rpc_server_call_duration_seconds_") {
            match part {
                "count" => otel_new.calls.push(Calls {
                    id: series_id(s, None),
                    method: otel_new_method(s),
                    code: otel_new_code(s),
                    value: s.value,
                }),
                "bucket" => push_bucket(&mut otel_new.buckets, s, 1e6),
                _ => return,
            }
        } else if let Some(part) = name.strip_prefix("rpc_server_duration_milliseconds_") {
            match part {
                "count" => otel_old.calls.push(Calls {
                    id: series_id(s, None),
                    method: method_key(
                        s.label("rpc_service").unwrap_or_default(),
                        s.label("rpc_method").unwrap_or_default(),
                    ),
                    code: s.label("rpc_grpc_status_code").map_or(0, code_from_label),
                    value: s.value,
                }),
                "bucket" => push_bucket(&mut otel_old.buckets, s, 1e3),
                _ => return,
            }
        } else {
            return;
        }
        if sample_hint.is_none() {
            sample_hint = s.label("pod").or_else(|| s.label("pod_name")).and_then(clean_pod_name);
        }
    });

    let declared = |names: &[&str]| stats.declared.iter().any(|d| names.contains(&d.as_str()));
    let present = [
        (
            Family::GrpcPrometheus,
            declared(&["grpc_server_handled", "grpc_server_handled_total"]),
        ),
        (
            Family::OtelRpcCallDuration,
            declared(&["rpc_server_call_duration_seconds"]),
        ),
        (Family::OtelRpcDuration, declared(&["rpc_server_duration_milliseconds"])),
    ];
    // Preference when a pod exports several: go-grpc-prometheus' names are
    // counters of every completed call (the histogram may be off), then the
    // newer OTel convention (what current otelgrpc emits, also under
    // `rpc/dup`), then the older one. A family with samples beats one only
    // declared.
    let mut families = [grpc, otel_new, otel_old];
    let pick = (0..3)
        .find(|&i| families[i].has_samples())
        .or_else(|| (0..3).find(|&i| present[i].1));
    let observed = pick.map(|i| {
        let found = std::mem::take(&mut families[i]);
        observe(present[i].0, found)
    });
    Read {
        observed,
        stats,
        pod_hint: pod_hint.or(sample_hint),
    }
}

/// A pod name from a pod's own metrics (`k8s_pod_name` on `target_info`, or
/// a `pod`/`pod_name` label on its gRPC samples), sanitised; for a target
/// given as a bare URL.
pub fn pod_name_hint(body: &[u8]) -> Option<String> {
    read(body, crate::parse::MAX_SAMPLES).pod_hint
}

fn observe(family: Family, found: Found) -> Observed {
    let in_flight = (!found.started.is_empty()).then(|| {
        let mut handled: HashMap<&str, f64> = HashMap::new();
        for c in &found.calls {
            *handled.entry(c.method.as_str()).or_default() += nonnegative(c.value);
        }
        found
            .started
            .iter()
            .map(|(method, started)| {
                let done = handled.get(method.as_str()).copied().unwrap_or(0.0);
                crate::counters::to_count(started - done)
            })
            .fold(0u64, u64::saturating_add)
    });
    Observed {
        family,
        has_histogram: !found.buckets.is_empty(),
        calls: found.calls,
        buckets: found.buckets,
        in_flight,
    }
}

fn nonnegative(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 { value } else { 0.0 }
}

fn push_bucket(buckets: &mut Vec<Bucket>, s: &Sample<'_>, to_us: f64) {
    let Some(le) = s.label("le").and_then(crate::parse::parse_value) else {
        return;
    };
    if le.is_nan() {
        return;
    }
    let histogram = series_id(s, Some("le"));
    let mut h = DefaultHasher::new();
    (histogram, le.to_bits()).hash(&mut h);
    buckets.push(Bucket {
        histogram,
        id: h.finish(),
        le_us: le * to_us,
        value: s.value,
    });
}

/// The identity of the series `s`: its name and its labels (in name order,
/// as an exporter may change their order), less `skip`.
fn series_id(s: &Sample<'_>, skip: Option<&str>) -> u64 {
    let mut labels: Vec<(&str, &str)> = s
        .labels
        .iter()
        .filter(|(k, _)| Some(k.as_ref()) != skip)
        .map(|(k, v)| (k.as_ref(), v.as_ref()))
        .collect();
    labels.sort_unstable();
    let mut h = DefaultHasher::new();
    let name = s.name.as_ref();
    // A bucket's histogram is named without `_bucket`, so its identity
    // does not depend on which sample it was read from.
    name.strip_suffix("_bucket").unwrap_or(name).hash(&mut h);
    labels.hash(&mut h);
    h.finish()
}

fn grpc_method(s: &Sample<'_>) -> String {
    method_key(
        s.label("grpc_service").unwrap_or_default(),
        s.label("grpc_method").unwrap_or_default(),
    )
}

/// Services every gRPC server may carry beside its own: health checks
/// (the kubelet's, a load balancer's, greet-gateway's own, every second)
/// and reflection. Their calls say nothing of how the workload's traffic
/// spreads, and a health check per pod per second would read as an even
/// spread of traffic that is not there: they are not counted.
const INFRASTRUCTURE: [&str; 2] = ["grpc.health.v1.", "grpc.reflection."];

/// A quick look at a whole line before its labels are parsed: a service
/// label (or OpenTelemetry's `rpc_method`) starting with an infrastructure
/// service. greet-server, like go-grpc-prometheus with its series made up
/// front, writes most of its lines for health and reflection: skipping them
/// unparsed is most of a scrape's parsing time. [`is_infrastructure`]
/// decides on the parsed labels for what this lets through.
fn names_infrastructure(line: &str) -> bool {
    // A label value that starts with one of [`INFRASTRUCTURE`]'s prefixes,
    // after an optional `/` (OpenTelemetry's fully qualified method).
    INFRASTRUCTURE.iter().any(|prefix| {
        line.match_indices(prefix).any(|(at, _)| {
            let before = line[..at].strip_suffix('/').unwrap_or(&line[..at]);
            before.ends_with("=\"")
        })
    })
}

fn is_infrastructure(s: &Sample<'_>) -> bool {
    let service = s
        .label("grpc_service")
        .or_else(|| s.label("rpc_service"))
        .or_else(|| s.label("rpc_method").filter(|m| m.contains('/')));
    service.is_some_and(|service| {
        let service = service.strip_prefix('/').unwrap_or(service);
        INFRASTRUCTURE.iter().any(|prefix| service.starts_with(prefix))
    })
}

/// `/{service}/{method}`, sanitised and cut to MAX_METHOD_CHARS.
fn method_key(service: &str, method: &str) -> String {
    sanitize_truncated(&format!("/{service}/{method}"), MAX_METHOD_CHARS)
}

/// The newer convention's `rpc.method` is `package.Service/Method` already;
/// `_OTHER` stands for a method the server does not know, its name in
/// `rpc.method_original`.
fn otel_new_method(s: &Sample<'_>) -> String {
    let mut method = s.label("rpc_method").unwrap_or_default();
    if method == "_OTHER" {
        method = s.label("rpc_method_original").unwrap_or(method);
    }
    let method = method.strip_prefix('/').unwrap_or(method);
    sanitize_truncated(&format!("/{method}"), MAX_METHOD_CHARS)
}

/// The status is `rpc.response.status_code` (semconv v1.39–v1.44) or
/// `rpc.status_code` (renamed later); without either, a call that has an
/// `error.type` failed.
fn otel_new_code(s: &Sample<'_>) -> i32 {
    match s
        .label("rpc_response_status_code")
        .or_else(|| s.label("rpc_status_code"))
    {
        Some(code) => code_from_label(code),
        None if s.label("error_type").is_some() => UNKNOWN,
        None => 0,
    }
}

fn clean_pod_name(name: &str) -> Option<String> {
    let name = sanitize_truncated(name.trim(), MAX_POD_NAME_CHARS);
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests;
