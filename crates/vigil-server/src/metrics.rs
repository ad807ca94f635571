//! Prometheus metrics, kept in process and written in the text exposition format: requests and
//! their latencies by route, webhook outcomes, analysis time, and the inbox's depth (read from
//! the store when scraped).
//!
//! Model tokens are the process's counts from vigil-infer: the embeddings memory computes, and
//! chat prompt and generated tokens when a chat model runs in this process.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::QueueDepth;

/// Upper bounds of the latency histogram buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Registry {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<String, Histogram>,
    webhooks: BTreeMap<(String, &'static str), u64>,
    analysis: Histogram,
    analysis_failures: u64,
}

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics(Mutex<Registry>);

impl Metrics {
    /// Counts a request to `route` (the matched pattern, never the raw path) and its latency.
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut r) = self.0.lock() {
            *r.requests
                .entry((method.to_owned(), route.to_owned(), status))
                .or_default() += 1;
            r.latency
                .entry(route.to_owned())
                .or_default()
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a webhook outcome: accepted, duplicate, rejected.
    pub fn webhook(&self, tool: &str, outcome: &'static str) {
        if let Ok(mut r) = self.0.lock() {
            *r.webhooks.entry((tool.to_owned(), outcome)).or_default() += 1;
        }
    }

    /// Records one analysis and its duration.
    pub fn analysis(&self, elapsed: Duration, ok: bool) {
        if let Ok(mut r) = self.0.lock() {
            r.analysis.observe(elapsed.as_secs_f64());
            if !ok {
                r.analysis_failures += 1;
            }
        }
    }

    /// The exposition text, with the inbox depth given.
    pub fn render(&self, depth: Option<QueueDepth>) -> String {
        let mut out = String::new();
        let Ok(r) = self.0.lock() else {
            return out;
        };
        out.push_str("# HELP vigil_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE vigil_http_requests_total counter\n");
        for ((method, route, status), n) in &r.requests {
            let _ = writeln!(
                out,
                "vigil_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP vigil_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE vigil_http_request_duration_seconds histogram\n");
        for (route, h) in &r.latency {
            let labels = format!("route=\"{route}\"");
            h.write(&mut out, "vigil_http_request_duration_seconds", &labels);
        }
        out.push_str("# HELP vigil_webhooks_total Webhook events by tool and outcome.\n");
        out.push_str("# TYPE vigil_webhooks_total counter\n");
        for ((tool, outcome), n) in &r.webhooks {
            let _ = writeln!(
                out,
                "vigil_webhooks_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        out.push_str("# HELP vigil_analysis_duration_seconds Time to analyse one artifact.\n");
        out.push_str("# TYPE vigil_analysis_duration_seconds histogram\n");
        r.analysis
            .write(&mut out, "vigil_analysis_duration_seconds", "");
        out.push_str("# HELP vigil_analysis_failures_total Analyses that failed.\n");
        out.push_str("# TYPE vigil_analysis_failures_total counter\n");
        let _ = writeln!(out, "vigil_analysis_failures_total {}", r.analysis_failures);
        let usage = vigil_infer::token_usage();
        out.push_str(
            "# HELP vigil_model_tokens_total Tokens the local models processed: embedded, chat \
             prompt and generated.\n",
        );
        out.push_str("# TYPE vigil_model_tokens_total counter\n");
        for (kind, n) in [
            ("embedded", usage.embedded),
            ("prompt", usage.prompt),
            ("generated", usage.generated),
        ] {
            let _ = writeln!(out, "vigil_model_tokens_total{{kind=\"{kind}\"}} {n}");
        }
        if let Some(d) = depth {
            out.push_str("# HELP vigil_inbox_events Webhook inbox events by status.\n");
            out.push_str("# TYPE vigil_inbox_events gauge\n");
            for (status, n) in [
                ("pending", d.pending),
                ("processing", d.processing),
                ("done", d.done),
                ("dead", d.dead),
            ] {
                let _ = writeln!(out, "vigil_inbox_events{{status=\"{status}\"}} {n}");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_depth() {
        let m = Metrics::default();
        m.request("GET", "/healthz", 200, Duration::from_millis(3));
        m.analysis(Duration::from_millis(20), true);
        let text = m.render(Some(QueueDepth {
            pending: 4,
            ..QueueDepth::default()
        }));
        assert!(text.contains(
            "vigil_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "vigil_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005\"} 1"
        ));
        assert!(text.contains("vigil_analysis_duration_seconds_count{} 1"));
        assert!(text.contains("vigil_inbox_events{status=\"pending\"} 4"));
    }
}
