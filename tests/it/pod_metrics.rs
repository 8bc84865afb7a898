//! pod-metrics against loopback servers: the fetchers over real HTTP (a
//! metrics endpoint, an API server's pods/proxy), and the scraper loop with
//! a scripted fetcher under tokio's paused clock.

mod http_fetch;
mod pod_proxy;
mod scraper;
mod support;
