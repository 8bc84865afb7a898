//! Small text helpers the panels share.

use std::time::{Duration, Instant};

/// `text` cut to `width` characters from the left, so the distinguishing end
/// of a pod name (its random suffix) stays visible: "…7595ccbdd5-67bmd".
pub fn fit_left(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out = String::from("…");
    out.extend(text.chars().skip(count - (width - 1)));
    out
}

/// A pod age the way kubectl prints it: 45s, 12m, 3h, 2d.
pub fn age(age: Duration) -> String {
    let secs = age.as_secs();
    match secs {
        0..=119 => format!("{secs}s"),
        120..=7199 => format!("{}m", secs / 60),
        7200..=172_799 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Milliseconds with two decimals, or a dash when there is no value.
pub(super) fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"))
}

/// How long before `at` the last hit was: "4.2s", "3m", or "never".
pub(super) fn ago(last: Option<Instant>, at: Instant) -> String {
    match last {
        None => "never".to_owned(),
        Some(t) => {
            let secs = at.saturating_duration_since(t).as_secs_f64();
            if secs < 60.0 {
                format!("{secs:.1}s")
            } else {
                format!("{:.0}m", secs / 60.0)
            }
        }
    }
}

/// The percentage of `requests` that succeeded, never rounded up to 100
/// while one failed: "71.0", "99.95", else "<100"; `None` without requests.
pub(super) fn success_percent(requests: u64, errors: u64) -> Option<String> {
    if requests == 0 {
        return None;
    }
    let percent = requests.saturating_sub(errors) as f64 * 100.0 / requests as f64;
    if errors == 0 {
        return Some("100".to_owned());
    }
    // One decimal, or two when one would round to 100, else "<100".
    let one = format!("{percent:.1}");
    if one != "100.0" {
        return Some(one);
    }
    let two = format!("{percent:.2}");
    Some(if two == "100.00" { "<100".to_owned() } else { two })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_left_keeps_the_end_of_long_names() {
        assert_eq!(fit_left("greetserver-abc-67bmd", 10), "…abc-67bmd");
        assert_eq!(fit_left("short", 10), "short");
        assert_eq!(fit_left("abc", 0), "");
    }

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(age(Duration::from_secs(45)), "45s");
        assert_eq!(age(Duration::from_secs(12 * 60)), "12m");
        assert_eq!(age(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(age(Duration::from_secs(2 * 86_400)), "2d");
    }

    #[test]
    fn a_failure_is_never_rounded_away() {
        assert_eq!(success_percent(22_199, 11).as_deref(), Some("99.95"));
        assert_eq!(success_percent(1_000_000, 1).as_deref(), Some("<100"));
        assert_eq!(success_percent(1_000, 1).as_deref(), Some("99.9"));
        assert_eq!(success_percent(10_000, 1).as_deref(), Some("99.99"));
        assert_eq!(success_percent(9_410, 2_726).as_deref(), Some("71.0"));
        assert_eq!(success_percent(100, 100).as_deref(), Some("0.0"));
        assert_eq!(success_percent(100, 0).as_deref(), Some("100"));
        assert_eq!(success_percent(0, 0), None);
    }

    #[test]
    fn milliseconds_and_last_hits_read_briefly() {
        let t0 = Instant::now();
        assert_eq!(ms(Some(0.456)), "0.46");
        assert_eq!(ms(None), "–");
        assert_eq!(ago(None, t0), "never");
        assert_eq!(ago(Some(t0), t0 + Duration::from_millis(4200)), "4.2s");
        assert_eq!(ago(Some(t0), t0 + Duration::from_secs(180)), "3m");
    }
}
