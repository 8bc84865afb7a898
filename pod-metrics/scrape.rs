//! One scrape of one target: fetch under the time limit, read the body,
//! and say in words what was wrong when nothing usable came back.

use std::time::{Duration, Instant};

use crate::counters::PodCounters;
use crate::families::{Read, read};
use crate::fetch::{Fetch, url_of, where_of};
use crate::parse::MAX_SAMPLES;
use crate::reading::{PodReading, ScrapeConfig, ScrapeStatus, Target, Via};

/// A body fetched and read.
#[derive(Debug)]
pub(crate) struct Scraped {
    pub(crate) read: Read,
    pub(crate) content_type: Option<String>,
}

/// Fetches and reads `target` within `config.timeout`; the cause in words
/// when that fails.
pub(crate) async fn scrape(fetch: &dyn Fetch, target: &Target, config: &ScrapeConfig) -> Result<Scraped, String> {
    let fetched = tokio::time::timeout(config.timeout, fetch.fetch(target, config.max_bytes))
        .await
        .map_err(|_| format!("timed out after {}", duration_text(config.timeout)))?
        .map_err(|e| e.0)?;
    let read = read(&fetched.body, MAX_SAMPLES);
    if read.stats.bad_lines > 0 || read.stats.truncated {
        tracing::debug!(
            target = %where_of(target),
            bad_lines = read.stats.bad_lines,
            truncated = read.stats.truncated,
            "metrics page read in part"
        );
    }
    Ok(Scraped {
        read,
        content_type: fetched.content_type,
    })
}

/// Why a page that was read has no gRPC numbers: not Prometheus at all
/// (an HTML page, a wrong path), or Prometheus without a gRPC server family.
pub(crate) fn no_family_cause(target: &Target, scraped: &Scraped) -> String {
    let at = where_of(target);
    let stats = &scraped.read.stats;
    if stats.samples == 0 && stats.declared.is_empty() {
        let answered = scraped
            .content_type
            .as_deref()
            .and_then(|ct| ct.split(';').next())
            .map(str::trim)
            .filter(|ct| !ct.is_empty())
            .unwrap_or("text");
        format!("not Prometheus metrics at {at}: it answered {answered} with no samples (is --metrics-path right?)")
    } else {
        format!(
            "no gRPC server metrics at {at} — looked for grpc_server_handled_total, \
             rpc_server_call_duration_seconds, rpc_server_duration_milliseconds"
        )
    }
}

/// `1s`, `1.5s`, `200ms`.
pub(crate) fn duration_text(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let text = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", text.trim_end_matches('0'))
    }
}

/// The name a reading shows: the target's, else the pod's own hint, else
/// where it was read (a URL's `host:port`: the path is the same for all).
pub(crate) fn shown_name(target: &Target, hint: Option<&str>) -> String {
    if !target.pod.is_empty() {
        return greet_proto::sanitize::sanitize(&target.pod).into_owned();
    }
    let authority = match &target.via {
        Via::Url(url) => url.parse::<http::Uri>().ok().and_then(|uri| {
            uri.authority()
                .map(|a| greet_proto::sanitize::sanitize(a.as_str()).into_owned())
        }),
        Via::PodProxy { .. } => None,
    };
    hint.map(str::to_owned)
        .or(authority)
        .unwrap_or_else(|| where_of(target))
}

/// One scrape of `target`, its totals everything the pod has counted since
/// it started (no baseline: for `--once` and tests). When `target.pod` is
/// empty, the pod's own name hint (or its URL) names it.
pub async fn scrape_once(fetch: &dyn Fetch, target: &Target, config: &ScrapeConfig) -> PodReading {
    let outcome = scrape(fetch, target, config).await;
    let now = Instant::now();
    let mut reading = PodReading {
        pod: shown_name(target, None),
        ip: greet_proto::sanitize::sanitize(&target.ip).into_owned(),
        url: url_of(target),
        family: None,
        totals: None,
        status: ScrapeStatus::Pending,
    };
    match outcome {
        Err(cause) => {
            reading.status = ScrapeStatus::Failing {
                cause,
                since: now,
                last_ok: None,
            }
        }
        Ok(scraped) => {
            reading.pod = shown_name(target, scraped.read.pod_hint.as_deref());
            match &scraped.read.observed {
                Some(observed) => {
                    let mut counters = PodCounters::lifetime();
                    counters.apply(observed);
                    reading.family = Some(observed.family);
                    reading.totals = Some(counters.totals().clone());
                    reading.status = ScrapeStatus::Ok { at: now };
                }
                None => {
                    reading.status = ScrapeStatus::NoGrpcMetrics {
                        cause: no_family_cause(target, &scraped),
                        at: now,
                    }
                }
            }
        }
    }
    reading
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_short() {
        assert_eq!(duration_text(Duration::from_secs(1)), "1s");
        assert_eq!(duration_text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration_text(Duration::from_millis(1250)), "1.25s");
        assert_eq!(duration_text(Duration::from_millis(200)), "200ms");
    }
}
