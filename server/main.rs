//! `greet-server`: the Greet gRPC service of the seed article.

use clap::Parser;

#[tokio::main]
async fn main() {
    greet_top::common::logging::init_stderr();
    greet_top::common::exit_on_error(greet_top::server::cli::run(greet_top::server::cli::Args::parse()).await);
}
