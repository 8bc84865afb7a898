//! Every integration test of the workspace in one binary: the three
//! binaries as processes, the demo cluster in process, the fake API server,
//! network namespaces and pseudo-terminals. `tests/support` (the package's
//! library) holds what they share.

mod allocator;
mod attempt_latency;
mod auth;
mod binaries;
mod client_errors;
mod counted_once;
mod demo;
mod discovery_outage;
mod dns_mode;
mod dns_netns;
mod docs;
mod endpoint_health;
mod fake_kube_self_test;
mod gateway;
mod gateway_restart;
mod hostile_h2;
mod hung_pod;
mod ingress;
mod kubernetes;
mod least_loaded;
mod local_cluster;
mod logs;
mod max_connection_age;
mod metrics;
mod mode_menu;
mod observer_gauges;
mod observer_hostile;
mod observer_lag;
mod observer_summaries;
mod once_report;
mod pod_metrics;
mod pods_own_metrics;
mod properties;
mod record_replay;
mod reflection;
mod rolling_restart;
mod skipped_endpoints;
mod sticky_failures;
mod terminal_restore;
mod tls;
mod tui_render;
mod upstream_errors;
