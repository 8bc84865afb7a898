//! Flags that do nothing where they are given are refused, naming the flag
//! and what it needs, instead of being silently ignored.

use std::time::Duration;

use super::{Cli, Command};

/// `--once`'s value: a duration, not zero (a report over no time says nothing).
pub(super) fn once_duration(text: &str) -> Result<Duration, String> {
    // `--once` without a value: zero, which only replay accepts.
    if text == WHOLE_RECORDING {
        return Ok(Duration::ZERO);
    }
    let duration = humantime::parse_duration(text).map_err(|err| format!("{err} (e.g. 10s, 1m)"))?;
    if duration.is_zero() {
        return Err("a report over no time counts nothing; give how long to observe, e.g. 10s".to_owned());
    }
    Ok(duration)
}

/// What `--once` without a DURATION stands for (replay's window).
const WHOLE_RECORDING: &str = "the-window-of-the-recording";

/// `greet-top replay FILE --once`: a report of the recording's window,
/// with no DURATION (--from and --to choose it). clap's `--once` is one
/// flag for every command and takes a value, so after `replay` a `--once`
/// followed by no duration gets a stand-in one, which only replay accepts.
pub(super) fn replay_once_without_duration(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let args: Vec<std::ffi::OsString> = args.into_iter().collect();
    let Some(replay) = args.iter().skip(1).position(|a| a == "replay") else {
        return args;
    };
    let mut out = Vec::with_capacity(args.len() + 1);
    for (i, arg) in args.iter().enumerate() {
        out.push(arg.clone());
        let next_is_duration = args
            .get(i + 1)
            .and_then(|next| next.to_str())
            .is_some_and(|next| humantime::parse_duration(next).is_ok());
        if i > replay && arg == "--once" && !next_is_duration {
            out.push(WHOLE_RECORDING.into());
        }
    }
    out
}

/// A flag that picks a live source or how to follow it, if one is given.
fn live_source_flag(cli: &Cli) -> Option<&'static str> {
    [
        (cli.attach.gateway.is_some(), "--gateway"),
        (cli.attach.namespace.is_some(), "--namespace"),
        (!cli.metrics.metrics_url.is_empty(), "--metrics-url"),
        (cli.stream.raw_events, "--raw-events"),
    ]
    .into_iter()
    .find_map(|(given, flag)| given.then_some(flag))
}

/// The first flag given where it does nothing, in words.
pub(super) fn check(cli: &Cli) -> Result<(), String> {
    let once = cli.once.once.is_some();
    let replay = matches!(cli.command, Some(Command::Replay(_)));
    if !replay && cli.once.once == Some(Duration::ZERO) {
        return Err("--once needs how long to observe, e.g. --once 10s".to_owned());
    }
    if replay && cli.record.record.is_some() {
        return Err("replay reads a recording: --record does not apply".to_owned());
    }
    if replay && let Some(flag) = live_source_flag(cli) {
        return Err(format!(
            "replay reads a recording: {flag} is for a live greet-top; the recording holds what it followed and how"
        ));
    }
    if let Some(Command::SetMode(_)) = cli.command
        && (once || cli.once.output.is_some() || !cli.once.fail_on.is_empty())
    {
        return Err(
            "set-mode prints the gateway's state and exits: --once, --output and --fail-on do not apply".to_owned(),
        );
    }
    if !once && cli.once.output.is_some() {
        return Err(needs_once("--output"));
    }
    if !once && !cli.once.fail_on.is_empty() {
        return Err(needs_once("--fail-on"));
    }
    let attach = &cli.attach;
    if attach.load_rate.is_some() && attach.load_url.is_none() {
        let instead = match cli.command {
            Some(Command::Demo(_)) => "; the demo's rate is `greet-top demo --rate RPS`",
            _ => "",
        };
        return Err(format!(
            "--load-rate needs --load-url (the gateway's REST address the load goes to){instead}"
        ));
    }
    let metrics = &cli.metrics;
    if metrics.source == Some(super::Source::Gateway) {
        let given = [
            ("--metrics-url", !metrics.metrics_url.is_empty()),
            ("--metrics-port", metrics.metrics_port.is_some()),
        ];
        if let Some((flag, _)) = given.iter().find(|(_, given)| *given) {
            return Err(format!(
                "{flag} is for the pods' own metrics, and --source gateway shows only the gateway's view; \
                 drop one, or use --source both"
            ));
        }
    }
    if metrics.metrics_port.is_some() && !metrics.metrics_url.is_empty() {
        return Err(
            "--metrics-port picks the pods' port for the API server's pod proxy; --metrics-url scrapes \
             the URLs given instead, with their own ports: drop one"
                .to_owned(),
        );
    }
    let https = |url: &Option<String>| url.as_deref().is_some_and(|url| url.starts_with("https://"));
    if attach.insecure && !https(&attach.gateway) && !https(&attach.load_url) {
        return Err(
            "--insecure only changes how an https:// --gateway's or --load-url's certificate is checked; \
                    without one it does nothing"
                .to_owned(),
        );
    }
    Ok(())
}

fn needs_once(flag: &str) -> String {
    format!("{flag} needs --once: without it greet-top runs the dashboard, which prints no report; add e.g. --once 10s")
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn checked(args: &[&str]) -> Result<(), String> {
        let cli = Cli::try_parse_from(std::iter::once("greet-top").chain(args.iter().copied()))
            .map_err(|err| err.to_string())?;
        check(&cli)
    }

    #[test]
    fn report_flags_without_once_are_refused_by_name() {
        let needs = |flag: &str| {
            Err(format!(
                "{flag} needs --once: without it greet-top runs the dashboard, which prints no report; add e.g. \
                 --once 10s"
            ))
        };
        assert_eq!(checked(&["--output", "json"]), needs("--output"));
        assert_eq!(checked(&["--fail-on", "stuck"]), needs("--fail-on"));
        assert_eq!(checked(&["demo", "--fail-on", "errors>1%"]), needs("--fail-on"));
        assert_eq!(
            checked(&["--once", "2s", "--output", "json", "--fail-on", "stuck"]),
            Ok(())
        );
        assert_eq!(checked(&["demo", "--once", "2s", "--output", "markdown"]), Ok(()));
        assert_eq!(checked(&[]), Ok(()));
    }

    #[test]
    fn replay_once_takes_no_duration() {
        let args = |line: &str| -> Vec<std::ffi::OsString> {
            replay_once_without_duration(line.split(' ').map(std::ffi::OsString::from))
        };
        let expect = |line: &str| -> Vec<std::ffi::OsString> { line.split(' ').map(Into::into).collect() };
        let whole = format!("greet-top replay f.grt --once {WHOLE_RECORDING} --from +1m");
        assert_eq!(args("greet-top replay f.grt --once --from +1m"), expect(&whole));
        let whole = format!("greet-top replay --once {WHOLE_RECORDING} f.grt");
        assert_eq!(args("greet-top replay --once f.grt"), expect(&whole));
        assert_eq!(
            args("greet-top replay f.grt --once 5s"),
            expect("greet-top replay f.grt --once 5s")
        );
        assert_eq!(args("greet-top demo --once"), expect("greet-top demo --once"));
        assert_eq!(
            checked(&["demo", "--once", WHOLE_RECORDING]),
            Err("--once needs how long to observe, e.g. --once 10s".to_owned())
        );
    }

    #[test]
    fn replay_refuses_the_flags_of_a_live_source() {
        let refused = |flag: &str| {
            Err(format!(
                "replay reads a recording: {flag} is for a live greet-top; the recording holds what it followed and how"
            ))
        };
        assert_eq!(checked(&["replay", "f.grt", "--raw-events"]), refused("--raw-events"));
        assert_eq!(
            checked(&["--gateway", "http://127.0.0.1:9092", "replay", "f.grt"]),
            refused("--gateway")
        );
        assert_eq!(checked(&["-n", "shop", "replay", "f.grt"]), refused("--namespace"));
        assert_eq!(
            checked(&["--metrics-url", "http://127.0.0.1:9090/metrics", "replay", "f.grt"]),
            refused("--metrics-url")
        );
        assert_eq!(checked(&["replay", "f.grt"]), Ok(()));
        assert_eq!(checked(&["--raw-events", "--gateway", "http://127.0.0.1:9092"]), Ok(()));
    }

    #[test]
    fn once_zero_is_refused_and_a_bad_duration_says_the_form() {
        assert_eq!(
            once_duration("0s"),
            Err("a report over no time counts nothing; give how long to observe, e.g. 10s".to_owned())
        );
        assert_eq!(once_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert!(once_duration("soon").unwrap_err().ends_with("(e.g. 10s, 1m)"));
        let err = checked(&["--once", "0s"]).unwrap_err();
        assert!(err.contains("invalid value '0s' for '--once <DURATION>'"), "{err}");
    }

    #[test]
    fn load_rate_needs_load_url_and_insecure_needs_https() {
        assert_eq!(
            checked(&["--load-rate", "100"]),
            Err("--load-rate needs --load-url (the gateway's REST address the load goes to)".to_owned())
        );
        assert_eq!(
            checked(&["--load-rate", "100", "--load-url", "http://127.0.0.1:9091"]),
            Ok(())
        );
        assert_eq!(
            checked(&["--insecure", "--gateway", "http://127.0.0.1:9092"]),
            Err(
                "--insecure only changes how an https:// --gateway's or --load-url's certificate is checked; \
                 without one it does nothing"
                    .to_owned()
            )
        );
        assert_eq!(checked(&["--insecure", "--gateway", "https://gw:9092"]), Ok(()));
        assert_eq!(checked(&["--insecure", "--load-url", "https://gw:9091"]), Ok(()));
    }

    #[test]
    fn metrics_flags_that_would_do_nothing_are_refused() {
        assert_eq!(
            checked(&["--source", "gateway", "--metrics-port", "9090"]),
            Err(
                "--metrics-port is for the pods' own metrics, and --source gateway shows only the gateway's view; \
                 drop one, or use --source both"
                    .to_owned()
            )
        );
        assert_eq!(
            checked(&[
                "--metrics-port",
                "9090",
                "--metrics-url",
                "http://127.0.0.1:9090/metrics"
            ]),
            Err(
                "--metrics-port picks the pods' port for the API server's pod proxy; --metrics-url scrapes \
                 the URLs given instead, with their own ports: drop one"
                    .to_owned()
            )
        );
        assert_eq!(checked(&["--source", "both", "--metrics-port", "9090"]), Ok(()));
    }

    #[test]
    fn a_bad_fail_on_condition_names_the_wrong_part() {
        let err = checked(&["--once", "1s", "--fail-on", "stuck,p99>fast"]).unwrap_err();
        assert!(
            err.contains("invalid value 'p99>fast' for '--fail-on <CONDITION,...>': \"fast\" is not a duration (e.g. p99>50ms, p99>1s)"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod help {
    use clap::CommandFactory as _;

    use super::Cli;

    #[test]
    fn every_help_text_about_modes_names_all_four() {
        let mut command = Cli::command();
        let long = command.render_long_help().to_string();
        let about = long.lines().take(4).collect::<Vec<_>>().join(" ");
        for mode in ["sticky", "dns", "balanced", "least-loaded"] {
            assert!(about.contains(mode), "{mode} missing from: {about}");
        }
        let set_mode = command
            .find_subcommand_mut("set-mode")
            .unwrap()
            .render_long_help()
            .to_string();
        for mode in ["sticky", "balanced", "least-loaded", "dns"] {
            assert!(
                set_mode.contains(&format!("- {mode}:")),
                "{mode} missing from: {set_mode}"
            );
        }
    }
}
