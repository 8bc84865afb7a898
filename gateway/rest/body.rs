//! The REST bodies, parsed strictly against their documented shape: a JSON
//! object with exactly the documented fields, non-empty and bounded. Serde
//! alone would take `["Ada", "Lovelace"]` for a greeting (a sequence fills a
//! struct) and ignore extra fields; a body of any other shape gets a 400
//! that says what was expected, and changes nothing.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use greet_proto::sanitize::sanitize_truncated;

/// Longest accepted name: far above any real one, far below the body limit.
pub const MAX_NAME_CHARS: usize = 256;

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GreetBody {
    pub first_name: String,
    pub last_name: String,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    pub mode: String,
}

/// `value` as `T`, only when it is a JSON object of `T`'s fields; the error
/// says what was wrong (the caller adds the usage).
pub fn object<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    let kind = match &value {
        serde_json::Value::Object(_) => None,
        serde_json::Value::Array(_) => Some("an array"),
        serde_json::Value::String(_) => Some("a string"),
        serde_json::Value::Number(_) => Some("a number"),
        serde_json::Value::Bool(_) => Some("a boolean"),
        serde_json::Value::Null => Some("null"),
    };
    if let Some(kind) = kind {
        return Err(format!("the body is {kind}, expected a JSON object"));
    }
    // serde's message quotes what the client sent (an unknown field's name):
    // cleaned and bounded before it is echoed back.
    serde_json::from_value(value).map_err(|e| format!("invalid body: {}", sanitize_truncated(&e.to_string(), 200)))
}

impl GreetBody {
    /// Both names present, not blank, and at most [`MAX_NAME_CHARS`].
    pub fn checked(self) -> Result<Self, String> {
        for (field, value) in [("first_name", &self.first_name), ("last_name", &self.last_name)] {
            if value.trim().is_empty() {
                return Err(format!("{field} is empty"));
            }
            if value.chars().count() > MAX_NAME_CHARS {
                return Err(format!("{field} is longer than {MAX_NAME_CHARS} characters"));
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn greet(value: serde_json::Value) -> Result<GreetBody, String> {
        object::<GreetBody>(value).and_then(GreetBody::checked)
    }

    #[test]
    fn a_greeting_is_exactly_an_object_of_two_non_empty_bounded_names() {
        assert_eq!(
            greet(json!({"first_name": "Ada", "last_name": "Lovelace"})),
            Ok(GreetBody {
                first_name: "Ada".into(),
                last_name: "Lovelace".into()
            })
        );
        assert_eq!(
            greet(json!(["Ada", "Lovelace"])),
            Err("the body is an array, expected a JSON object".into())
        );
        assert_eq!(
            greet(json!("Ada")),
            Err("the body is a string, expected a JSON object".into())
        );
        assert_eq!(
            greet(json!(null)),
            Err("the body is null, expected a JSON object".into())
        );
        let extra = greet(json!({"first_name": "Ada", "last_name": "L", "admin": true})).unwrap_err();
        assert!(extra.starts_with("invalid body: unknown field `admin`"), "{extra}");
        let missing = greet(json!({"first_name": "Ada"})).unwrap_err();
        assert_eq!(missing, "invalid body: missing field `last_name`");
        let nested = greet(json!({"first_name": {"x": 1}, "last_name": "L"})).unwrap_err();
        assert!(
            nested.starts_with("invalid body: invalid type: map, expected a string"),
            "{nested}"
        );
        assert_eq!(
            greet(json!({"first_name": "  ", "last_name": "L"})),
            Err("first_name is empty".into())
        );
        let long = "x".repeat(MAX_NAME_CHARS + 1);
        assert_eq!(
            greet(json!({"first_name": "Ada", "last_name": long})),
            Err("last_name is longer than 256 characters".into())
        );
        assert!(greet(json!({"first_name": "é".repeat(MAX_NAME_CHARS), "last_name": "L"})).is_ok());
    }

    #[test]
    fn a_mode_body_is_exactly_an_object_with_mode() {
        assert_eq!(
            object::<ModeBody>(json!({"mode": "balanced"})),
            Ok(ModeBody {
                mode: "balanced".into()
            })
        );
        assert_eq!(
            object::<ModeBody>(json!(["balanced"])),
            Err("the body is an array, expected a JSON object".into())
        );
        let extra = object::<ModeBody>(json!({"mode": "balanced", "force": true})).unwrap_err();
        assert!(extra.starts_with("invalid body: unknown field `force`"), "{extra}");
    }
}
