//! The exposition parser: Prometheus text 0.0.4 and OpenMetrics 1.0, line by
//! line, from the body's bytes.
//!
//! Written by hand because no crate fits (research notes, pod-metrics.md §1):
//! `prometheus-parse` mis-reads label values holding `,` `=` `}` and does not
//! unescape, `openmetrics-parser` is LGPL (deny.toml refuses it) and fails a
//! whole scrape on one bad line, and the small winnow/nom grammars reject
//! exemplars and timestamps. This one tolerates both formats on every line: a
//! line it cannot read is skipped and counted, never the whole scrape.
//!
//! TYPE/HELP/UNIT lines are not needed to read samples (families are told
//! apart by sample name); their metric names are only kept as a hint that a
//! family is registered before its first sample.

use std::borrow::Cow;

/// Samples read from one body at most: an 8 MiB body of short lines cannot
/// make the later stages hold more.
pub(crate) const MAX_SAMPLES: usize = 200_000;
/// Metric names kept from `# TYPE` / `# HELP` lines at most.
const MAX_DECLARED: usize = 10_000;

/// One sample line. Borrowed from the body unless an escape had to be undone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample<'a> {
    pub(crate) name: Cow<'a, str>,
    pub(crate) labels: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    pub(crate) value: f64,
}

impl Sample<'_> {
    /// The value of label `name`, if the sample has it.
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.labels.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_ref())
    }
}

/// What one pass over a body found besides its samples.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ParseStats {
    /// Sample lines read.
    pub(crate) samples: usize,
    /// Lines skipped: not UTF-8, or not a sample this parser can read.
    pub(crate) bad_lines: usize,
    /// The body had more than the sample limit; the rest was not read.
    pub(crate) truncated: bool,
    /// Metric names that `# TYPE` or `# HELP` lines declared (at most
    /// [`MAX_DECLARED`]).
    pub(crate) declared: Vec<String>,
}

/// Reads `body`, calling `each` for every sample, up to `max_samples`;
/// sample lines `skip` picks are passed over unparsed.
pub(crate) fn parse(
    body: &[u8],
    max_samples: usize,
    skip: impl Fn(&str) -> bool,
    mut each: impl FnMut(&Sample<'_>),
) -> ParseStats {
    let mut stats = ParseStats::default();
    for raw in body.split(|&b| b == b'\n') {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let Ok(line) = std::str::from_utf8(raw) else {
            stats.bad_lines += 1;
            continue;
        };
        let line = line.trim_start_matches([' ', '\t']);
        if line.trim_end().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            if comment.trim_end() == " EOF" {
                break;
            }
            declared_name(comment, &mut stats.declared);
            continue;
        }
        if stats.samples >= max_samples {
            stats.truncated = true;
            break;
        }
        if skip(line) {
            continue;
        }
        match sample(line) {
            Some(s) => {
                stats.samples += 1;
                each(&s);
            }
            None => stats.bad_lines += 1,
        }
    }
    stats
}

/// The metric a `# TYPE name …` or `# HELP name …` line is about.
fn declared_name(comment: &str, declared: &mut Vec<String>) {
    let mut words = comment.split_ascii_whitespace();
    if matches!(words.next(), Some("TYPE" | "HELP"))
        && let Some(name) = words.next()
        && declared.len() < MAX_DECLARED
        && declared.last().map(String::as_str) != Some(name)
    {
        declared.push(name.to_owned());
    }
}

/// One sample line (no leading blanks), or `None` when it is not one.
fn sample(line: &str) -> Option<Sample<'_>> {
    let mut cur = Cursor { rest: line };
    let mut name = cur.take_name(is_metric_char);
    let mut labels = Vec::new();
    if cur.eat('{') {
        let mut first = true;
        loop {
            cur.skip_blanks();
            if cur.eat('}') {
                break;
            }
            let quoted = cur.rest.starts_with('"');
            let key = if quoted {
                cur.quoted()?
            } else {
                Cow::Borrowed(cur.take_name(is_label_char)?)
            };
            cur.skip_blanks();
            // `{"metric.name",k="v"}`: a quoted string first, with no `=`, is
            // the metric's name (OpenMetrics' UTF-8 names).
            if first && quoted && name.is_none() && (cur.rest.starts_with(',') || cur.rest.starts_with('}')) {
                name = Some(match key {
                    Cow::Borrowed(k) => k,
                    Cow::Owned(_) => return None,
                });
            } else {
                if !cur.eat('=') {
                    return None;
                }
                cur.skip_blanks();
                let value = cur.quoted()?;
                labels.push((key, value));
                cur.skip_blanks();
            }
            first = false;
            if cur.eat('}') {
                break;
            }
            if !cur.eat(',') {
                return None;
            }
        }
    }
    let name = name.filter(|n| !n.is_empty())?;
    // The value follows blanks; whatever follows it (a timestamp, an
    // exemplar) is not needed.
    if !cur.rest.starts_with([' ', '\t']) {
        return None;
    }
    let value = cur.rest.split_ascii_whitespace().next()?;
    Some(Sample {
        name: Cow::Borrowed(name),
        labels,
        value: parse_value(value)?,
    })
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN` (any case, as
/// Prometheus accepts them).
pub(crate) fn parse_value(text: &str) -> Option<f64> {
    // Rust also reads "infinity" and "inf" (any case), which Prometheus'
    // Go parser reads too.
    text.parse::<f64>().ok()
}

fn is_metric_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

fn is_label_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (!first && c.is_ascii_digit())
}

struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    fn eat(&mut self, c: char) -> bool {
        match self.rest.strip_prefix(c) {
            Some(rest) => {
                self.rest = rest;
                true
            }
            None => false,
        }
    }

    fn skip_blanks(&mut self) {
        self.rest = self.rest.trim_start_matches([' ', '\t']);
    }

    /// A bare name (`None` when there is none).
    fn take_name(&mut self, ok: fn(char, bool) -> bool) -> Option<&'a str> {
        let end = self
            .rest
            .char_indices()
            .find(|&(i, c)| !ok(c, i == 0))
            .map_or(self.rest.len(), |(i, _)| i);
        if end == 0 {
            return None;
        }
        let (name, rest) = self.rest.split_at(end);
        self.rest = rest;
        Some(name)
    }

    /// A `"…"` string with `\\`, `\"` and `\n` undone; another escape keeps
    /// its backslash (as Prometheus does).
    fn quoted(&mut self) -> Option<Cow<'a, str>> {
        let body = self.rest.strip_prefix('"')?;
        let mut owned: Option<String> = None;
        let mut chars = body.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &body[i + 1..];
                    return Some(match owned {
                        Some(s) => Cow::Owned(s),
                        None => Cow::Borrowed(&body[..i]),
                    });
                }
                '\\' => {
                    let out = owned.get_or_insert_with(|| body[..i].to_owned());
                    match chars.next()?.1 {
                        'n' => out.push('\n'),
                        '\\' => out.push('\\'),
                        '"' => out.push('"'),
                        other => {
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => {
                    if let Some(out) = owned.as_mut() {
                        out.push(c);
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
