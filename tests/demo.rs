//! `greet-top demo` as a user runs it: the `--once` report, and the live
//! dashboard in a real pseudo-terminal.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use serde_json::Value;

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

/// A screen fed by the child's output in a background thread.
struct Screen {
    parser: Arc<Mutex<vt100::Parser>>,
    raw: Arc<Mutex<Vec<u8>>>,
}

impl Screen {
    /// How often `needle` occurs in everything the program wrote.
    fn count(&self, needle: &[u8]) -> usize {
        self.raw
            .lock()
            .unwrap()
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    /// Whether the first cell of `word` on screen is reversed, and its background.
    fn style_of(&self, word: &str) -> (bool, vt100::Color) {
        let parser = self.parser.lock().unwrap();
        let screen = parser.screen();
        let (_, cols) = screen.size();
        for (row, line) in screen.rows(0, cols.get()).enumerate() {
            if let Some(at) = line.find(word) {
                let col = line[..at].chars().count();
                let cell = screen.cell(row as u16, col as u16).unwrap();
                return (cell.inverse(), cell.bgcolor());
            }
        }
        panic!("{word} is not on the screen:\n{}", screen.contents());
    }

    fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `check` holds for the screen text; panics with the screen after `within`.
    fn wait_for(&self, what: &str, within: Duration, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + within;
        loop {
            let text = self.text();
            if check(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// (pod name, hits) of each demo pod row in the pods table.
fn pod_rows(screen: &str) -> Vec<(String, u64)> {
    screen
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.trim_matches(|c| c == '│' || c == ' ').split_whitespace().collect();
            // POD READY HITS SHARE RPS P50 P99 at this width.
            if fields.len() >= 7 && fields[0].contains("greetserver-demo-") && fields[3].ends_with('%') {
                Some((fields[0].to_owned(), fields[2].parse().ok()?))
            } else {
                None
            }
        })
        .collect()
}

/// `greet-top ARGS` running in a 90x30 pseudo-terminal, its output parsed as it comes.
struct Dashboard {
    screen: Screen,
    master: Box<dyn portable_pty::MasterPty + Send>,
    child: Box<dyn portable_pty::Child + Send + Sync>,
    keys: Box<dyn Write + Send>,
    eof: std::sync::mpsc::Receiver<()>,
}

fn start_dashboard(args: &[&str], env: &[(&str, &str)]) -> Dashboard {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 30,
            cols: 90,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut command = CommandBuilder::new(env!("CARGO_BIN_EXE_greet-top"));
    command.args(args);
    command.env("TERM", "xterm-256color");
    command.env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    let child = pty.slave.spawn_command(command).unwrap();
    drop(pty.slave);

    let screen = Screen {
        parser: Arc::new(Mutex::new(vt100::Parser::new(
            std::num::NonZeroU16::new(30).unwrap(),
            std::num::NonZeroU16::new(90).unwrap(),
            0,
        ))),
        raw: Arc::new(Mutex::new(Vec::new())),
    };
    let mut reader = pty.master.try_clone_reader().unwrap();
    let (parser, raw) = (Arc::clone(&screen.parser), Arc::clone(&screen.raw));
    let (eof_tx, eof) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            parser.lock().unwrap().process(&buf[..n]);
            raw.lock().unwrap().extend_from_slice(&buf[..n]);
        }
        let _ = eof_tx.send(());
    });
    let keys = pty.master.take_writer().unwrap();
    Dashboard {
        screen,
        master: pty.master,
        child,
        keys,
        eof,
    }
}

impl Dashboard {
    fn press(&mut self, key: &[u8]) {
        self.keys.write_all(key).unwrap();
        self.keys.flush().unwrap();
    }

    /// Presses q and waits for a clean exit.
    fn quit(mut self) {
        self.press(b"q");
        self.exits_cleanly();
    }

    /// Waits for the exit after q; it must be a success.
    fn exits_cleanly(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "greet-top did not exit within 10 s of q");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(status.success(), "exit status {status:?}");
    }
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
    let canonical = |master: &dyn portable_pty::MasterPty| {
        let termios = master.get_termios().expect("the PTY's termios");
        termios.local_flags.contains(nix::sys::termios::LocalFlags::ICANON)
    };
    assert!(!canonical(&*dashboard.master), "the dashboard runs in raw mode");
    let rows = pod_rows(&sticky);
    assert_eq!(rows.iter().filter(|(_, hits)| *hits > 0).count(), 1, "{sticky}");
    assert!(sticky.contains("STUCK — press m to balance"), "{sticky}");

    dashboard.keys.write_all(b"m").unwrap();
    dashboard.keys.flush().unwrap();
    screen.wait_for("the BALANCED badge", Duration::from_secs(10), |s| {
        s.contains("BALANCED")
    });
    let at_switch = pod_rows(&screen.text());
    // Every pod, the two idle ones included, gains at least 30 hits.
    let spread = screen.wait_for("hits on every pod", Duration::from_secs(30), |s| {
        let now = pod_rows(s);
        now.len() == 3
            && now.iter().all(|(name, hits)| {
                let before = at_switch.iter().find(|(n, _)| n == name).map_or(0, |(_, h)| *h);
                *hits >= before + 30
            })
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
    while !canonical(&*dashboard.master) {
        assert!(
            pressed.elapsed() < Duration::from_secs(2),
            "raw mode still on 2 s after q"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    dashboard.exits_cleanly();
    // Everything the process wrote has been read once the PTY reports EOF.
    dashboard
        .eof
        .recv_timeout(Duration::from_secs(5))
        .expect("the PTY reached EOF after the exit");
    // Terminal restored: back on the main screen with the cursor visible.
    let parser = dashboard.screen.parser.lock().unwrap();
    assert!(!parser.screen().alternate_screen(), "still on the alternate screen");
    assert!(!parser.screen().hide_cursor(), "cursor still hidden");
}
