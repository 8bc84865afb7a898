//! A hostile HTTP/2 client built from raw frames over a TcpStream (the
//! hostile-client battery's and the attack benches'): what a
//! well-behaved client library (h2, tonic) will not send — a RST_STREAM in
//! the same write as its HEADERS, a header block left open, a window never
//! reopened. HPACK only as literal fields without indexing (RFC 7541 6.2.2),
//! which every decoder must take: no table, no Huffman, nothing to get wrong.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::{Mutex, mpsc};

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const ACK: u8 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;
pub const REFUSED_STREAM: u32 = 0x7;

/// One frame as it came from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen {
    Headers {
        stream: u32,
        end_stream: bool,
    },
    Data {
        stream: u32,
        len: usize,
    },
    Reset {
        stream: u32,
        code: u32,
    },
    GoAway {
        last_stream: u32,
        code: u32,
    },
    Ping,
    PingAck,
    /// The server closed the TCP connection (or it failed).
    Closed,
}

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap();
    let mut out = Vec::with_capacity(9 + payload.len());
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 5.1).
fn integer(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// A header block of literal fields without indexing, new names.
pub fn header_block(fields: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0);
        integer(&mut out, 0, 7, name.len());
        out.extend_from_slice(name.as_bytes());
        integer(&mut out, 0, 7, value.len());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// The request head of a gRPC call to `path`.
pub fn grpc_head(path: &str) -> Vec<u8> {
    header_block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "gateway"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ])
}

/// A length-prefixed gRPC message: a Greet request with `last_name`.
pub fn greet_message(last_name: &str) -> Vec<u8> {
    let request = greet_proto::greet::GreetingRequest {
        greeting: Some(greet_proto::greet::Greeting {
            first_name: "Mallory".into(),
            last_name: last_name.into(),
        }),
    };
    let body = request.encode_to_vec();
    let mut out = vec![0];
    out.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    out.extend_from_slice(&body);
    out
}

pub const GREET: &str = "/greet.GreetService/Greet";

/// HEADERS + DATA (END_STREAM): a whole Greet call in one write's worth.
pub fn greet_call(stream: u32, last_name: &str) -> Vec<u8> {
    let mut out = frame(HEADERS, END_HEADERS, stream, &grpc_head(GREET));
    out.extend(frame(DATA, END_STREAM, stream, &greet_message(last_name)));
    out
}

pub fn reset(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// A client connection speaking raw frames; a reader task answers the
/// server's SETTINGS (and PINGs, when told to) and reports every frame.
pub struct Raw {
    writer: Arc<Mutex<OwnedWriteHalf>>,
    pub seen: mpsc::UnboundedReceiver<Seen>,
    next_stream: u32,
    /// Holds the socket too: aborted on drop, so dropping closes it.
    reading: tokio::task::JoinHandle<()>,
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.reading.abort();
    }
}

impl Raw {
    /// Connects, sends the preface and `settings`.
    pub async fn connect(addr: SocketAddr, settings: &[(u16, u32)], answer_pings: bool) -> Raw {
        Raw::try_connect(addr, settings, answer_pings).await.unwrap()
    }

    /// [`Raw::connect`], failing when the server is not there or closes
    /// before the preface is written (a bench's proxy at its limits).
    pub async fn try_connect(addr: SocketAddr, settings: &[(u16, u32)], answer_pings: bool) -> std::io::Result<Raw> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (mut reader, writer) = tcp.into_split();
        let writer = Arc::new(Mutex::new(writer));
        let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let payload: Vec<u8> = settings
            .iter()
            .flat_map(|(id, value)| id.to_be_bytes().into_iter().chain(value.to_be_bytes()))
            .collect();
        hello.extend(frame(SETTINGS, 0, 0, &payload));
        writer.lock().await.write_all(&hello).await?;
        let (tx, seen) = mpsc::unbounded_channel();
        let acks = Arc::clone(&writer);
        let reading = tokio::spawn(async move {
            let mut head = [0u8; 9];
            loop {
                if reader.read_exact(&mut head).await.is_err() {
                    let _ = tx.send(Seen::Closed);
                    return;
                }
                let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
                let (kind, flags) = (head[3], head[4]);
                let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
                let mut payload = vec![0; len];
                if reader.read_exact(&mut payload).await.is_err() {
                    let _ = tx.send(Seen::Closed);
                    return;
                }
                let word = |at: usize| u32::from_be_bytes(payload[at..at + 4].try_into().unwrap());
                let event = match kind {
                    HEADERS => Some(Seen::Headers {
                        stream,
                        end_stream: flags & END_STREAM != 0,
                    }),
                    DATA => Some(Seen::Data { stream, len }),
                    RST_STREAM => Some(Seen::Reset { stream, code: word(0) }),
                    GOAWAY => Some(Seen::GoAway {
                        last_stream: word(0) & 0x7fff_ffff,
                        code: word(4),
                    }),
                    SETTINGS if flags & ACK == 0 => {
                        let _ = acks.lock().await.write_all(&frame(SETTINGS, ACK, 0, &[])).await;
                        None
                    }
                    PING if flags & ACK == 0 => {
                        if answer_pings {
                            let _ = acks.lock().await.write_all(&frame(PING, ACK, 0, &payload)).await;
                        }
                        Some(Seen::Ping)
                    }
                    PING => Some(Seen::PingAck),
                    _ => None,
                };
                if let Some(event) = event
                    && tx.send(event).is_err()
                {
                    return;
                }
            }
        });
        Ok(Raw {
            writer,
            seen,
            next_stream: 1,
            reading,
        })
    }

    /// The next client stream id.
    pub fn stream(&mut self) -> u32 {
        let id = self.next_stream;
        self.next_stream += 2;
        id
    }

    /// Writes `bytes` in one write; `false` once the server has closed.
    pub async fn write(&self, bytes: &[u8]) -> bool {
        self.writer.lock().await.write_all(bytes).await.is_ok()
    }

    /// The next frame seen that `pick` keeps, within `within` (`None`: none came).
    pub async fn until<T>(&mut self, within: Duration, mut pick: impl FnMut(&Seen) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let seen = tokio::time::timeout_at(deadline, self.seen.recv()).await.ok()??;
            if let Some(found) = pick(&seen) {
                return Some(found);
            }
            if seen == Seen::Closed {
                return None;
            }
        }
    }

    /// Waits (5 s at most) until the server has read everything written
    /// so far: it answers a PING after the frames before it. `false`: it
    /// closed first.
    pub async fn round_trip(&mut self) -> bool {
        if !self.write(&frame(PING, 0, 0, &[0; 8])).await {
            return false;
        }
        self.until(Duration::from_secs(5), |seen| (*seen == Seen::PingAck).then_some(()))
            .await
            .is_some()
    }

    /// The GOAWAY's code, or `Closed` as `u32::MAX`, within `within`.
    pub async fn goaway_or_close(&mut self, within: Duration) -> Option<u32> {
        self.until(within, |seen| match seen {
            Seen::GoAway { code, .. } => Some(*code),
            Seen::Closed => Some(u32::MAX),
            _ => None,
        })
        .await
    }
}
