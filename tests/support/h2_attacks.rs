//! The hostile-client battery's attacks as bounded functions, so that the
//! benches run each one alike against the gateway's ingress, HAProxy and
//! Envoy, and report what the attacker's connection got back and when.
//! Every attack is bounded in count and time; traffic stays on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::raw_h2::{self, Raw, Seen};

/// What the attacker's connection got first, and how long after the
/// attack began (`None`: nothing within the attack's bound).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub what: String,
    pub after: Option<Duration>,
}

impl Answer {
    fn at(what: impl Into<String>, started: Instant) -> Answer {
        Answer {
            what: what.into(),
            after: Some(started.elapsed()),
        }
    }

    fn nothing(within: Duration) -> Answer {
        Answer {
            what: format!("nothing within {:.0} s", within.as_secs_f64()),
            after: None,
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.after {
            Some(after) => write!(f, "{} after {:.1} s", self.what, after.as_secs_f64()),
            None => f.write_str(&self.what),
        }
    }
}

/// An HTTP/2 error code's name (RFC 9113 7).
pub fn code_name(code: u32) -> String {
    let name = match code {
        0x0 => "NO_ERROR",
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x5 => "STREAM_CLOSED",
        0x7 => "REFUSED_STREAM",
        0x8 => "CANCEL",
        0xb => "ENHANCE_YOUR_CALM",
        other => return format!("code {other:#x}"),
    };
    name.to_owned()
}

/// A frame that answers the attacker (a GOAWAY, a reset, a close) in words.
fn answer_of(seen: &Seen) -> Option<String> {
    match seen {
        Seen::GoAway { code, .. } => Some(format!("GOAWAY {}", code_name(*code))),
        Seen::Reset { code, .. } => Some(format!("RST_STREAM {}", code_name(*code))),
        Seen::Closed => Some("TCP close".into()),
        _ => None,
    }
}

/// Everything the connection has seen so far; the first answer among it.
fn first_answer(raw: &mut Raw, started: Instant, found: &mut Option<Answer>) -> bool {
    let mut closed = false;
    while let Ok(seen) = raw.seen.try_recv() {
        closed |= seen == Seen::Closed || matches!(seen, Seen::GoAway { .. });
        if found.is_none()
            && let Some(what) = answer_of(&seen)
        {
            *found = Some(Answer::at(what, started));
        }
    }
    closed
}

/// The zero-window attacker: `INITIAL_WINDOW_SIZE` 0, never a WINDOW_UPDATE,
/// `calls` Greet calls whose answers echo a `name_bytes` name. The answer:
/// the first of its calls reset or failed, within `within`.
pub async fn zero_window(
    addr: SocketAddr,
    calls: usize,
    name_bytes: usize,
    within: Duration,
) -> anyhow::Result<Answer> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let (client, connection) = h2::client::Builder::new()
        .initial_window_size(0)
        .handshake::<_, Bytes>(tcp)
        .await?;
    let connection = tokio::spawn(connection);
    let name = "x".repeat(name_bytes);
    let started = Instant::now();
    let mut pending = tokio::task::JoinSet::new();
    for _ in 0..calls {
        let mut client = tokio::time::timeout(within, client.clone().ready()).await??;
        let request = http::Request::post(format!("http://gateway{}", raw_h2::GREET))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(())?;
        let (response, mut body) = client.send_request(request, false)?;
        body.send_data(Bytes::from(raw_h2::greet_message(&name)), true)?;
        pending.spawn(async move {
            // The body handle lives until the answer: dropping it resets nothing.
            let _body = body;
            match response.await {
                Ok(response) => match response.into_body().data().await {
                    Some(Err(err)) => err
                        .reason()
                        .map_or_else(|| format!("error: {err}"), |r| format!("RST_STREAM {r:?}")),
                    Some(Ok(_)) => "DATA despite a shut window".to_owned(),
                    None => "the answer ended".to_owned(),
                },
                Err(err) => err
                    .reason()
                    .map_or_else(|| format!("error: {err}"), |r| format!("RST_STREAM {r:?}")),
            }
        });
    }
    let first = tokio::time::timeout_at(started + within, pending.join_next()).await;
    let answer = match first {
        Ok(Some(Ok(what))) => Answer::at(what, started),
        Ok(Some(Err(_)) | None) => Answer::at("the client task failed", started),
        Err(_) => Answer::nothing(within),
    };
    pending.abort_all();
    connection.abort();
    Ok(answer)
}

/// The paced rapid reset: up to `streams` streams on one connection, each
/// HEADERS + DATA + RST_STREAM in one write, `pace` apart, until the server
/// says GOAWAY or closes. The answer, and how many streams were sent.
pub async fn rapid_reset(
    addr: SocketAddr,
    streams: usize,
    pace: Duration,
    within: Duration,
) -> anyhow::Result<(Answer, usize)> {
    let mut raw = Raw::try_connect(addr, &[], true).await?;
    let started = Instant::now();
    let (mut sent, mut answer) = (0, None);
    while sent < streams && started.elapsed() < within {
        let stream = raw.stream();
        let mut write = raw_h2::greet_call(stream, "rapid");
        write.extend(raw_h2::reset(stream, raw_h2::CANCEL));
        if !raw.write(&write).await {
            break;
        }
        sent += 1;
        if first_answer(&mut raw, started, &mut answer) {
            break;
        }
        tokio::time::sleep(pace).await;
    }
    if answer.is_none() {
        let wait = within.saturating_sub(started.elapsed()).min(Duration::from_secs(2));
        answer = raw
            .until(wait, |seen| answer_of(seen).map(|what| Answer::at(what, started)))
            .await;
    }
    Ok((answer.unwrap_or_else(|| Answer::nothing(within)), sent))
}

/// One call left open: HEADERS, then `body_bytes` of its message, no end.
pub fn open_call(stream: u32, body_bytes: usize) -> Vec<u8> {
    let mut call = raw_h2::frame(
        raw_h2::HEADERS,
        raw_h2::END_HEADERS,
        stream,
        &raw_h2::grpc_head(raw_h2::GREET),
    );
    let message = raw_h2::greet_message("held-stream-with-a-body");
    call.extend(raw_h2::frame(
        raw_h2::DATA,
        0,
        stream,
        &message[..body_bytes.min(message.len())],
    ));
    call
}

/// Cancel storm: `connections` connections one after another, each opening
/// `per_connection` calls (whole messages, the body left open), then
/// resetting them all in one write (even bursts) or closing under them
/// (odd ones). The first answer any burst got.
pub async fn cancel_storm(
    addr: SocketAddr,
    connections: usize,
    per_connection: usize,
    within: Duration,
) -> anyhow::Result<Answer> {
    let started = Instant::now();
    let mut answer = None;
    for burst in 0..connections {
        if started.elapsed() >= within {
            break;
        }
        let mut raw = Raw::try_connect(addr, &[], true).await?;
        let streams: Vec<u32> = (0..per_connection).map(|_| raw.stream()).collect();
        let calls: Vec<u8> = streams.iter().flat_map(|&s| open_call(s, usize::MAX)).collect();
        if raw.write(&calls).await && raw.round_trip().await && burst % 2 == 0 {
            let resets: Vec<u8> = streams.iter().flat_map(|&s| raw_h2::reset(s, raw_h2::CANCEL)).collect();
            if raw.write(&resets).await {
                raw.round_trip().await;
            }
        }
        first_answer(&mut raw, started, &mut answer);
    }
    Ok(answer.unwrap_or_else(|| Answer::nothing(within)))
}

/// Held streams: `connections` connections each opening `streams` calls
/// with `body_bytes` of body and no end, all held until dropped.
pub struct Held {
    pub connections: Vec<Raw>,
    pub started: Instant,
    /// The first answer any held connection got.
    pub first: Option<Answer>,
    /// Streams refused or reset so far.
    pub resets: usize,
}

impl Held {
    pub async fn open(addr: SocketAddr, connections: usize, streams: usize, body_bytes: usize) -> anyhow::Result<Held> {
        let started = Instant::now();
        let mut held = Held {
            connections: Vec::with_capacity(connections),
            started,
            first: None,
            resets: 0,
        };
        for _ in 0..connections {
            let mut raw = Raw::try_connect(addr, &[], true).await?;
            let mut calls: Vec<u8> = (0..streams).flat_map(|_| open_call(raw.stream(), body_bytes)).collect();
            // Its answer says the server has read the calls before it.
            calls.extend(raw_h2::frame(raw_h2::PING, 0, 0, &[0; 8]));
            raw.write(&calls).await;
            held.connections.push(raw);
        }
        // Polled round all connections, so that each answer's time is
        // when it came (within 10 ms), until every PING was answered.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut answered = vec![false; connections];
        while answered.iter().any(|a| !a) && Instant::now() < deadline {
            let Held {
                connections,
                first,
                resets,
                ..
            } = &mut held;
            for (raw, done) in connections.iter_mut().zip(&mut answered) {
                while let Ok(seen) = raw.seen.try_recv() {
                    *done |= matches!(seen, Seen::PingAck | Seen::Closed);
                    note(first, resets, started, &seen);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(held)
    }

    /// Takes in what the held connections have seen since.
    pub fn update(&mut self) {
        for raw in &mut self.connections {
            while let Ok(seen) = raw.seen.try_recv() {
                note(&mut self.first, &mut self.resets, self.started, &seen);
            }
        }
    }
}

impl Held {
    /// Keeps the hold, as an attacker that wants the gateway's streams
    /// would: takes in what the held connections have seen, opens a call
    /// with `body_bytes` of body in place of each stream reset, then waits
    /// (5 s at most) until every connection that sent one has had its PING
    /// answered, so the server has read them. Every reset seen meanwhile,
    /// as (connection index, stream, code).
    pub async fn keep_hold(&mut self, body_bytes: usize) -> Vec<(usize, u32, u32)> {
        let mut resets = Vec::new();
        let mut waiting = vec![false; self.connections.len()];
        for (i, raw) in self.connections.iter_mut().enumerate() {
            let mut calls = Vec::new();
            while let Ok(seen) = raw.seen.try_recv() {
                note(&mut self.first, &mut self.resets, self.started, &seen);
                if let Seen::Reset { stream, code } = seen {
                    resets.push((i, stream, code));
                    calls.extend(open_call(raw.stream(), body_bytes));
                }
            }
            if !calls.is_empty() {
                calls.extend(raw_h2::frame(raw_h2::PING, 0, 0, &[0; 8]));
                waiting[i] = raw.write(&calls).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while waiting.iter().any(|w| *w) && Instant::now() < deadline {
            for (i, (raw, wait)) in self.connections.iter_mut().zip(&mut waiting).enumerate() {
                while let Ok(seen) = raw.seen.try_recv() {
                    *wait &= !matches!(seen, Seen::PingAck | Seen::Closed);
                    note(&mut self.first, &mut self.resets, self.started, &seen);
                    if let Seen::Reset { stream, code } = seen {
                        resets.push((i, stream, code));
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        resets
    }
}

/// Counts a reset, and keeps the first answer.
fn note(first: &mut Option<Answer>, resets: &mut usize, started: Instant, seen: &Seen) {
    *resets += usize::from(matches!(seen, Seen::Reset { .. }));
    if first.is_none()
        && let Some(what) = answer_of(seen)
    {
        *first = Some(Answer::at(what, started));
    }
}

/// Slowloris and idle: `connections` connections, a third sending the
/// preface then nothing, a third a header block never ended, a third one
/// whole call then nothing; how long until the server answered each kind.
pub async fn slow_and_idle(addr: SocketAddr, connections: usize, within: Duration) -> anyhow::Result<[Answer; 3]> {
    let started = Instant::now();
    let mut kinds: [Vec<Raw>; 3] = Default::default();
    for i in 0..connections {
        // A PING's answer inside an open header block would be an error of its own.
        let mut raw = Raw::try_connect(addr, &[], i % 3 != 1).await?;
        match i % 3 {
            0 => {}
            1 => {
                raw.round_trip().await;
                let head = raw_h2::grpc_head(raw_h2::GREET);
                let stream = raw.stream();
                raw.write(&raw_h2::frame(raw_h2::HEADERS, 0, stream, &head[..20])).await;
            }
            _ => {
                let stream = raw.stream();
                raw.write(&raw_h2::greet_call(stream, "idle")).await;
            }
        }
        kinds[i % 3].push(raw);
    }
    let mut answers: [Answer; 3] = Default::default();
    for (kind, answer) in kinds.iter_mut().zip(&mut answers) {
        // The last of the kind to be answered: all of them were, by then.
        let mut last = None;
        for raw in kind.iter_mut() {
            let wait = (started + within).saturating_duration_since(Instant::now());
            let got = raw
                .until(wait, |seen| match seen {
                    Seen::GoAway { .. } | Seen::Closed => answer_of(seen),
                    _ => None,
                })
                .await;
            match got {
                Some(what) => last = Some(Answer::at(what, started)),
                None => {
                    last = None;
                    break;
                }
            }
        }
        *answer = last.unwrap_or_else(|| Answer::nothing(within));
    }
    Ok(answers)
}
