//! `greet-gateway`: the article's REST gateway ("Greet Client"), sticky, balanced, least-loaded or dns.

use clap::Parser;

// Every forwarded call allocates a few dozen small buffers on both worker
// threads; glibc's malloc took its arena lock for them (futex waits in the
// gateway's profile). mimalloc's thread-local heaps do not.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args = greet_gateway::cli::Args::parse();
    // kube's client logs every failed request to the API server at ERROR
    // in its own words ("client error (Connect)", "peer closed connection
    // without sending TLS close_notify"), once a retry: the discovery watch
    // says the same once per outage, cause first. RUST_LOG brings it back.
    greet_runtime::logging::init(args.log.log_format, "info,kube_client::client::builder=off");
    greet_runtime::exit_on_error(greet_gateway::cli::run(args).await);
}
