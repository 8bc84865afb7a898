//! `--fail-on`: the conditions that make `--once` exit 3, parsed from the
//! command line and judged on the report.

use std::fmt;
use std::time::Duration;

use super::Report;
use crate::state::Verdict;
use greet_proto::grpc_code::{grpc_code_name, is_client_error};

/// The forms a condition takes, for error messages.
const FORMS: &str = "stuck, skipped, errors (any), errors>N (count), errors>N% (of requests), p99>DURATION \
                     (e.g. p99>50ms), fairness<X (0 to 1)";

/// One `--fail-on` condition, as given (`errors>1%`) and as judged.
#[derive(Clone, Debug, PartialEq)]
pub struct FailOn {
    /// The text as given, for the message when it holds.
    spec: String,
    condition: Condition,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Condition {
    /// The verdict is STUCK or UNEVEN (not least-loaded's or dns's on purpose).
    Stuck,
    /// A gateway's balancer skips a pod.
    Skipped,
    /// More pod failures than this many (client errors do not count).
    ErrorsOver(u64),
    /// Pod failures over this percentage of the requests.
    ErrorRateOver(f64),
    /// Some pod's p99 over this.
    P99Over(Duration),
    /// Jain's index over the window below this.
    FairnessUnder(f64),
}

impl fmt::Display for FailOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.spec)
    }
}

impl std::str::FromStr for FailOn {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, String> {
        let condition = parse(spec.trim())?;
        Ok(FailOn {
            spec: spec.trim().to_owned(),
            condition,
        })
    }
}

fn parse(spec: &str) -> Result<Condition, String> {
    let split = spec.find(['>', '<', '=']).map(|at| spec.split_at(at));
    let (name, rest) = split.unwrap_or((spec, ""));
    let name = name.trim().to_ascii_lowercase();
    let (operator, value) = match rest.chars().next() {
        Some(op) => (Some(op), rest[op.len_utf8()..].trim()),
        None => (None, ""),
    };
    let wants = |form: &str| format!("{name} takes {form}, not {spec:?}");
    match (name.as_str(), operator) {
        ("stuck", None) => Ok(Condition::Stuck),
        ("skipped", None) => Ok(Condition::Skipped),
        ("errors", None) => Ok(Condition::ErrorsOver(0)),
        ("errors", Some('>')) => match value.strip_suffix('%') {
            Some(percent) => match percent.trim().parse::<f64>() {
                Ok(p) if (0.0..100.0).contains(&p) => Ok(Condition::ErrorRateOver(p)),
                _ => Err(format!(
                    "{value:?} is not a percentage from 0 to under 100 (e.g. errors>1%)"
                )),
            },
            None => value
                .parse::<u64>()
                .map(Condition::ErrorsOver)
                .map_err(|_| format!("{value:?} is not a count or a percentage (e.g. errors>0, errors>1%)")),
        },
        ("p99", Some('>')) => match humantime::parse_duration(value) {
            Ok(limit) => Ok(Condition::P99Over(limit)),
            Err(_) => Err(format!("{value:?} is not a duration (e.g. p99>50ms, p99>1s)")),
        },
        ("fairness", Some('<')) => match value.parse::<f64>() {
            Ok(x) if (0.0..=1.0).contains(&x) => Ok(Condition::FairnessUnder(x)),
            _ => Err(format!("{value:?} is not a fairness from 0 to 1 (e.g. fairness<0.8)")),
        },
        ("stuck" | "skipped", Some(_)) => Err(format!("{name} takes no value, not {spec:?}")),
        ("errors" | "p99", _) => Err(wants(&format!(
            "> (e.g. {name}>{})",
            if name == "p99" { "50ms" } else { "1%" }
        ))),
        ("fairness", _) => Err(wants("< (e.g. fairness<0.8)")),
        _ => Err(format!("unknown condition {spec:?}; use one of: {FORMS}")),
    }
}

impl FailOn {
    /// Why the condition holds on `report`, or `None` when it does not.
    pub fn holds(&self, report: &Report) -> Option<String> {
        let failures = report.errors.saturating_sub(report.client_errors);
        match self.condition {
            Condition::Stuck => {
                matches!(report.verdict, Verdict::Stuck | Verdict::Uneven).then(|| report.diagnosis.clone())
            }
            Condition::Skipped => report
                .pods
                .iter()
                .find_map(|p| p.skipped.as_ref().map(|why| format!("{} is skipped: {why}", p.name))),
            Condition::ErrorsOver(limit) => (failures > limit).then(|| {
                format!(
                    "{failures} of {} requests failed (client errors not counted)",
                    report.total
                )
            }),
            Condition::ErrorRateOver(percent) => {
                let rate = if report.total == 0 {
                    0.0
                } else {
                    100.0 * failures as f64 / report.total as f64
                };
                (rate > percent).then(|| {
                    format!(
                        "{failures} of {} requests failed, {rate:.2} % (client errors not counted)",
                        report.total
                    )
                })
            }
            Condition::P99Over(limit) => {
                let limit_ms = limit.as_secs_f64() * 1000.0;
                let slowest = report
                    .pods
                    .iter()
                    .filter_map(|p| p.p99_ms.map(|ms| (p, ms)))
                    .max_by(|a, b| a.1.total_cmp(&b.1))?;
                (slowest.1 > limit_ms).then(|| format!("{}'s p99 is {:.2} ms", slowest.0.name, slowest.1))
            }
            Condition::FairnessUnder(floor) => {
                let fairness = report.fairness?;
                (fairness < floor).then(|| format!("fairness {fairness:.2} {}", report.window))
            }
        }
    }
}

/// A `--fail-on` condition held: greet-top exits 3.
#[derive(Debug, thiserror::Error)]
#[error("--fail-on {condition}: {reason}")]
pub(crate) struct FailOnMatched {
    pub condition: FailOn,
    pub reason: String,
}

/// A failure the client earned by itself, by its code's name as the report
/// keys them (the one list: [`greet_proto::grpc_code::is_client_error`]).
pub(super) fn is_client_error_named(code_name: &str) -> bool {
    (1..=16).any(|code| grpc_code_name(code) == code_name && is_client_error(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> Result<Condition, String> {
        spec.parse::<FailOn>().map(|f| f.condition)
    }

    #[test]
    fn the_forms_and_todays_words_parse() {
        assert_eq!(parsed("stuck"), Ok(Condition::Stuck));
        assert_eq!(parsed("skipped"), Ok(Condition::Skipped));
        assert_eq!(parsed("errors"), Ok(Condition::ErrorsOver(0)));
        assert_eq!(parsed("errors>0"), Ok(Condition::ErrorsOver(0)));
        assert_eq!(parsed("errors>25"), Ok(Condition::ErrorsOver(25)));
        assert_eq!(parsed("errors>1%"), Ok(Condition::ErrorRateOver(1.0)));
        assert_eq!(parsed("errors>0.5%"), Ok(Condition::ErrorRateOver(0.5)));
        assert_eq!(parsed("p99>50ms"), Ok(Condition::P99Over(Duration::from_millis(50))));
        assert_eq!(parsed("P99>1s"), Ok(Condition::P99Over(Duration::from_secs(1))));
        assert_eq!(parsed("fairness<0.8"), Ok(Condition::FairnessUnder(0.8)));
        assert_eq!(" errors>1% ".parse::<FailOn>().unwrap().to_string(), "errors>1%");
    }

    #[test]
    fn bad_conditions_say_which_part_is_wrong_and_the_forms_allowed() {
        assert_eq!(
            parsed("p99>fast"),
            Err("\"fast\" is not a duration (e.g. p99>50ms, p99>1s)".to_owned())
        );
        assert_eq!(
            parsed("errors>lots"),
            Err("\"lots\" is not a count or a percentage (e.g. errors>0, errors>1%)".to_owned())
        );
        assert_eq!(
            parsed("errors>150%"),
            Err("\"150%\" is not a percentage from 0 to under 100 (e.g. errors>1%)".to_owned())
        );
        assert_eq!(
            parsed("fairness<2"),
            Err("\"2\" is not a fairness from 0 to 1 (e.g. fairness<0.8)".to_owned())
        );
        assert_eq!(
            parsed("fairness>0.8"),
            Err("fairness takes < (e.g. fairness<0.8), not \"fairness>0.8\"".to_owned())
        );
        assert_eq!(
            parsed("p99<50ms"),
            Err("p99 takes > (e.g. p99>50ms), not \"p99<50ms\"".to_owned())
        );
        assert_eq!(
            parsed("stuck>1"),
            Err("stuck takes no value, not \"stuck>1\"".to_owned())
        );
        assert_eq!(
            parsed("slow"),
            Err(format!("unknown condition \"slow\"; use one of: {FORMS}"))
        );
    }

    #[test]
    fn client_errors_are_the_callers_codes() {
        for code in ["UNIMPLEMENTED", "INVALID_ARGUMENT", "NOT_FOUND", "UNAUTHENTICATED"] {
            assert!(is_client_error_named(code), "{code}");
        }
        for code in [
            "UNAVAILABLE",
            "DEADLINE_EXCEEDED",
            "INTERNAL",
            "UNKNOWN",
            "RESOURCE_EXHAUSTED",
        ] {
            assert!(!is_client_error_named(code), "{code}");
        }
    }
}
