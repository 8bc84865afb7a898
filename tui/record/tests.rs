//! The format: round trips, and each kind of damage with its exact message.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use proptest::prelude::*;

use super::format::{self, AppSpec, Entry, Header, ViewsSpec, What};
use super::reader::{Cause, Damage, RecordingError, open};
use super::*;
use crate::state::{AppEvent, GatewayEvent, PodInfo, PodTotals, Request};

pub(crate) fn header() -> Header {
    Header {
        greet_top: "0.1.0".into(),
        sources: vec!["demo".into()],
        started_unix_ms: 1_700_000_000_000,
        part: 0,
        views: ViewsSpec::Single(AppSpec::new("http://127.0.0.1:9092 (demo)")),
    }
}

/// A fresh, empty directory of this test's own.
pub(crate) fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("greet-top-record-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

fn entry(at_ms: u64, what: What) -> Entry {
    Entry {
        at_us: at_ms * 1000,
        what,
    }
}

fn request(pod: &str) -> AppEvent {
    AppEvent::Gateway {
        gateway: "gw".into(),
        event: GatewayEvent::Request(Request {
            seq: 1,
            name: pod.into(),
            ip: "10.0.0.1".into(),
            latency_us: 900,
            ..Request::default()
        }),
    }
}

/// A file of the header and `entries`, as the writer lays them out.
fn write_file(path: &Path, entries: &[Entry], start: Instant) -> Vec<u64> {
    let mut bytes = format::preamble(&header()).expect("a header");
    let mut offsets = Vec::new();
    for entry in entries {
        offsets.push(bytes.len() as u64);
        bytes.extend(format::entry_frame(entry, start).expect("a frame"));
    }
    std::fs::write(path, bytes).expect("the file");
    offsets
}

/// Every entry up to the end or the damage.
fn read_all(path: &Path, start: Instant) -> Result<(Vec<Entry>, Option<Damage>), RecordingError> {
    let mut opened = open(path)?;
    let mut entries = Vec::new();
    loop {
        match opened.frames.next_entry(start) {
            Ok(Some(entry)) => entries.push(entry),
            Ok(None) => return Ok((entries, None)),
            Err(damage) => return Ok((entries, Some(damage))),
        }
    }
}

fn three_entries() -> Vec<Entry> {
    vec![
        entry(100, What::Event(request("pod-a"))),
        entry(243_000, What::Tick),
        entry(243_500, What::Event(request("pod-b"))),
    ]
}

#[test]
fn offsets_read_as_the_screen_says_them() {
    assert_eq!(offset_text(Duration::from_secs(243)), "+4m03s");
    assert_eq!(offset_text(Duration::from_millis(600)), "+0m00s");
    assert_eq!(offset_text(Duration::from_secs(3723)), "+1h02m03s");
}

/// The file of [`three_entries`] with `damage` done to its bytes (given
/// each frame's offset): how many entries read, the damage's message, the
/// offsets and the path.
fn damaged(name: &str, damage: impl FnOnce(&mut Vec<u8>, &[u64])) -> (usize, String, Vec<u64>, PathBuf) {
    let path = scratch(name).join("recording.grt");
    let start = Instant::now();
    let offsets = write_file(&path, &three_entries(), start);
    let mut bytes = std::fs::read(&path).expect("read");
    damage(&mut bytes, &offsets);
    std::fs::write(&path, bytes).expect("write");
    let (entries, damage) = read_all(&path, start).expect("opens");
    let message = damage.map(|d| d.to_string()).unwrap_or_default();
    (entries.len(), message, offsets, path)
}

#[test]
fn a_truncated_frame_replays_up_to_it_and_says_where() {
    let (read, message, offsets, path) = damaged("truncated", |bytes, _| bytes.truncate(bytes.len() - 3));
    assert_eq!(read, 2);
    let expected = format!(
        "{}: truncated frame at byte {} (recorded +4m03s): replayed up to there — \
         the recorder was killed or the disk filled",
        path.display(),
        offsets[2]
    );
    assert_eq!(message, expected);
}

#[test]
fn a_corrupt_frame_fails_its_checksum() {
    let (read, message, offsets, path) = damaged("corrupt", |bytes, offsets| bytes[offsets[1] as usize + 9] ^= 0x55);
    assert_eq!(read, 1);
    let expected = format!(
        "{}: checksum mismatch in the frame at byte {} (recorded +0m00s): replayed up to there — \
         the file was damaged after it was written",
        path.display(),
        offsets[1]
    );
    assert_eq!(message, expected);
}

#[test]
fn a_huge_length_is_damage_not_an_allocation() {
    let (read, message, offsets, path) = damaged("huge", |bytes, offsets| {
        let at = offsets[2] as usize;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    assert_eq!(read, 2);
    let expected = format!(
        "{}: the frame at byte {} (recorded +4m03s) claims 4294967295 bytes, over the 16777216 limit: \
         replayed up to there — the file is damaged",
        path.display(),
        offsets[2]
    );
    assert_eq!(message, expected);
}

#[test]
fn a_checked_frame_that_does_not_decode_is_damage() {
    let dir = scratch("undecodable");
    let path = dir.join("recording.grt");
    let mut bytes = format::preamble(&header()).expect("a header");
    let at = bytes.len();
    bytes.extend(format::frame(&[0x05, 0xff]));
    std::fs::write(&path, bytes).expect("write");
    let (entries, damage) = read_all(&path, Instant::now()).expect("opens");
    assert!(entries.is_empty());
    let damage = damage.expect("damage");
    assert_eq!(damage.byte, at as u64);
    assert!(matches!(damage.cause, Cause::Undecodable(_)), "{damage:?}");
}

#[test]
fn an_offset_past_ten_years_is_damage() {
    let path = scratch("far").join("recording.grt");
    let start = Instant::now();
    write_file(
        &path,
        &[
            entry(1, What::Tick),
            Entry {
                at_us: u64::MAX,
                what: What::Tick,
            },
        ],
        start,
    );
    let (entries, damage) = read_all(&path, start).expect("opens");
    assert_eq!(entries.len(), 1);
    let cause = damage.expect("damage").cause;
    assert_eq!(
        cause,
        Cause::Undecodable("an entry 18446744073709551615 µs after the start".into())
    );
}

#[test]
fn files_that_cannot_be_replayed_say_why() {
    let dir = scratch("fatal");
    let name = |file: &str| dir.join(file).display().to_string();
    std::fs::write(dir.join("empty.grt"), b"").expect("write");
    std::fs::write(dir.join("magic.grt"), b"{\"not\": \"a recording\"}").expect("write");
    let mut newer = format::MAGIC.to_vec();
    newer.extend_from_slice(&7u16.to_le_bytes());
    std::fs::write(dir.join("newer.grt"), newer).expect("write");
    let cases = [
        (
            "empty.grt",
            format!(
                "{}: empty file — nothing was recorded (greet-top stopped before its first write)",
                name("empty.grt")
            ),
        ),
        (
            "magic.grt",
            format!(
                "{}: not a greet-top recording (wrong magic) — pass a file written by greet-top --record",
                name("magic.grt")
            ),
        ),
        (
            "newer.grt",
            format!(
                "{}: format version 7, newer than this greet-top reads (≤ 1) — replay it with a newer greet-top",
                name("newer.grt")
            ),
        ),
    ];
    for (file, message) in cases {
        let err = open(&dir.join(file)).expect_err(file);
        assert_eq!(err.to_string(), message);
    }
}

#[test]
fn text_from_the_file_is_sanitised_again() {
    let dir = scratch("sanitise");
    let path = dir.join("recording.grt");
    let start = Instant::now();
    let entries = vec![
        entry(1, What::Event(request("pod\x1b[2J-a"))),
        entry(2, What::Key(KeyEvent::new(KeyCode::Char('\x07'), KeyModifiers::NONE))),
        entry(3, What::Key(KeyEvent::new(KeyCode::Char('s'), KeyModifiers::NONE))),
    ];
    write_file(&path, &entries, start);
    let (read, damage) = read_all(&path, start).expect("opens");
    assert_eq!(damage, None);
    assert_eq!(read.len(), 2, "the bell is no key: dropped");
    let What::Event(AppEvent::Gateway {
        event: GatewayEvent::Request(request),
        ..
    }) = &read[0].what
    else {
        panic!("a request: {read:?}");
    };
    assert_eq!(request.name, "pod[2J-a");
}

#[test]
fn the_writer_writes_what_the_reader_reads_and_rotates_past_the_limit() {
    let dir = scratch("writer");
    let path = dir.join("recording.grt");
    let start = Instant::now();
    let recorder = Recorder::create(&path, header(), 400, start).expect("records");
    for i in 0..20u64 {
        recorder.event(&request(&format!("pod-{i}")), start + Duration::from_millis(i * 100));
    }
    recorder.tick(start + Duration::from_secs(3));
    recorder.finish().expect("finished");
    let previous = writer::rotated_path(&path);
    let (old, damage) = read_all(&previous, start).expect("the previous part opens");
    assert_eq!(damage, None);
    let (new, damage) = read_all(&path, start).expect("the current part opens");
    assert_eq!(damage, None);
    assert!(!old.is_empty() && !new.is_empty());
    assert!(open(&path).expect("opens").header.part >= 1);
    assert!(matches!(new.last().map(|e| &e.what), Some(What::Tick)));
    assert_eq!(new.last().map(Entry::at), Some(Duration::from_secs(3)));
}

/// The proptest's offset 0, shared by its strategies and its body.
static START: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

fn text() -> impl Strategy<Value = String> {
    "[a-z0-9 .:/_-]{0,24}"
}

fn pod_info() -> impl Strategy<Value = PodInfo> {
    (
        text(),
        text(),
        any::<bool>(),
        proptest::option::of(text()),
        proptest::option::of(0u64..10_000_000),
    )
        .prop_map(|(name, ip, ready, down, created)| PodInfo {
            name,
            ip,
            ready,
            down,
            // Whole microseconds: what the file keeps of an instant.
            created: created.map(|us| *START + Duration::from_micros(us)),
            ..PodInfo::default()
        })
}

fn event() -> impl Strategy<Value = AppEvent> {
    prop_oneof![
        (text(), text(), 0u64..u64::MAX, -20i32..20).prop_map(|(gateway, name, latency_us, grpc_code)| {
            AppEvent::Gateway {
                gateway,
                event: GatewayEvent::Request(Request {
                    name,
                    latency_us,
                    grpc_code,
                    ..Request::default()
                }),
            }
        }),
        proptest::collection::vec(
            (text(), any::<u64>(), proptest::collection::vec(any::<u64>(), 0..8)),
            0..6
        )
        .prop_map(|pods| AppEvent::Gateway {
            gateway: "gw".into(),
            event: GatewayEvent::Summary(
                pods.into_iter()
                    .map(|(name, requests, buckets)| PodTotals {
                        name,
                        requests,
                        latency_buckets: Some(buckets),
                        ..PodTotals::default()
                    })
                    .collect()
            ),
        }),
        proptest::collection::vec(pod_info(), 0..5).prop_map(AppEvent::Pods),
        (text(), text(), 0u64..1_000_000).prop_map(|(gateway, error, ms)| AppEvent::Disconnected {
            gateway,
            error,
            retry_in: Duration::from_millis(ms),
        }),
        (text(), any::<bool>()).prop_map(|(text, error)| AppEvent::Notice { text, error }),
    ]
}

proptest! {
    #[test]
    fn events_survive_the_file(events in proptest::collection::vec((event(), 0u64..10_000_000_000), 1..20)) {
        let dir = scratch("proptest");
        let path = dir.join("recording.grt");
        let start = *START;
        let entries: Vec<Entry> = events
            .into_iter()
            .map(|(event, at_us)| Entry { at_us, what: What::Event(event) })
            .collect();
        write_file(&path, &entries, start);
        let (read, damage) = read_all(&path, start).expect("opens");
        prop_assert_eq!(damage, None);
        prop_assert_eq!(format!("{read:?}"), format!("{entries:?}"));
    }
}

#[test]
fn the_recorder_encodes_each_kind_of_entry_as_the_reader_decodes_it() {
    let start = Instant::now();
    let key = KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE);
    let event = request("pod-a");
    let observed = Duration::from_secs(5);
    let kinds = [
        (What::Event(event.clone()), format::WhatRef::Event(&event)),
        (What::Tick, format::WhatRef::Tick),
        (What::Key(key), format::WhatRef::Key(key)),
        (What::Reported { observed }, format::WhatRef::Reported { observed }),
    ];
    for (what, by_ref) in kinds {
        let owned = format::entry_record(&Entry { at_us: 1_234_567, what }, start).expect("encodes");
        // Appended after what a block already holds, the event by reference.
        let mut appended = vec![7u8];
        let len = format::append_record(
            &mut appended,
            &format::EntryRef {
                at_us: 1_234_567,
                what: by_ref,
            },
            start,
        )
        .expect("encodes");
        assert_eq!(appended[1..], owned[..]);
        assert_eq!(len + 4, owned.len());
    }
}
