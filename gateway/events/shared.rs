//! An event as every subscriber gets it: built once, and encoded for the
//! wire at most once however many subscribers send it (gateway/observer/wire.rs).

use std::ops::Deref;
use std::sync::OnceLock;

use bytes::Bytes;
use prost::Message;

use greet_proto::observe::{Event, event};

#[derive(Debug)]
pub struct Shared {
    event: Event,
    wire: OnceLock<Bytes>,
}

impl Shared {
    pub fn new(kind: event::Kind) -> Self {
        Shared {
            event: Event { kind: Some(kind) },
            wire: OnceLock::new(),
        }
    }

    /// The event's protobuf encoding: encoded by the first subscriber to
    /// send it, then shared (a reference count, no copy).
    pub fn wire(&self) -> Bytes {
        self.wire
            .get_or_init(|| Bytes::from(self.event.encode_to_vec()))
            .clone()
    }
}

impl Deref for Shared {
    type Target = Event;

    fn deref(&self) -> &Event {
        &self.event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use greet_proto::observe::Lagged;

    #[test]
    fn an_event_is_encoded_once_and_the_bytes_shared() {
        let shared = Shared::new(event::Kind::Lagged(Lagged { dropped: 7 }));
        let first = shared.wire();
        let second = shared.wire();
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the same buffer, not a second encoding"
        );
        assert_eq!(Event::decode(first).unwrap(), *shared);
    }
}
