//! A verdict's words as parts, so the line reads whole at any width: pod
//! names lose the prefix all pods share before anything is cut, clauses go
//! in order of importance, the window is left to the header (which states
//! it for the whole screen), and key hints stay out of reports.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Plain,
    /// A pod name: shortened, never cut.
    Name,
    /// The view's window ("over the last 10 s"): the screen's header says it.
    Window,
    /// What to press: meaningless in a report.
    Hint,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Part {
    kind: Kind,
    text: String,
    /// 0: always shown; higher ranks are dropped first.
    rank: u8,
}

/// The parts of a verdict line, in reading order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Words {
    parts: Vec<Part>,
}

/// How a line is written out.
#[derive(Clone, Copy, Debug)]
pub(super) struct Render<'a> {
    /// The prefix every pod shares, to write as "…" (`None`: whole names).
    pub shared: Option<&'a str>,
    pub window: bool,
    pub hints: bool,
    /// Clauses ranked above this are left out.
    pub rank: u8,
}

impl Words {
    pub(super) fn new(text: impl Into<String>) -> Self {
        Words::default().text(text)
    }

    fn push(mut self, kind: Kind, text: impl Into<String>) -> Self {
        self.parts.push(Part {
            kind,
            text: text.into(),
            rank: 0,
        });
        self
    }

    pub(super) fn text(self, text: impl Into<String>) -> Self {
        self.push(Kind::Plain, text)
    }

    pub(super) fn name(self, name: &str) -> Self {
        self.push(Kind::Name, name)
    }

    /// Names separated by ", ".
    pub(super) fn names<'n>(mut self, names: impl IntoIterator<Item = &'n str>) -> Self {
        for (i, name) in names.into_iter().enumerate() {
            if i > 0 {
                self = self.text(", ");
            }
            self = self.name(name);
        }
        self
    }

    /// The view's window, e.g. " over the last 10 s".
    pub(super) fn window(self, phrase: impl Into<String>) -> Self {
        self.push(Kind::Window, phrase)
    }

    pub(super) fn hint(self, hint: impl Into<String>) -> Self {
        self.push(Kind::Hint, hint)
    }

    /// A clause the line loses when short of room: the higher `rank`, the sooner.
    pub(super) fn clause(mut self, rank: u8, build: impl FnOnce(Words) -> Words) -> Self {
        let clause = build(Words::default());
        self.parts.extend(clause.parts.into_iter().map(|p| Part {
            rank: p.rank.max(rank),
            ..p
        }));
        self
    }

    /// Appends `other`'s parts.
    pub(super) fn then(mut self, other: Words) -> Self {
        self.parts.extend(other.parts);
        self
    }

    pub(super) fn render(&self, how: Render) -> String {
        let mut line = String::new();
        for part in self.parts.iter().filter(|p| p.rank <= how.rank) {
            match part.kind {
                Kind::Window if !how.window => {}
                Kind::Hint if !how.hints => {}
                Kind::Name => line.push_str(&shorten(&part.text, how.shared)),
                _ => line.push_str(&part.text),
            }
        }
        line
    }

    /// The fullest line within `width` characters: every clause if it fits
    /// (with whole names if they fit, else shortened), then fewer clauses
    /// the same way; the shortest possible line when nothing fits.
    pub(super) fn fit(&self, width: usize, shared: &str, window: bool) -> String {
        let top = self.parts.iter().map(|p| p.rank).max().unwrap_or(0);
        let how = |shared, rank| Render {
            shared,
            window,
            hints: true,
            rank,
        };
        // At each rank whole names first: a name is shortened only when the
        // line would not fit with it whole.
        let tries = (0..=top)
            .rev()
            .flat_map(|rank| [how(None, rank), how(Some(shared), rank)]);
        let mut line = String::new();
        for how in tries {
            line = self.render(how);
            if line.chars().count() <= width {
                break;
            }
        }
        line
    }
}

/// `name` without `shared` (written "…"), when it starts with it.
fn shorten(name: &str, shared: Option<&str>) -> String {
    match shared.filter(|p| !p.is_empty()).and_then(|p| name.strip_prefix(p)) {
        Some(rest) if !rest.is_empty() => format!("…{rest}"),
        _ => name.to_owned(),
    }
}

/// The prefix all `names` share, up to (not including) a separator
/// (`-`, `.`, `_`) after which they differ: "greetserver-demo-b9qnp" for
/// "greetserver-demo-b9qnp-9hlbq" and "greetserver-demo-b9qnp-x2zl7".
/// Empty with fewer than two names or nothing worth shortening; names
/// that are addresses (an IP, no name known yet) do not count.
pub(super) fn shared_prefix<'n>(names: impl IntoIterator<Item = &'n str>) -> String {
    let mut names = names
        .into_iter()
        .filter(|n| !n.is_empty() && n.parse::<std::net::IpAddr>().is_err() && !n.contains(':'));
    let Some(first) = names.next() else {
        return String::new();
    };
    let mut common = first;
    let mut several = false;
    for name in names {
        several = true;
        let same: usize = common
            .chars()
            .zip(name.chars())
            .take_while(|(a, b)| a == b)
            .map(|(a, _)| a.len_utf8())
            .sum();
        common = &common[..same];
    }
    if !several {
        return String::new();
    }
    let prefix = common;
    // Cut at the last separator, so the "…" stands for whole words; a
    // prefix shorter than 6 is not worth the "…".
    match prefix.rfind(['-', '.', '_']) {
        Some(cut) if cut >= 6 => prefix[..cut].to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_prefix_ends_before_a_separator_and_ignores_addresses() {
        let demo = [
            "greetserver-demo-b9qnp-9hlbq",
            "greetserver-demo-b9qnp-b8lmv",
            "10.0.0.9",
        ];
        assert_eq!(shared_prefix(demo), "greetserver-demo-b9qnp");
        assert_eq!(shared_prefix(["greetserver-2", "greetserver-3"]), "greetserver");
        assert_eq!(shared_prefix(["acc-pod-1", "acc-pod-2"]), "acc-pod");
        assert_eq!(shared_prefix(["pod-a", "pod-b"]), "", "too short to be worth a …");
        assert_eq!(shared_prefix(["greetserver-2"]), "", "one name: nothing to share");
        assert_eq!(shared_prefix(["a-1", "b-1"]), "");
        assert_eq!(shared_prefix(["greetserver-2", "greetserver-20"]), "greetserver");
        assert_eq!(
            shorten("greetserver-demo-b9qnp-9hlbq", Some("greetserver-demo-b9qnp")),
            "…-9hlbq"
        );
        assert_eq!(shorten("other-pod", Some("greetserver")), "other-pod");
    }

    #[test]
    fn a_line_that_does_not_fit_shortens_names_then_drops_clauses_but_never_cuts_a_name() {
        let words = Words::new("UNEVEN")
            .hint(" — press m")
            .text(": 100 % on ")
            .name("greetserver-demo-b9qnp-9hlbq")
            .window(" over the last 10 s")
            .clause(2, |w| {
                w.text("; ")
                    .names(["greetserver-demo-b9qnp-b8lmv", "greetserver-demo-b9qnp-x2zl7"])
                    .text(" receive nothing")
            })
            .clause(1, |w| w.text("; fairness 0.33"));
        let shared = "greetserver-demo-b9qnp";
        let full = words.fit(200, shared, true);
        assert_eq!(
            full,
            "UNEVEN — press m: 100 % on greetserver-demo-b9qnp-9hlbq over the last 10 s; \
             greetserver-demo-b9qnp-b8lmv, greetserver-demo-b9qnp-x2zl7 receive nothing; fairness 0.33"
        );
        assert_eq!(
            words.fit(90, shared, false),
            "UNEVEN — press m: 100 % on …-9hlbq; …-b8lmv, …-x2zl7 receive nothing; fairness 0.33",
            "names lose their shared prefix; the window is the header's"
        );
        assert_eq!(
            words.fit(80, shared, false),
            "UNEVEN — press m: 100 % on greetserver-demo-b9qnp-9hlbq; fairness 0.33",
            "the clause of the highest rank goes first; the name fits whole"
        );
        assert_eq!(words.fit(40, shared, false), "UNEVEN — press m: 100 % on …-9hlbq");
        assert_eq!(
            words.fit(10, shared, false),
            "UNEVEN — press m: 100 % on …-9hlbq",
            "nothing fits: the shortest line, left for the screen's edge to cut"
        );
        let report = Render {
            shared: None,
            window: true,
            hints: false,
            rank: u8::MAX,
        };
        assert!(
            words
                .render(report)
                .starts_with("UNEVEN: 100 % on greetserver-demo-b9qnp-9hlbq over")
        );
    }
}
