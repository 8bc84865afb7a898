//! The gateway's routing mode.

use std::fmt;
use std::str::FromStr;

use crate::observe;

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
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One HTTP/2 connection to the Service address: every request lands on one pod.
    #[default]
    Sticky,
    /// Per-request round robin across the ready endpoints.
    Balanced,
    /// Per request, the less loaded of two random ready endpoints (peak-EWMA
    /// latency times requests in flight): steers away from a slow pod.
    LeastLoaded,
    /// Round robin per request over the addresses GRPC_SERVER_HOST resolved
    /// to at the last re-resolve: stale on purpose, as a gRPC client's
    /// `round_robin` over a headless Service's DNS is.
    Dns,
}

impl Mode {
    /// Every mode, in `m`'s cycle order; `Mode as usize` indexes it.
    pub const ALL: [Mode; 4] = [Mode::Sticky, Mode::Balanced, Mode::LeastLoaded, Mode::Dns];

    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Sticky => "sticky",
            Mode::Balanced => "balanced",
            Mode::LeastLoaded => "least-loaded",
            Mode::Dns => "dns",
        }
    }

    /// What the mode does, in one short line (greet-top's header).
    pub const fn describe(self) -> &'static str {
        match self {
            Mode::Sticky => "one connection, one pod",
            Mode::Balanced => "round robin per request",
            // Short enough for the header at 80 columns.
            Mode::LeastLoaded => "avoids slow pods",
            Mode::Dns => "DNS round robin: new pods wait",
        }
    }

    /// The next mode in the cycle (`m`).
    pub const fn next(self) -> Mode {
        Mode::ALL[(self as usize + 1) % Mode::ALL.len()]
    }

    /// The mode stored as `mode as u8`; `None` for any other value.
    pub fn from_index(index: u8) -> Option<Mode> {
        Mode::ALL.get(usize::from(index)).copied()
    }

    pub fn to_proto(self) -> observe::Mode {
        match self {
            Mode::Sticky => observe::Mode::Sticky,
            Mode::Balanced => observe::Mode::Balanced,
            Mode::LeastLoaded => observe::Mode::LeastLoaded,
            Mode::Dns => observe::Mode::Dns,
        }
    }

    /// A wire value that names a mode this version does not know (a newer
    /// gateway's): shown by its number. `None` for a known mode or 0.
    pub fn unknown_number(value: i32) -> Option<i32> {
        (value != 0 && Mode::from_proto(value).is_none()).then_some(value)
    }

    /// The mode of a wire enum value; `None` for unspecified or unknown values.
    pub fn from_proto(value: i32) -> Option<Mode> {
        match observe::Mode::try_from(value) {
            Ok(observe::Mode::Sticky) => Some(Mode::Sticky),
            Ok(observe::Mode::Balanced) => Some(Mode::Balanced),
            Ok(observe::Mode::LeastLoaded) => Some(Mode::LeastLoaded),
            Ok(observe::Mode::Dns) => Some(Mode::Dns),
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
#[error("unknown mode {0:?}: expected \"sticky\", \"balanced\", \"least-loaded\" or \"dns\"")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sticky" => Ok(Mode::Sticky),
            "balanced" => Ok(Mode::Balanced),
            "least-loaded" => Ok(Mode::LeastLoaded),
            "dns" => Ok(Mode::Dns),
            // Bounded: the value is echoed back in the error.
            other => Err(UnknownMode(crate::sanitize::sanitize_truncated(other, 40))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_mode() {
        for mode in Mode::ALL {
            assert_eq!(mode.as_str().parse::<Mode>(), Ok(mode));
            assert_eq!(Mode::from_proto(mode.to_proto() as i32), Some(mode));
            assert_eq!(Mode::from_index(mode as u8), Some(mode));
            assert_eq!(serde_json::to_value(mode).unwrap(), mode.as_str());
            assert_eq!(
                clap::ValueEnum::to_possible_value(&mode).unwrap().get_name(),
                mode.as_str()
            );
        }
        assert_eq!(Mode::from_index(4), None);
        assert_eq!(Mode::Sticky.next(), Mode::Balanced);
        assert_eq!(Mode::Balanced.next(), Mode::LeastLoaded);
        assert_eq!(Mode::LeastLoaded.next(), Mode::Dns);
        assert_eq!(Mode::Dns.next(), Mode::Sticky);
        assert_eq!(observe::Mode::LeastLoaded as i32, 3);
        assert_eq!(observe::Mode::Dns as i32, 4);
    }

    #[test]
    fn rejects_unknown_modes_with_the_accepted_values() {
        let err = "Sticky".parse::<Mode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"unknown mode "Sticky": expected "sticky", "balanced", "least-loaded" or "dns""#
        );
        let long = "x".repeat(1000);
        let err = long.parse::<Mode>().unwrap_err();
        assert_eq!(err.0, format!("{}…", "x".repeat(39)));
        assert_eq!(Mode::from_proto(0), None);
        assert_eq!(Mode::from_proto(42), None);
        assert_eq!(Mode::unknown_number(42), Some(42));
        assert_eq!(Mode::unknown_number(0), None);
        assert_eq!(Mode::unknown_number(Mode::LeastLoaded.to_proto() as i32), None);
    }
}
