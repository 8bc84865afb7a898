//! `greet-top`: the live dashboard (`greet-top`) and the embedded demo (`greet-top demo`).

#[tokio::main]
async fn main() {
    greet_top::cli::exit(greet_top::cli::run(greet_top::cli::parse()).await);
}
