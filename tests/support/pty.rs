//! `greet-top` in a real pseudo-terminal for the tests: its output parsed by
//! vt100 as it comes, keys written to it, its exit waited for.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{CommandBuilder, PtySize, native_pty_system};

/// A screen fed by the child's output in a background thread.
pub struct Screen {
    pub parser: Arc<Mutex<vt100::Parser>>,
    pub raw: Arc<Mutex<Vec<u8>>>,
}

impl Screen {
    /// How often `needle` occurs in everything the program wrote.
    pub fn count(&self, needle: &[u8]) -> usize {
        self.raw
            .lock()
            .unwrap()
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    }

    /// Whether the first cell of `word` on screen is reversed, and its background.
    pub fn style_of(&self, word: &str) -> (bool, vt100::Color) {
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

    pub fn text(&self) -> String {
        self.parser.lock().unwrap().screen().contents()
    }

    /// Waits until `check` holds for the screen text; panics with the screen after `within`.
    pub fn wait_for(&self, what: &str, within: Duration, check: impl Fn(&str) -> bool) -> String {
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

/// `greet-top ARGS` running in a 90x30 pseudo-terminal, its output parsed as it comes.
pub struct Dashboard {
    pub screen: Screen,
    pub master: Box<dyn portable_pty::MasterPty + Send>,
    pub child: Box<dyn portable_pty::Child + Send + Sync>,
    pub keys: Box<dyn Write + Send>,
    pub eof: std::sync::mpsc::Receiver<()>,
}

pub fn start_dashboard(args: &[&str], env: &[(&str, &str)]) -> Dashboard {
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
    pub fn press(&mut self, key: &[u8]) {
        self.keys.write_all(key).unwrap();
        self.keys.flush().unwrap();
    }

    /// Presses q and waits for a clean exit.
    pub fn quit(mut self) {
        self.press(b"q");
        self.exits_cleanly();
    }

    /// Waits for the exit after q; it must be a success.
    pub fn exits_cleanly(&mut self) {
        let status = self.exit_status("q");
        assert!(status.success(), "exit status {status:?}");
    }

    /// Waits up to 10 s for the process to exit after `what`.
    pub fn exit_status(&mut self, what: &str) -> portable_pty::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "greet-top did not exit within 10 s of {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the PTY is in canonical (cooked) mode, as a shell expects it.
    pub fn canonical(&self) -> bool {
        let termios = self.master.get_termios().expect("the PTY's termios");
        termios.local_flags.contains(nix::sys::termios::LocalFlags::ICANON)
    }

    /// After the exit: everything written has been read (EOF), and the
    /// terminal is back as it was: cooked mode, main screen, cursor visible.
    pub fn assert_restored(&self) {
        self.eof
            .recv_timeout(Duration::from_secs(5))
            .expect("the PTY reached EOF after the exit");
        assert!(self.canonical(), "raw mode still on after the exit");
        let parser = self.screen.parser.lock().unwrap();
        assert!(!parser.screen().alternate_screen(), "still on the alternate screen");
        assert!(!parser.screen().hide_cursor(), "cursor still hidden");
    }
}
