//! `greet-top`: for now, `greet-top demo` runs the embedded system headless.

use clap::{Parser, Subcommand};
use greet_top::common::Mode;
use greet_top::tui::demo::{Demo, DemoConfig};

#[derive(Parser)]
#[command(version, about = "See and fix gRPC load balancing")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run greet-servers, a connection-balancing Service and the gateway on loopback.
    Demo {
        #[arg(long, default_value_t = 3)]
        pods: usize,
        #[arg(long, value_enum, default_value_t = Mode::Sticky)]
        mode: Mode,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    greet_top::common::logging::init_stderr();
    let Command::Demo { pods, mode } = Cli::parse().command;
    let demo = Demo::start(DemoConfig {
        pods,
        mode,
        ..DemoConfig::default()
    })
    .await?;
    for (name, addr) in demo.pods() {
        println!("pod {name} on {addr}");
    }
    println!("service (connection-balancing) on {}", demo.service_addr);
    println!(
        "gateway REST on http://{}, Observer on {}",
        demo.gateway.rest_addr, demo.gateway.observe_addr
    );
    println!("Ctrl-C stops");
    greet_top::server::termination_signal().await;
    demo.shutdown().await;
    Ok(())
}
