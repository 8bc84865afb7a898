//! `greet-gateway`: the article's REST gateway ("Greet Client"), sticky, balanced, least-loaded or dns.

use clap::Parser;
use greet_runtime::allocator::{ALLOCATOR, Allocator};

#[global_allocator]
static GLOBAL: Allocator = ALLOCATOR;

#[tokio::main]
async fn main() {
    let args = greet_gateway::cli::Args::parse();
    // kube's client logs every failed request to the API server at ERROR
    // in its own words ("client error (Connect)", "peer closed connection
    // without sending TLS close_notify"), once a retry: the discovery watch
    // says the same once per outage, cause first. RUST_LOG brings it back.
    greet_runtime::logging::init(args.log.log_format, "info,kube_client::client::builder=off");
    greet_runtime::allocator::purge_in_background();
    greet_runtime::exit_on_error(greet_gateway::cli::run(args).await);
}
