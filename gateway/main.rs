//! `greet-gateway`: the article's REST gateway ("Greet Client"), sticky or balanced.

use clap::Parser;

#[tokio::main]
async fn main() {
    greet_top::common::logging::init_stderr();
    greet_top::common::exit_on_error(greet_top::gateway::cli::run(greet_top::gateway::cli::Args::parse()).await);
}
