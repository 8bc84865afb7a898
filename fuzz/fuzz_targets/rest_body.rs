//! The gateway's REST request bodies from arbitrary bytes: what axum's Json
//! extractor does (serde_json), then the gateway's strict checks for
//! `POST /greet` and `PUT /mode`. Finds panics and accepted bodies that break
//! the documented limits; the sanitizer rides along on the same input.

#![no_main]

use greet_proto::Mode;
use greet_proto::sanitize::{is_unsafe, sanitize, sanitize_truncated};
use greet_gateway::rest::body::{self, GreetBody, MAX_NAME_CHARS, ModeBody};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(greeting) = body::object::<GreetBody>(value.clone()).and_then(GreetBody::checked) {
            for name in [&greeting.first_name, &greeting.last_name] {
                assert!(!name.trim().is_empty(), "a blank name was accepted");
                assert!(name.chars().count() <= MAX_NAME_CHARS, "an over-long name was accepted");
            }
        }
        if let Ok(mode) = body::object::<ModeBody>(value) {
            match mode.mode.parse::<Mode>() {
                Ok(parsed) => assert_eq!(parsed.as_str(), mode.mode),
                Err(err) => assert!(!err.0.chars().any(is_unsafe), "an unsafe echo: {err:?}"),
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    assert!(!sanitize(&text).chars().any(is_unsafe));
    assert!(sanitize_truncated(&text, 16).chars().count() <= 16);
});
