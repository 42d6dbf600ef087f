//! `GET /metrics`: counters, gauges and histograms in the Prometheus text exposition format
//! (version 0.0.4), written by hand. The set is small and fixed, so atomics and a formatter
//! are all it takes; no registry crate is needed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::detect::Severity;
use crate::store::redis::{Observer, Outcome};

/// The content type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A histogram with fixed buckets (upper bounds in seconds).
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        // Buckets are stored non-cumulatively and summed when rendered.
        if let Some(index) = self.bounds.iter().position(|&bound| seconds <= bound) {
            self.buckets[index].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in self.bounds.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = self.count();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

const ADMISSION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
const STORE_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const SCAN_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// Every metric the server exports.
pub struct Metrics {
    pub scans_ok: AtomicU64,
    pub scans_failed: AtomicU64,
    /// Layers walked and matched by a scan.
    pub layers_scanned: AtomicU64,
    /// Layers whose results came from the layer cache.
    pub layers_from_cache: AtomicU64,
    /// Report lookups answered from the report cache / not.
    pub report_cache_hits: AtomicU64,
    pub report_cache_misses: AtomicU64,
    pub jobs_queued: AtomicU64,
    pub jobs_deduplicated: AtomicU64,
    pub jobs_rejected: AtomicU64,
    /// Shared-queue scans that failed and were queued again, or buried after the last try.
    pub scan_retries: AtomicU64,
    pub dead_letters: AtomicU64,
    pub events_distribution: AtomicU64,
    pub events_harbor: AtomicU64,
    pub admissions_allowed: AtomicU64,
    pub admissions_denied: AtomicU64,
    pub admissions_invalid: AtomicU64,
    /// Admissions in which at least one image had no result in time.
    pub admissions_unknown: AtomicU64,
    /// Findings in finished scans, indexed like [`Severity::ALL`].
    findings: [AtomicU64; 5],
    /// Calls to a shared store, by outcome.
    pub store_ok: AtomicU64,
    pub store_failed: AtomicU64,
    pub store_unreachable: AtomicU64,
    /// 1 while the last call reached the shared store, 0 after one that did not.
    pub store_up: AtomicU64,
    pub scan_seconds: Histogram,
    pub admission_seconds: Histogram,
    pub store_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            scans_ok: AtomicU64::new(0),
            scans_failed: AtomicU64::new(0),
            layers_scanned: AtomicU64::new(0),
            layers_from_cache: AtomicU64::new(0),
            report_cache_hits: AtomicU64::new(0),
            report_cache_misses: AtomicU64::new(0),
            jobs_queued: AtomicU64::new(0),
            jobs_deduplicated: AtomicU64::new(0),
            jobs_rejected: AtomicU64::new(0),
            scan_retries: AtomicU64::new(0),
            dead_letters: AtomicU64::new(0),
            events_distribution: AtomicU64::new(0),
            events_harbor: AtomicU64::new(0),
            admissions_allowed: AtomicU64::new(0),
            admissions_denied: AtomicU64::new(0),
            admissions_invalid: AtomicU64::new(0),
            admissions_unknown: AtomicU64::new(0),
            findings: Default::default(),
            store_ok: AtomicU64::new(0),
            store_failed: AtomicU64::new(0),
            store_unreachable: AtomicU64::new(0),
            store_up: AtomicU64::new(1),
            scan_seconds: Histogram::new(SCAN_BUCKETS),
            admission_seconds: Histogram::new(ADMISSION_BUCKETS),
            store_seconds: Histogram::new(STORE_BUCKETS),
        }
    }
}

/// Gauges read when rendering.
pub struct Gauges {
    pub queue_depth: usize,
    pub scans_in_progress: usize,
    pub queue_capacity: usize,
    /// The shared queue (waiting, in flight), when there is one and it answered.
    pub shared_queue: Option<(u64, u64)>,
}

/// What a shared store reports of each call: counted by outcome and timed.
pub fn store_observer(metrics: &Arc<Metrics>) -> Observer {
    let metrics = Arc::clone(metrics);
    Arc::new(move |elapsed, outcome| {
        metrics.store_seconds.observe(elapsed);
        let (counter, up) = match outcome {
            Outcome::Ok => (&metrics.store_ok, 1),
            Outcome::Failed => (&metrics.store_failed, 1),
            Outcome::Unreachable => (&metrics.store_unreachable, 0),
        };
        inc(counter);
        metrics.store_up.store(up, Ordering::Relaxed);
    })
}

/// Adds one to a counter.
pub fn inc(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn add_findings(&self, severity: Severity, count: u64) {
        let index = Severity::ALL
            .iter()
            .position(|s| *s == severity)
            .expect("every severity is listed");
        self.findings[index].fetch_add(count, Ordering::Relaxed);
    }

    /// The exposition text: counters and gauges, then histograms. Families are grouped by
    /// what they describe; the order of the output is the order of the groups.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::with_capacity(4096);
        self.render_scan_results(&mut out);
        self.render_queue(&mut out, gauges);
        self.render_intake(&mut out);
        self.render_store(&mut out);
        self.scan_seconds.render(
            &mut out,
            "stowaway_scan_duration_seconds",
            "Time to scan one image (resolve, fetch, walk, match).",
        );
        self.admission_seconds.render(
            &mut out,
            "stowaway_admission_duration_seconds",
            "Time to answer one admission review.",
        );
        self.store_seconds.render(
            &mut out,
            "stowaway_store_operation_duration_seconds",
            "Time of one call to the shared result store (--store), failed calls included.",
        );
        out
    }

    /// The shared result store: whether it answers, and how its calls went.
    fn render_store(&self, out: &mut String) {
        write_family(
            out,
            "stowaway_store_up",
            "gauge",
            "1 while the last call reached the result store, 0 after one that could not (/readyz fails then).",
            &[("", get(&self.store_up))],
        );
        write_family(
            out,
            "stowaway_store_operations_total",
            "counter",
            "Calls to the shared result store, by outcome: ok, error (the store refused), unreachable (down or timed out).",
            &[
                ("outcome=\"ok\"", get(&self.store_ok)),
                ("outcome=\"error\"", get(&self.store_failed)),
                ("outcome=\"unreachable\"", get(&self.store_unreachable)),
            ],
        );
    }

    /// What finished scans found and where their layer and report results came from.
    fn render_scan_results(&self, out: &mut String) {
        write_family(
            out,
            "stowaway_scans_total",
            "counter",
            "Image scans finished, by result.",
            &[
                ("result=\"ok\"", get(&self.scans_ok)),
                ("result=\"error\"", get(&self.scans_failed)),
            ],
        );
        write_family(
            out,
            "stowaway_layers_total",
            "counter",
            "Layers of scanned images, by where their result came from (scanned now or the layer cache).",
            &[
                ("source=\"scanned\"", get(&self.layers_scanned)),
                ("source=\"cache\"", get(&self.layers_from_cache)),
            ],
        );
        write_family(
            out,
            "stowaway_layer_cache_hits_total",
            "counter",
            "Layers whose result came from the layer cache instead of a scan.",
            &[("", get(&self.layers_from_cache))],
        );
        write_family(
            out,
            "stowaway_report_cache_hits_total",
            "counter",
            "Report lookups (admissions, GET /reports) answered from the report cache.",
            &[("", get(&self.report_cache_hits))],
        );
        write_family(
            out,
            "stowaway_report_cache_misses_total",
            "counter",
            "Report lookups that found no report.",
            &[("", get(&self.report_cache_misses))],
        );
        let severity_labels: Vec<String> = Severity::ALL
            .iter()
            .map(|s| format!("severity=\"{s}\""))
            .collect();
        let findings: Vec<(&str, u64)> = severity_labels
            .iter()
            .zip(&self.findings)
            .map(|(label, count)| (label.as_str(), get(count)))
            .collect();
        write_family(
            out,
            "stowaway_findings_total",
            "counter",
            "Findings in finished scans, by severity.",
            &findings,
        );
    }

    /// The scan queue: how full it is and what happened to scan requests.
    fn render_queue(&self, out: &mut String, gauges: &Gauges) {
        write_family(
            out,
            "stowaway_queue_depth",
            "gauge",
            "Scans waiting in the queue.",
            &[("", gauges.queue_depth as u64)],
        );
        write_family(
            out,
            "stowaway_queue_capacity",
            "gauge",
            "Size of the scan queue.",
            &[("", gauges.queue_capacity as u64)],
        );
        write_family(
            out,
            "stowaway_scans_in_progress",
            "gauge",
            "Scans running now.",
            &[("", gauges.scans_in_progress as u64)],
        );
        write_family(
            out,
            "stowaway_scan_requests_total",
            "counter",
            "Scan requests, by outcome: queued, deduplicated (already queued or running), rejected (queue full).",
            &[
                ("outcome=\"queued\"", get(&self.jobs_queued)),
                ("outcome=\"deduplicated\"", get(&self.jobs_deduplicated)),
                ("outcome=\"rejected\"", get(&self.jobs_rejected)),
            ],
        );
        write_family(
            out,
            "stowaway_scan_retries_total",
            "counter",
            "Scans of the shared queue that failed and were queued again by this process.",
            &[("", get(&self.scan_retries))],
        );
        write_family(
            out,
            "stowaway_scan_dead_letters_total",
            "counter",
            "Scans of the shared queue that failed their last attempt here (GET /reports/{digest} says why).",
            &[("", get(&self.dead_letters))],
        );
        if let Some((waiting, in_flight)) = gauges.shared_queue {
            write_family(
                out,
                "stowaway_shared_queue_depth",
                "gauge",
                "Scans waiting in the shared queue (every process on the store).",
                &[("", waiting)],
            );
            write_family(
                out,
                "stowaway_shared_queue_in_flight",
                "gauge",
                "Scans of the shared queue taken by a worker and not finished.",
                &[("", in_flight)],
            );
        }
    }

    /// What reached the server from outside: registry push events and admission reviews.
    fn render_intake(&self, out: &mut String) {
        write_family(
            out,
            "stowaway_registry_events_total",
            "counter",
            "Manifest push events received, by sender.",
            &[
                ("sender=\"distribution\"", get(&self.events_distribution)),
                ("sender=\"harbor\"", get(&self.events_harbor)),
            ],
        );
        write_family(
            out,
            "stowaway_admissions_total",
            "counter",
            "Admission reviews answered, by decision (invalid: malformed requests).",
            &[
                ("decision=\"allowed\"", get(&self.admissions_allowed)),
                ("decision=\"denied\"", get(&self.admissions_denied)),
                ("decision=\"invalid\"", get(&self.admissions_invalid)),
            ],
        );
        write_family(
            out,
            "stowaway_admissions_unknown_total",
            "counter",
            "Admissions in which an image had no scan result within the time budget.",
            &[("", get(&self.admissions_unknown))],
        );
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// One metric family: its `HELP` and `TYPE` lines, then a sample per label set (`""` for a
/// sample without labels).
fn write_family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_histograms() {
        let metrics = Metrics::default();
        inc(&metrics.scans_ok);
        metrics.add_findings(Severity::High, 3);
        metrics
            .admission_seconds
            .observe(Duration::from_micros(300));
        metrics.admission_seconds.observe(Duration::from_millis(7));
        metrics.admission_seconds.observe(Duration::from_secs(60));
        let text = metrics.render(&Gauges {
            queue_depth: 2,
            scans_in_progress: 1,
            queue_capacity: 8,
            shared_queue: None,
        });
        assert!(
            text.contains("stowaway_scans_total{result=\"ok\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("stowaway_findings_total{severity=\"high\"} 3\n"));
        assert!(text.contains("stowaway_queue_depth 2\n"));
        assert!(text.contains("stowaway_admission_duration_seconds_bucket{le=\"0.0005\"} 1\n"));
        assert!(text.contains("stowaway_admission_duration_seconds_bucket{le=\"0.01\"} 2\n"));
        assert!(text.contains("stowaway_admission_duration_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("stowaway_admission_duration_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("stowaway_admission_duration_seconds_count 3\n"));
        // Every sample line is `name{labels} value` or `name value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let value = line.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}
