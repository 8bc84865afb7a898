//! `greet-top replay FILE`: a recording (`--record`) on the dashboard, or
//! with `--once` the report of a window of it, from the same report code
//! as a live `--once`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::OnceArgs;
use crate::record::{self, Replay, ReplayScreen, offset_text};
use crate::state::App;
use crate::{once, report, terminal};

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// A file written by `greet-top --record FILE`.
    pub file: PathBuf,
    /// Where the dashboard starts playing, or with --once where the report's
    /// window starts: HH:MM:SS (UTC, as the replay's header shows it),
    /// +offset from the recording's start (e.g. +2m30s) or RFC 3339.
    /// Default: the recording's start.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// With --once: the report's window ends here (same forms as --from).
    /// Default: the recording's end.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
}

pub(super) async fn run(args: ReplayArgs, once: OnceArgs) -> anyhow::Result<()> {
    let replay = Replay::open(&args.file)?;
    match once.once {
        Some(duration) if !duration.is_zero() => anyhow::bail!(
            "--once takes no DURATION with replay: the window is --from and --to \
             (e.g. greet-top replay FILE --once --from 14:03:00 --to +5m)"
        ),
        Some(_) => report(replay, &args, &once),
        None if args.to.is_some() => {
            anyhow::bail!("--to ends the window of a report: add --once (the dashboard plays on to the end)")
        }
        None => {
            let from = parse("--from", &args.from, replay.header().started_unix_ms)?;
            let mut screen = ReplayScreen::new(replay);
            if let Some(from) = from {
                let end = screen.replay().end();
                if from > end {
                    return Err(after_the_end(from, end));
                }
                screen.start_at(from);
            }
            terminal::replay::dashboard(screen).await
        }
    }
}

fn after_the_end(from: Duration, end: Duration) -> anyhow::Error {
    anyhow::anyhow!(
        "--from {} is after the recording ends ({}): choose a time within it",
        offset_text(from),
        offset_text(end)
    )
}

/// `flag`'s time as an offset into a recording that started at `started_unix_ms`.
fn parse(flag: &str, text: &Option<String>, started_unix_ms: i64) -> anyhow::Result<Option<Duration>> {
    text.as_deref()
        .map(|text| record::when::parse(text, started_unix_ms).map_err(|err| anyhow::anyhow!("{flag}: {err}")))
        .transpose()
}

/// The report of the window `--from` … `--to`: the model folded up to
/// `--from`, its counters reset there, folded on to `--to`. Without either,
/// a `--once` recording's report is the one printed live, count for count.
fn report(mut replay: Replay, args: &ReplayArgs, once: &OnceArgs) -> anyhow::Result<()> {
    if let Some(damage) = replay.damage() {
        greet_runtime::say(format_args!("greet-top: {damage}"));
    }
    if replay.header().part > 0 {
        greet_runtime::say(format_args!(
            "greet-top: {}",
            record::screen::mid_incident(replay.header().part, replay.first())
        ));
    }
    let started = replay.header().started_unix_ms;
    let (from, to) = (parse("--from", &args.from, started)?, parse("--to", &args.to, started)?);
    let end = replay.end();
    let (to, observed) = match (from, to, replay.reported()) {
        (None, None, Some((at, observed))) => (at, observed),
        (from, to, _) => {
            let start = from.unwrap_or(replay.first());
            let to = to.unwrap_or(end).min(end);
            if start > end {
                return Err(after_the_end(start, end));
            }
            if to < start {
                anyhow::bail!(
                    "--to {} is before --from {}: the window is empty",
                    offset_text(to),
                    offset_text(start)
                );
            }
            (to, to - start)
        }
    };
    if let Some(from) = from {
        replay.forward_to(from);
        let at = replay.instant(from);
        replay.views_mut().main_mut().reset(at);
    }
    // The report is over everything counted in the window, as live.
    let placeholder = App::new(String::new(), replay.instant(Duration::ZERO));
    let main = replay.views_mut().main_mut();
    *main = std::mem::replace(main, placeholder).over_everything_counted();
    replay.forward_to(to);
    let now = replay.instant(to);
    let built = report::build_at(replay.views().main(), observed, now, record::when::wall(started, to));
    once::print_built(&built, observed, once.format(), &once.fail_on)
}
