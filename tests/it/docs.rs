//! The reference in docs/ is written by hand, so these tests hold it to the
//! code: every flag of greet-server and greet-gateway with its environment
//! variable and default, greet-top's flags for the pods' own metrics,
//! and every key of greet-top's help.

use std::collections::{BTreeMap, BTreeSet};

use clap::CommandFactory;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// The markdown under `heading` (to the next heading of the same level).
fn section(doc: &str, heading: &str) -> String {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc))
        .unwrap_or_else(|e| panic!("{doc}: {e}"));
    let level = heading.split(' ').next().unwrap_or_default();
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("{doc} has no {heading:?}"));
    let body = &text[start + heading.len() + 2..];
    let end = body.find(&format!("\n{level} ")).unwrap_or(body.len());
    body[..end].to_owned()
}

/// The cells of the section's first table's rows, header and rule left out
/// (a `|` inside a description splits it too: only the first cells are read).
fn rows(section: &str) -> Vec<Vec<String>> {
    section
        .lines()
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .skip(2)
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(|cell| cell.trim().to_owned())
                .collect()
        })
        .collect()
}

/// The words in backquotes: `` `--port` `` is `--port`.
fn quoted(cell: &str) -> Vec<String> {
    cell.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

/// Flag -> (environment variable, default) as the docs' table says.
fn documented_flags(doc: &str, heading: &str) -> BTreeMap<String, (String, String)> {
    rows(&section(doc, heading))
        .into_iter()
        .map(|cells| {
            let flag = quoted(&cells[0])[0].split(' ').next().unwrap_or_default().to_owned();
            let env = quoted(&cells[1]).into_iter().next().unwrap_or_default();
            (flag, (env, cells[2].trim_matches('`').to_owned()))
        })
        .collect()
}

/// Flag -> (environment variable, default) as clap has them.
fn real_flags(command: clap::Command) -> BTreeMap<String, (String, String)> {
    command
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            if ["help", "version"].contains(&long) {
                return None;
            }
            let env = arg
                .get_env()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            let default = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy())
                .collect::<Vec<_>>()
                .join(",");
            Some((format!("--{long}"), (env, default)))
        })
        .collect()
}

fn assert_documented(doc: &str, heading: &str, command: clap::Command) {
    let documented = documented_flags(doc, heading);
    let real = real_flags(command);
    let names = |m: &BTreeMap<String, (String, String)>| m.keys().cloned().collect::<BTreeSet<_>>();
    assert_eq!(
        names(&documented),
        names(&real),
        "{doc} {heading}: flags in the table vs the binary's"
    );
    for (flag, (env, default)) in &real {
        let (doc_env, doc_default) = &documented[flag];
        assert_eq!(doc_env, env, "{doc}: {flag}'s environment variable");
        // A default clap computes at run time ($HOSTNAME, the listen IP) is
        // described in words; one clap knows must be the documented one.
        if !default.is_empty() {
            assert_eq!(doc_default, default, "{doc}: {flag}'s default");
        }
    }
}

#[test]
fn every_greet_server_flag_is_documented_with_its_env_and_default() {
    assert_documented("docs/gateway.md", "## greet-server", greet_server::cli::Args::command());
}

#[test]
fn every_greet_gateway_flag_is_documented_with_its_env_and_default() {
    assert_documented(
        "docs/gateway.md",
        "## greet-gateway",
        greet_gateway::cli::Args::command(),
    );
}

/// The key a name in the docs or the help stands for.
fn key(name: &str) -> KeyEvent {
    let code = match name {
        "space" => KeyCode::Char(' '),
        "↑" => KeyCode::Up,
        "↓" => KeyCode::Down,
        "PgUp" => KeyCode::PageUp,
        "PgDn" => KeyCode::PageDown,
        "Home" => KeyCode::Home,
        "End" => KeyCode::End,
        "Esc" => KeyCode::Esc,
        "Ctrl-C" => return KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        one if one.chars().count() == 1 => KeyCode::Char(one.chars().next().unwrap_or_default()),
        other => panic!("not a key name: {other:?}"),
    };
    KeyEvent::new(code, KeyModifiers::NONE)
}

#[test]
fn every_key_in_the_help_is_documented_and_every_documented_key_does_something() {
    let documented: BTreeSet<String> = rows(&section("docs/dashboard.md", "## Keys"))
        .iter()
        .flat_map(|cells| quoted(&cells[0]))
        .collect();
    let helped: BTreeSet<String> = greet_top::state::keys::help_lines(greet_top::state::keys::Scope::ALL)
        .flat_map(|(keys, _)| {
            keys.split([' ', ','])
                .filter(move |k| !k.is_empty() && (*k != "/" || keys == "/"))
        })
        .map(str::to_owned)
        .collect();
    let missing: Vec<_> = helped.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "keys in the help but not in docs/dashboard.md: {missing:?}"
    );
    for name in &documented {
        assert!(
            greet_top::state::keys::binding_for(key(name), greet_top::state::keys::Scope::ALL).is_some(),
            "docs/dashboard.md documents {name:?}, which no binding takes"
        );
    }
}

/// greet-top's flags for the pods' own metrics: the table in
/// docs/dashboard.md lists exactly them, each with clap's default.
#[test]
fn the_pods_own_metrics_flags_are_documented_with_their_defaults() {
    use clap::Args as _;
    let command = greet_top::cli::MetricsArgs::augment_args(clap::Command::new("greet-top"));
    let real = real_flags(command);
    let rows = rows(&section("docs/dashboard.md", "## The pods' own metrics"));
    let documented: BTreeMap<String, String> = rows
        .iter()
        .map(|cells| {
            let flag = quoted(&cells[0])[0].split(' ').next().unwrap_or_default().to_owned();
            (flag, cells[1..].join("|"))
        })
        .collect();
    assert_eq!(
        documented.keys().collect::<BTreeSet<_>>(),
        real.keys().collect::<BTreeSet<_>>(),
        "docs/dashboard.md: the metrics flags in the table vs greet-top's"
    );
    for (flag, (_, default)) in &real {
        if !default.is_empty() {
            let text = &documented[flag];
            assert!(
                text.contains(&format!("default `{default}`")) || text.contains(&format!("default {default}")),
                "docs/dashboard.md: {flag}'s default {default:?} is not in {text:?}"
            );
        }
    }
}
