//! `greet-top demo` as a user runs it: the `--once` report, and the live
//! dashboard in a real pseudo-terminal.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::Value;

use greet_tests::pty;
use pty::start_dashboard;

fn once_json(args: &[&str]) -> Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_greet-top"))
        .args(["demo", "--once", "5s", "--output", "json", "--rate", "100"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "greet-top demo failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

fn pods(report: &Value) -> Vec<(String, u64, f64)> {
    report["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["hits"].as_u64().unwrap(),
                p["share"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn once_in_sticky_mode_puts_every_hit_on_one_pod() {
    let report = once_json(&[]);
    assert_eq!(report["mode"], "sticky");
    let total = report["total"].as_u64().unwrap();
    // 100 req/s for 5 s; allow for start-up and scheduling on a busy machine.
    assert!(total >= 250, "only {total} requests in 5 s at 100/s");
    let pods = pods(&report);
    assert_eq!(pods.len(), 3, "{pods:?}");
    let with_hits: Vec<_> = pods.iter().filter(|(_, hits, _)| *hits > 0).collect();
    assert_eq!(with_hits.len(), 1, "{pods:?}");
    assert_eq!(with_hits[0].1, total);
    assert_eq!(with_hits[0].2, 1.0);
    for pod in report["pods"].as_array().unwrap() {
        assert!(pod["name"].as_str().unwrap().starts_with("greetserver-demo-"));
        assert!(pod["ip"].as_str().unwrap().starts_with("127.0.0."));
        assert_eq!(pod["ready"], true);
        let rps = pod["rps"]
            .as_f64()
            .unwrap_or_else(|| panic!("rps is not a number in {pod}"));
        let (p50, p99) = (&pod["p50_ms"], &pod["p99_ms"]);
        if pod["hits"] == 0 {
            assert_eq!(rps, 0.0, "{pod}");
            assert!(
                p50.is_null() && p99.is_null(),
                "a pod that answered nothing has no latency: {pod}"
            );
        } else {
            assert!(rps > 0.0, "{pod}");
            let (p50, p99) = (p50.as_f64().unwrap(), p99.as_f64().unwrap());
            assert!(0.0 < p50 && p50 <= p99, "{pod}");
        }
    }
}

#[test]
fn once_in_balanced_mode_gives_every_pod_an_equal_share() {
    let report = once_json(&["--mode", "balanced"]);
    assert_eq!(report["mode"], "balanced");
    let pods = pods(&report);
    assert_eq!(pods.len(), 3, "{pods:?}");
    for (name, hits, share) in &pods {
        assert!(*hits > 0, "{name} got nothing");
        assert!(
            (share - 1.0 / 3.0).abs() <= 0.05 / 3.0,
            "{name}: share {share} is not within ±5 % of 1/3"
        );
    }
}

/// The fields of each demo pod row in the pods table: POD READY REQ
/// [ERR OK%] SHARE RPS P50 P99 at this width.
fn pod_fields(screen: &str) -> Vec<Vec<&str>> {
    screen
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim_matches(|c| c == '│' || c == ' ').split_whitespace().collect();
            let share = fields.iter().skip(3).any(|f| f.ends_with('%') || *f == "–");
            (fields.len() >= 7 && fields[0].contains("greetserver-demo-") && share).then_some(fields)
        })
        .collect()
}

/// (pod name, requests in the window) of each demo pod row.
fn pod_rows(screen: &str) -> Vec<(String, u64)> {
    pod_fields(screen)
        .into_iter()
        .filter_map(|fields| Some((fields[0].to_owned(), fields[2].parse().ok()?)))
        .collect()
}

/// The colours an SGR sequence (`ESC [ ... m`) in `raw` sets, as its parameters.
fn colour_sequences(raw: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(raw);
    text.split("\u{1b}[")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
            (rest[end..].starts_with('m')).then(|| rest[..end].to_owned())
        })
        .filter(|params| {
            // 30-49 and 90-107 set a foreground or background colour (38/48: extended).
            params
                .split(';')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|p| (30..=49).contains(&p) && p != 39 && p != 49 || (90..=107).contains(&p))
        })
        .collect()
}

#[test]
fn no_color_from_the_environment_turns_every_colour_off() {
    for no_color in [false, true] {
        let env: &[(&str, &str)] = if no_color { &[("NO_COLOR", "1")] } else { &[] };
        let dashboard = start_dashboard(&["demo", "--rate", "20"], env);
        dashboard
            .screen
            .wait_for("the dashboard", Duration::from_secs(30), |s| {
                s.contains("STICKY") && pod_rows(s).len() == 3
            });
        let colours = colour_sequences(&dashboard.screen.raw.lock().unwrap());
        // The mode badge: reversed without colours, black on yellow with them
        // (crossterm drops colour codes under NO_COLOR by itself, so the
        // badge's style shows whether greet-top's own theme honoured it).
        let (inverse, background) = dashboard.screen.style_of("STICKY");
        if no_color {
            assert_eq!(colours, Vec::<String>::new(), "NO_COLOR=1 but colours were drawn");
            assert!(inverse, "NO_COLOR=1: the badge must be reversed to stand out");
        } else {
            assert!(!colours.is_empty(), "without NO_COLOR the badge and bars are coloured");
            assert!(!inverse);
            assert_eq!(background, vt100::Color::Idx(3), "the sticky badge is yellow");
        }
        dashboard.quit();
    }
}

#[test]
fn dashboard_in_a_pty_shows_sticky_then_spreads_after_m_and_quits_cleanly() {
    let mut dashboard = start_dashboard(&["demo", "--rate", "100"], &[]);
    let screen = &dashboard.screen;

    // Sticky: three pods listed, one of them takes every hit.
    let sticky = screen.wait_for("three pods with hits on one", Duration::from_secs(30), |s| {
        let rows = pod_rows(s);
        s.contains("STICKY") && rows.len() == 3 && rows.iter().any(|(_, hits)| *hits >= 50)
    });
    assert!(!dashboard.canonical(), "the dashboard runs in raw mode");
    let rows = pod_rows(&sticky);
    assert_eq!(rows.iter().filter(|(_, hits)| *hits > 0).count(), 1, "{sticky}");
    assert!(sticky.contains("STUCK — press m to balance"), "{sticky}");

    dashboard.keys.write_all(b"m").unwrap();
    dashboard.keys.flush().unwrap();
    screen.wait_for("the BALANCED badge", Duration::from_secs(10), |s| {
        s.contains("BALANCED")
    });
    // Every pod, the two idle ones included, has at least 30 requests in the window.
    let spread = screen.wait_for("requests on every pod", Duration::from_secs(30), |s| {
        let now = pod_rows(s);
        now.len() == 3 && now.iter().all(|(_, requests)| *requests >= 30)
    });
    assert!(!spread.contains("STUCK"), "{spread}");

    let leave = b"\x1b[?1049l";
    let left_before = screen.count(leave);
    dashboard.keys.write_all(b"q").unwrap();
    dashboard.keys.flush().unwrap();
    let pressed = Instant::now();
    // q restores the terminal at once, whatever the demo still has to stop.
    loop {
        if screen.count(leave) > left_before {
            break;
        }
        assert!(
            pressed.elapsed() < Duration::from_secs(1),
            "q did not restore the terminal within 1 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Raw mode is switched off too (polled: it is the last step of the restore).
    while !dashboard.canonical() {
        assert!(
            pressed.elapsed() < Duration::from_secs(2),
            "raw mode still on 2 s after q"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    dashboard.exits_cleanly();
    dashboard.assert_restored();
}

#[test]
fn killing_the_pinned_pod_asks_first_then_shows_it_gone_and_marks_the_chart() {
    let mut dashboard = start_dashboard(&["demo", "--rate", "100"], &[]);
    let screen = &dashboard.screen;
    let sticky = screen.wait_for("hits on one pod", Duration::from_secs(30), |s| {
        pod_rows(s).iter().any(|(_, hits)| *hits >= 50)
    });
    let pinned = pod_rows(&sticky)
        .into_iter()
        .max_by_key(|(_, hits)| *hits)
        .map(|(name, _)| name)
        .unwrap();
    dashboard.press(b"x");
    let screen = &dashboard.screen;
    screen.wait_for("the kill to ask first", Duration::from_secs(10), |s| {
        s.contains(&format!("kill {pinned}? press x again to confirm"))
    });
    let pinned_gone = |s: &str| s.lines().any(|l| l.contains(&pinned) && l.contains(" gone "));
    assert!(!pinned_gone(&screen.text()), "one press kills nothing");
    dashboard.press(b"x");
    let screen = &dashboard.screen;
    // The pod is shown gone, the Service sends the traffic to another one,
    // and the chart marks the second it went (once that second is drawn:
    // the traffic can move within the second of the kill).
    let marks = |s: &str| {
        s.lines()
            .find_map(|l| l.split("B/S mode x gone r back").nth(1))
            .is_some_and(|marks| marks.contains('x'))
    };
    screen.wait_for(
        "the pod gone, another one busy, the kill marked",
        Duration::from_secs(30),
        |s| {
            let moved = pod_rows(s).iter().any(|(name, hits)| *name != pinned && *hits >= 20);
            pinned_gone(s) && moved && marks(s)
        },
    );
    dashboard.quit();
}

#[test]
fn g_sets_a_max_connection_age_that_rotates_the_sticky_pod_and_g_again_clears_it() {
    let mut dashboard = start_dashboard(&["demo", "--rate", "100"], &[]);
    let sticky = dashboard
        .screen
        .wait_for("hits on one pod", Duration::from_secs(30), |s| {
            pod_rows(s).iter().any(|(_, hits)| *hits >= 50)
        });
    assert!(!sticky.contains("max age"), "{sticky}");
    dashboard.press(b"g");
    let screen = &dashboard.screen;
    screen.wait_for("the age in the header", Duration::from_secs(10), |s| {
        s.contains("max age 3s") && s.contains("every pod now sends GOAWAY to connections older than 3 s")
    });
    // Still sticky, but each connection lives 3 s: every pod gets its turn,
    // so within one 10 s window each has requests.
    let rotated = screen.wait_for("every pod serving in turn", Duration::from_secs(30), |s| {
        let now = pod_rows(s);
        now.len() == 3 && now.iter().all(|(_, requests)| *requests >= 20)
    });
    assert!(rotated.contains("STICKY") && !rotated.contains("errors"), "{rotated}");
    dashboard.press(b"g");
    let screen = &dashboard.screen;
    screen.wait_for("the age cleared", Duration::from_secs(10), |s| {
        !s.contains("max age") && s.contains("max connection age off")
    });
    // One connection again, kept: one pod has the whole window once more.
    screen.wait_for("one pod stuck again", Duration::from_secs(30), |s| {
        s.contains("STUCK — press m to balance: 100 %")
    });
    dashboard.quit();
}

#[test]
fn r_after_a_kill_forgets_the_dead_pod_and_keeps_counting_true() {
    let mut dashboard = start_dashboard(&["demo", "--rate", "50", "--mode", "balanced"], &[]);
    let screen = &dashboard.screen;
    screen.wait_for("requests on every pod", Duration::from_secs(30), |s| {
        let rows = pod_rows(s);
        rows.len() == 3 && rows.iter().all(|(_, requests)| *requests >= 20)
    });
    dashboard.press(b"x");
    dashboard.press(b"x");
    let screen = &dashboard.screen;
    screen.wait_for("a pod gone", Duration::from_secs(15), |s| {
        pod_fields(s).iter().any(|f| f[1] == "gone")
    });
    dashboard.press(b"r");
    let screen = &dashboard.screen;
    // Within a few seconds: two pods, both with latency again, the dead one
    // forgotten though the gateway keeps reporting its lifetime totals.
    let after = screen.wait_for("two live pods with latency", Duration::from_secs(15), |s| {
        let rows = pod_fields(s);
        s.contains("Pods (2)")
            && rows.len() == 2
            && rows
                .iter()
                .all(|f| f[1] == "yes" && f[f.len() - 2] != "–" && f[2] != "0")
    });
    // Nothing the dead pod counted before turned into traffic: at 50 req/s
    // no second after the reset holds more than a burst's worth.
    let peak: u64 = after
        .lines()
        .find_map(|l| l.split("peak ").nth(1))
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak on the chart:\n{after}"));
    assert!(peak <= 100, "peak {peak}/s at a load of 50/s:\n{after}");
    // And it stays so over several summaries.
    std::thread::sleep(Duration::from_secs(2));
    let later = dashboard.screen.text();
    assert!(later.contains("Pods (2)") && pod_fields(&later).len() == 2, "{later}");
    dashboard.quit();
}
