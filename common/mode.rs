//! The gateway's routing mode.

use std::fmt;
use std::str::FromStr;

use crate::proto::observe;

/// How the gateway sends requests upstream.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One HTTP/2 connection to the Service address: every request lands on one pod.
    #[default]
    Sticky,
    /// Per-request round robin across the ready endpoints.
    Balanced,
}

impl Mode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Sticky => "sticky",
            Mode::Balanced => "balanced",
        }
    }

    pub const fn toggled(self) -> Mode {
        match self {
            Mode::Sticky => Mode::Balanced,
            Mode::Balanced => Mode::Sticky,
        }
    }

    pub fn to_proto(self) -> observe::Mode {
        match self {
            Mode::Sticky => observe::Mode::Sticky,
            Mode::Balanced => observe::Mode::Balanced,
        }
    }

    /// The mode of a wire enum value; `None` for unspecified or unknown values.
    pub fn from_proto(value: i32) -> Option<Mode> {
        match observe::Mode::try_from(value) {
            Ok(observe::Mode::Sticky) => Some(Mode::Sticky),
            Ok(observe::Mode::Balanced) => Some(Mode::Balanced),
            _ => None,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown mode {0:?}: expected \"sticky\" or \"balanced\"")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sticky" => Ok(Mode::Sticky),
            "balanced" => Ok(Mode::Balanced),
            // Bounded: the value is echoed back in the error.
            other => Err(UnknownMode(crate::common::sanitize::sanitize_truncated(other, 40))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_both_modes() {
        for mode in [Mode::Sticky, Mode::Balanced] {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
            assert_eq!(Mode::from_proto(mode.to_proto() as i32), Some(mode));
        }
        assert_eq!(Mode::Sticky.toggled(), Mode::Balanced);
        assert_eq!(Mode::Balanced.toggled(), Mode::Sticky);
    }

    #[test]
    fn rejects_unknown_modes_with_the_accepted_values() {
        let err = "Sticky".parse::<Mode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown mode "Sticky": expected "sticky" or "balanced""#
        );
        let long = "x".repeat(1000);
        let err = long.parse::<Mode>().unwrap_err();
        assert_eq!(err.0, format!("{}…", "x".repeat(39)));
        assert_eq!(Mode::from_proto(0), None);
        assert_eq!(Mode::from_proto(42), None);
    }
}
