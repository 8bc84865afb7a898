//! The query parameters the fake reads, label and field selectors included.

use std::time::Duration;

use axum::extract::Query;
use axum::http::Uri;
use serde_json::Value;

/// Watch length when the request carries no `timeoutSeconds`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);

/// The query parameters the fake reads.
pub(crate) struct Params {
    pub(crate) watch: bool,
    pub(crate) resource_version: Option<u64>,
    pub(crate) timeout: Duration,
    pub(crate) bookmarks: bool,
    pub(crate) send_initial_events: bool,
    labels: Selector,
    fields: Selector,
}

impl Params {
    pub(crate) fn parse(uri: &Uri) -> Result<Params, String> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(uri).map_err(|e| e.body_text())?;
        let get = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let flag = |key: &str| -> Result<bool, String> {
            match get(key) {
                None | Some("" | "false" | "0") => Ok(false),
                Some("true" | "1") => Ok(true),
                Some(other) => Err(format!("{key}: invalid value {other:?}: must be true or false")),
            }
        };
        let resource_version = match get("resourceVersion") {
            None | Some("") => None,
            Some(rv) => Some(
                rv.parse::<u64>()
                    .map_err(|_| format!("resourceVersion: Invalid value: {rv:?}: must be an integer"))?,
            ),
        };
        let timeout = match get("timeoutSeconds") {
            None | Some("") => DEFAULT_WATCH_TIMEOUT,
            Some(secs) => Duration::from_secs(
                secs.parse::<u64>()
                    .map_err(|_| format!("timeoutSeconds: Invalid value: {secs:?}: must be a non-negative integer"))?,
            ),
        };
        if let Some(limit) = get("limit")
            && !limit.is_empty()
            && limit.parse::<i64>().is_err()
        {
            return Err(format!("limit: Invalid value: {limit:?}: must be an integer"));
        }
        if get("continue").is_some_and(|token| !token.is_empty()) {
            return Err("continue: the fake never hands out continue tokens".to_owned());
        }
        Ok(Params {
            watch: flag("watch")?,
            resource_version,
            timeout,
            bookmarks: flag("allowWatchBookmarks")?,
            send_initial_events: flag("sendInitialEvents")?,
            labels: Selector::parse(get("labelSelector").unwrap_or(""), "labelSelector")?,
            fields: Selector::parse(get("fieldSelector").unwrap_or(""), "fieldSelector")?,
        })
    }

    pub(crate) fn matches(&self, object: &Value) -> bool {
        let metadata = &object["metadata"];
        let labels = |key: &str| metadata["labels"][key].as_str().map(str::to_owned);
        let fields = |key: &str| match key {
            "metadata.name" => metadata["name"].as_str().map(str::to_owned),
            "metadata.namespace" => metadata["namespace"].as_str().map(str::to_owned),
            _ => None,
        };
        self.labels.matches(labels) && self.fields.matches(fields)
    }
}

/// Equality-based selector: every requirement must hold.
struct Selector(Vec<Requirement>);

enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
}

impl Selector {
    fn parse(text: &str, what: &str) -> Result<Selector, String> {
        // A key or value may not hold what would make it part of a set-based or malformed selector.
        let bad = |s: &str| s.contains(|c: char| c.is_whitespace() || "()=!,".contains(c));
        let mut requirements = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (requirement, key, value) = if let Some((key, value)) = part.split_once("!=") {
                (
                    Requirement::NotEquals(key.trim().to_owned(), value.trim().to_owned()),
                    key,
                    value,
                )
            } else if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (
                    Requirement::Equals(key.trim().to_owned(), value.trim().to_owned()),
                    key,
                    value,
                )
            } else if let Some(key) = part.strip_prefix('!') {
                (Requirement::NotExists(key.trim().to_owned()), key, "")
            } else {
                (Requirement::Exists(part.to_owned()), part, "")
            };
            if key.trim().is_empty() || bad(key.trim()) || bad(value.trim()) {
                return Err(format!("{what}: unsupported or invalid requirement {part:?}"));
            }
            requirements.push(requirement);
        }
        Ok(Selector(requirements))
    }

    fn matches(&self, lookup: impl Fn(&str) -> Option<String>) -> bool {
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => lookup(key).as_deref() == Some(value),
            Requirement::NotEquals(key, value) => lookup(key).as_deref() != Some(value),
            Requirement::Exists(key) => lookup(key).is_some(),
            Requirement::NotExists(key) => lookup(key).is_none(),
        })
    }
}
