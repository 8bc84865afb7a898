//! pod-metrics: what gRPC servers say about themselves. Scrapes each pod's
//! Prometheus endpoint (directly, or through the API server's `pods/proxy`),
//! recognises the gRPC server families (go-grpc-prometheus and its ports,
//! OpenTelemetry's RPC conventions old and new) and folds them into
//! cumulative per-pod totals, counter resets handled as Prometheus' `rate()`
//! does. No terminal and no dashboard types: greet-top converts
//! [`PodReading`]s at its edge.

mod codes;
mod counters;
mod families;
mod fetch;
mod histogram;
mod parse;
mod reading;
mod scrape;
mod scraper;

pub use families::pod_name_hint;
pub use fetch::{Fetch, FetchError, FetchFuture, Fetched, HttpFetch, PodProxyFetch, pod_proxy_path};
pub use reading::{Family, PodReading, ScrapeConfig, ScrapeStatus, Target, Totals, Via};
pub use scrape::scrape_once;
pub use scraper::run;
