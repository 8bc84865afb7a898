//! `greet-top set-mode MODE`: switch a gateway's mode from a script, through
//! its Observer (`SetMode`), and print its state after the switch.

use clap::Args;

use super::DEFAULT_GATEWAY;
use crate::network_text;
use crate::observer_client::{self, GatewayLink, Verify};
use greet_proto::Mode;
use greet_proto::observe::State;
use greet_runtime::auth::TokenSetting;

#[derive(Args, Debug)]
pub struct SetModeArgs {
    /// The mode to switch to.
    #[arg(value_enum)]
    pub mode: Mode,
    /// The gateway's Observer address (https:// speaks TLS).
    #[arg(long, env = "GREET_TOP_GATEWAY", value_name = "URL", default_value = DEFAULT_GATEWAY)]
    pub gateway: String,
    /// The gateway's control token (its GATEWAY_CONTROL_TOKEN).
    #[arg(long, env = "GREET_TOP_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<TokenSetting>,
    /// With an https:// --gateway: accept any certificate.
    #[arg(long)]
    pub insecure: bool,
}

/// Switches the gateway and prints one line: its URL, the new mode, the
/// one before and its endpoints.
pub(super) async fn run(args: SetModeArgs) -> anyhow::Result<()> {
    if args.insecure && !args.gateway.starts_with("https://") {
        anyhow::bail!("--insecure only changes how an https:// --gateway's certificate is checked");
    }
    let token = match &args.token {
        Some(setting) => Some(setting.token("--token / GREET_TOP_TOKEN")?),
        None => None,
    };
    let verify = if args.insecure {
        Verify::Insecure
    } else {
        Verify::SystemRoots
    };
    let channel = observer_client::observer_channel_with(&args.gateway, verify)?;
    let link = GatewayLink::new(channel, token.as_ref());
    let failed = |why: String| {
        anyhow::anyhow!(
            "could not switch {} to {}: {}",
            args.gateway,
            args.mode,
            network_text::error(&why)
        )
    };
    let before = observer_client::current_state(&link).await.map_err(failed)?;
    let after = observer_client::switch_mode(&link, args.mode).await.map_err(failed)?;
    crate::once::write_stdout(
        "the new mode",
        &format!("{}\n", describe(&args.gateway, &before, &after)),
    )
}

/// `http://gw:9092: balanced (was sticky); 3 of 3 endpoints ready, discovery static`
fn describe(gateway: &str, before: &State, after: &State) -> String {
    let mode = |state: &State| match Mode::from_proto(state.mode) {
        Some(mode) => mode.to_string(),
        None => format!("mode {}", state.mode),
    };
    let ready = after.endpoints.iter().filter(|e| e.ready).count();
    format!(
        "{gateway}: {} (was {}); {ready} of {} endpoints ready, discovery {}",
        mode(after),
        mode(before),
        after.endpoints.len(),
        network_text::name(&after.discovery)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use greet_proto::observe::Endpoint;

    #[test]
    fn the_line_names_the_new_mode_the_old_one_and_the_endpoints() {
        let state = |mode: Mode, ready: &[bool]| State {
            mode: mode.to_proto() as i32,
            endpoints: ready
                .iter()
                .map(|r| Endpoint {
                    ready: *r,
                    ..Endpoint::default()
                })
                .collect(),
            discovery: "static\u{1b}[2J".into(),
            ..State::default()
        };
        assert_eq!(
            describe(
                "http://gw:9092",
                &state(Mode::Sticky, &[]),
                &state(Mode::LeastLoaded, &[true, false, true])
            ),
            "http://gw:9092: least-loaded (was sticky); 2 of 3 endpoints ready, discovery static[2J"
        );
    }
}
