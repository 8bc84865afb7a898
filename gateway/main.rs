//! `greet-gateway`: the article's REST gateway ("Greet Client"), sticky, balanced or least-loaded.

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = greet_top::gateway::cli::Args::parse();
    greet_top::common::logging::init(args.log.log_format, "info");
    greet_top::common::exit_on_error(greet_top::gateway::cli::run(args).await);
}
