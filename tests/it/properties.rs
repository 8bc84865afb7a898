//! Property tests over generated input (proptest, 256 cases a property by
//! default, bounded so CI stays quick): the REST bodies are parsed strictly
//! whatever arrives, and nothing unsafe survives the sanitizer.

use greet_gateway::rest::body::{self, GreetBody, MAX_NAME_CHARS, ModeBody};
use greet_proto::Mode;
use greet_proto::sanitize::{is_unsafe, sanitize, sanitize_truncated};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Text with the characters that matter here over-represented: escapes,
/// C0/C1 controls, bidi overrides, blanks, and any other char.
fn hostile_text(max_len: usize) -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => any::<char>(),
        2 => prop::char::range('\u{0}', '\u{1f}'),
        1 => prop::char::range('\u{7f}', '\u{9f}'),
        1 => prop::char::range('\u{202a}', '\u{202e}'),
        1 => prop::char::range('\u{2066}', '\u{2069}'),
        2 => Just(' '),
        2 => prop::char::range('a', 'z'),
    ];
    prop::collection::vec(c, 0..max_len).prop_map(|chars| chars.into_iter().collect())
}

/// A name as a client might send it: short, blank, around the length limit, or anything.
fn name() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-zé]{1,12}", "[ \t\n]{0,3}", "[a-z]{250,262}", hostile_text(300),]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_text(20).prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(hostile_text(10), inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn greet(value: Value) -> Result<GreetBody, String> {
    body::object::<GreetBody>(value).and_then(GreetBody::checked)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
        Value::Object(_) => unreachable!("objects are generated apart"),
    }
}

proptest! {
    #[test]
    fn a_body_that_is_not_an_object_is_refused_by_its_kind(value in json_value()) {
        prop_assume!(!value.is_object());
        let expected = format!("the body is {}, expected a JSON object", kind(&value));
        prop_assert_eq!(greet(value.clone()), Err(expected.clone()));
        prop_assert_eq!(body::object::<ModeBody>(value), Err(expected));
    }

    #[test]
    fn a_greeting_is_accepted_exactly_when_both_names_are_non_blank_and_bounded(
        first in name(),
        last in name(),
    ) {
        let value = serde_json::json!({"first_name": first, "last_name": last});
        let problem = |field: &str, name: &str| {
            if name.trim().is_empty() {
                Some(format!("{field} is empty"))
            } else if name.chars().count() > MAX_NAME_CHARS {
                Some(format!("{field} is longer than {MAX_NAME_CHARS} characters"))
            } else {
                None
            }
        };
        let expected = match problem("first_name", &first).or_else(|| problem("last_name", &last)) {
            Some(problem) => Err(problem),
            None => Ok(GreetBody { first_name: first, last_name: last }),
        };
        prop_assert_eq!(greet(value), expected);
    }

    #[test]
    fn any_field_besides_the_two_names_is_refused_and_named(
        key in hostile_text(12),
        extra in json_value(),
    ) {
        prop_assume!(key != "first_name" && key != "last_name");
        let mut object = Map::new();
        object.insert("first_name".into(), "Ada".into());
        object.insert("last_name".into(), "Lovelace".into());
        object.insert(key.clone(), extra);
        let err = greet(Value::Object(object)).unwrap_err();
        // The name is echoed cleaned (and the message cut at 200 characters).
        let expected = format!("invalid body: unknown field `{}`", sanitize(&key));
        prop_assert!(err.starts_with(&expected), "{} does not start with {}", err, expected);
        prop_assert!(!err.chars().any(is_unsafe), "{:?}", err);
    }

    #[test]
    fn a_name_of_another_type_is_refused_as_an_invalid_type(value in json_value()) {
        prop_assume!(!value.is_string());
        let err = greet(serde_json::json!({"first_name": value, "last_name": "L"})).unwrap_err();
        prop_assert!(err.starts_with("invalid body: invalid type: "), "{}", err);
    }

    #[test]
    fn a_mode_body_switches_only_to_the_two_documented_modes(mode in prop_oneof![
        Just("sticky".to_owned()),
        Just("balanced".to_owned()),
        hostile_text(60),
    ]) {
        let parsed = body::object::<ModeBody>(serde_json::json!({"mode": mode}))
            .map_err(|e| e.to_string())
            .and_then(|b| b.mode.parse::<Mode>().map_err(|e| e.to_string()));
        match mode.as_str() {
            "sticky" => prop_assert_eq!(parsed, Ok(Mode::Sticky)),
            "balanced" => prop_assert_eq!(parsed, Ok(Mode::Balanced)),
            _ => {
                // The value is echoed sanitized and cut to 40 characters.
                let echoed = sanitize_truncated(&mode, 40);
                prop_assert_eq!(
                    parsed,
                    Err(format!(r#"unknown mode {echoed:?}: expected "sticky", "balanced", "least-loaded" or "dns""#))
                );
                prop_assert!(!echoed.chars().any(is_unsafe));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_only_valid_greetings_pass(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..200),
            json_value().prop_map(|v| v.to_string().into_bytes()),
        ],
    ) {
        // What axum's Json extractor does with the body, then the gateway's checks.
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            && let Ok(body) = greet(value)
        {
            for name in [&body.first_name, &body.last_name] {
                prop_assert!(!name.trim().is_empty() && name.chars().count() <= MAX_NAME_CHARS);
            }
        }
    }

    #[test]
    fn sanitize_removes_exactly_the_unsafe_characters(text in hostile_text(80)) {
        let clean = sanitize(&text);
        let expected: String = text.chars().filter(|&c| !is_unsafe(c)).collect();
        prop_assert_eq!(clean.as_ref(), expected.as_str());
        prop_assert!(!clean.contains(['\u{1b}', '\u{9b}']), "an escape survived");
        // Idempotent, and clean text is passed through without a copy.
        prop_assert!(matches!(sanitize(&clean), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn sanitize_truncated_is_clean_bounded_and_a_prefix(text in hostile_text(80), max in 1usize..40) {
        let cut = sanitize_truncated(&text, max);
        let clean = sanitize(&text);
        prop_assert!(cut.chars().count() <= max);
        prop_assert!(!cut.chars().any(is_unsafe));
        if clean.chars().count() <= max {
            prop_assert_eq!(cut.as_str(), clean.as_ref());
        } else {
            let kept = cut.strip_suffix('…').expect("a cut ends with an ellipsis");
            prop_assert!(clean.starts_with(kept));
            prop_assert_eq!(kept.chars().count(), max - 1);
        }
    }
}
