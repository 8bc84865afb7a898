//! `greet-server`: the Greet gRPC service of the seed article.

use clap::Parser;

#[tokio::main]
async fn main() {
    let args = greet_top::server::cli::Args::parse();
    greet_top::common::logging::init(args.log.log_format, "info");
    greet_top::common::exit_on_error(greet_top::server::cli::run(args).await);
}
