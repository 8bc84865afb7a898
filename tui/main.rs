//! `greet-top`: the live dashboard (`greet-top`) and the embedded demo (`greet-top demo`).

#[tokio::main]
async fn main() {
    greet_top::tui::cli::exit(greet_top::tui::cli::run(greet_top::tui::cli::parse()).await);
}
