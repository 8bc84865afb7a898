//! `greet-server`: the Greet gRPC service of the seed article.

use clap::Parser;
use greet_runtime::allocator::{ALLOCATOR, Allocator};

#[global_allocator]
static GLOBAL: Allocator = ALLOCATOR;

#[tokio::main]
async fn main() {
    let args = greet_server::cli::Args::parse();
    greet_runtime::logging::init(args.log.log_format, "info");
    greet_runtime::allocator::purge_in_background();
    greet_runtime::exit_on_error(greet_server::cli::run(args).await);
}
