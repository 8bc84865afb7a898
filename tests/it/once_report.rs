//! `greet-top --once`, run as a script would: the default table's exact
//! layout against the embedded demo, and a clear failure when the gateway
//! cannot be reached.

use std::process::{Command, Output};

const HEADER: &str =
    "POD                           IP               READY     HITS     ERR   SHARE      RPS   P50 ms   P99 ms";

fn greet_top(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", env!("CARGO_TARGET_TMPDIR"))
        .output()
        .expect("running greet-top")
}

/// The columns' right edges, from the header: every value is right-aligned
/// to its title (POD, IP and READY are left-aligned to theirs).
fn column_ends(header: &str) -> Vec<usize> {
    let mut ends = Vec::new();
    let bytes = header.as_bytes();
    for i in 0..bytes.len() {
        let ends_word = bytes[i] != b' ' && bytes.get(i + 1).is_none_or(|b| *b == b' ');
        // "P50 ms" and "P99 ms" are one title each.
        if ends_word && !header[..=i].ends_with("P50") && !header[..=i].ends_with("P99") {
            ends.push(i + 1);
        }
    }
    ends
}

#[test]
fn the_default_once_table_has_its_exact_layout_and_adds_up() {
    let output = greet_top(&[
        "demo", "--once", "2s", "--mode", "balanced", "--pods", "3", "--rate", "60",
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        6,
        "a summary, the verdict, the header and one row per pod:\n{stdout}"
    );

    let summary: Vec<&str> = lines[0].split("   ").collect();
    assert_eq!(summary[0], "mode: balanced", "{stdout}");
    let total: u64 = summary[1].strip_prefix("total: ").unwrap().parse().unwrap();
    assert_eq!(summary[2], "observed: 2.0s");
    let (fairness, window) = summary[3].strip_prefix("fairness: ").unwrap().split_once(' ').unwrap();
    assert!(window.starts_with("over the last "), "{stdout}");
    let fairness: f64 = fairness.parse().unwrap();
    assert!(fairness > 0.99, "round robin is even: {stdout}");
    assert!(
        summary[4].starts_with("at: 20") && summary[4].ends_with('Z'),
        "{stdout}"
    );
    assert_eq!(summary[5], "gateway: greetclient-demo");
    assert!(
        lines[1].starts_with("EVEN: 3 pods, fairness 1.00 over the last"),
        "{stdout}"
    );
    assert!(total >= 60, "60/s for 2 s: {total}");

    assert_eq!(lines[2], HEADER);
    let ends = column_ends(HEADER);
    assert_eq!(ends.len(), 9);
    let mut ips = Vec::new();
    let mut hits_sum = 0;
    for row in &lines[3..] {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells.len(), 9, "{row:?}");
        let [name, ip, ready, hits, errors, share, rps, p50, p99] = cells[..] else {
            unreachable!()
        };
        assert_eq!(errors, "0", "{row:?}");
        assert!(name.starts_with("greetserver-demo-"), "{row:?}");
        assert_eq!(row.find(ip), Some(30), "IP starts under its title: {row:?}");
        assert_eq!(ready, "yes");
        // Right-aligned columns end exactly where their titles end.
        for (value, end) in [hits, errors, share, rps, p50, p99].into_iter().zip(&ends[3..]) {
            assert_eq!(&row[end - value.len()..*end], value, "{value} in {row:?}");
        }
        let hits: u64 = hits.parse().unwrap();
        // Round robin: each pod within one request of an equal share.
        assert!(hits.abs_diff(total / 3) <= 1, "{hits} of {total}:\n{stdout}");
        let expected_share = format!("{:.1}%", 100.0 * hits as f64 / total as f64);
        assert_eq!(share, expected_share);
        for latency in [p50, p99] {
            assert!(latency.parse::<f64>().is_ok_and(|ms| ms > 0.0), "{row:?}");
        }
        ips.push(ip.to_owned());
        hits_sum += hits;
    }
    assert_eq!(hits_sum, total, "every request is on a pod");
    ips.sort();
    assert_eq!(ips, ["127.0.0.11", "127.0.0.12", "127.0.0.13"]);
}

#[test]
fn once_against_an_unreachable_gateway_exits_1_and_says_why() {
    for format in ["table", "json"] {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let output = greet_top(&["--gateway", "http://127.0.0.1:1", "--once", "1s", "--output", format]);
        assert_eq!(output.status.code(), Some(1), "{format}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "",
            "{format}: no partial report"
        );
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(
            stderr.starts_with(
                "Error: could not reach the gateway's Observer at http://127.0.0.1:1 within 1s: gateway unreachable"
            ),
            "{format}: {stderr}"
        );
        assert!(
            stderr.trim_end().ends_with("(is it running, or the port-forward up?)"),
            "{stderr}"
        );
    }
}

#[test]
fn fail_on_stuck_exits_3_after_the_report_and_says_why() {
    let output = greet_top(&[
        "demo",
        "--once",
        "2s",
        "--pods",
        "3",
        "--rate",
        "60",
        "--output",
        "markdown",
        "--fail-on",
        "stuck,errors",
    ]);
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(3), "{stdout}\n{stderr}");
    assert!(
        stderr.starts_with("greet-top: --fail-on stuck: STUCK: 100 % on greetserver-demo-"),
        "{stderr}"
    );
    // The report came first, in Markdown: the verdict quoted, a table row per pod.
    assert!(stdout.starts_with("**greet-top** · mode **sticky** · "), "{stdout}");
    assert!(stdout.contains("\n> STUCK: 100 % on"), "{stdout}");
    assert!(!stdout.contains("press"), "no key hints in a report: {stdout}");
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("| greetserver-demo-")).count(),
        3,
        "{stdout}"
    );

    // Balanced and without failures, the same conditions let it exit 0.
    let output = greet_top(&[
        "demo",
        "--once",
        "2s",
        "--mode",
        "balanced",
        "--rate",
        "60",
        "--fail-on",
        "stuck,errors",
    ]);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn report_flags_without_once_and_once_zero_are_usage_errors_naming_the_flag() {
    let output = greet_top(&["--gateway", "http://127.0.0.1:1", "--fail-on", "errors>1%"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: --fail-on needs --once: without it greet-top runs the dashboard, which prints no report; add \
             e.g. --once 10s\n"
        ),
        "{stderr}"
    );
    let output = greet_top(&["demo", "--once", "0s"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.starts_with(
            "error: invalid value '0s' for '--once <DURATION>': a report over no time counts nothing; give how \
             long to observe, e.g. 10s\n"
        ),
        "{stderr}"
    );
}
