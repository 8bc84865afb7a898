//! greet-top: see and fix gRPC load balancing in Kubernetes.
//!
//! One library, three thin binaries:
//! - [`server`]: the Greet service of the seed article (`greet-server`).
//! - [`gateway`]: the REST gateway, sticky, balanced or least-loaded, with the Observer stream (`greet-gateway`).
//! - [`tui`]: the live dashboard and the embedded demo (`greet-top`).
//!
//! [`proto`] holds the wire types, [`common`] what every part shares.

pub mod common;
pub mod gateway;
pub mod proto;
pub mod server;
pub mod tui;
