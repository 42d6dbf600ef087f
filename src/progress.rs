//! Progress on a terminal: one line per layer in flight, showing how much of the stored blob was
//! read (downloaded, for a registry) and how much content was scanned. Only used when standard
//! error is a terminal; never mixed into reports.

use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::scan::Progress;

/// Progress bars for one image.
pub struct TerminalProgress {
    multi: MultiProgress,
    header: ProgressBar,
    /// The bar of each layer in flight, and the content bytes it has scanned so far.
    layers: Mutex<Vec<Option<(ProgressBar, u64)>>>,
    layer_count: usize,
}

impl TerminalProgress {
    pub fn new(reference: &str, layer_count: usize) -> TerminalProgress {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        let header = multi.add(ProgressBar::new(layer_count as u64));
        header.set_style(
            ProgressStyle::with_template("{spinner} {prefix} {pos}/{len} layers {elapsed}")
                .expect("valid template"),
        );
        header.set_prefix(reference.to_string());
        header.enable_steady_tick(std::time::Duration::from_millis(120));
        TerminalProgress {
            multi,
            header,
            layers: Mutex::new(vec![None; layer_count]),
            layer_count,
        }
    }

    pub fn finish(self) {
        self.header.finish_and_clear();
        let _ = self.multi.clear();
    }

    fn with_bar(&self, layer: usize, update: impl FnOnce(&ProgressBar, &mut u64)) {
        if let Some(Some((bar, scanned))) = self.layers.lock().unwrap().get_mut(layer) {
            update(bar, scanned);
        }
    }
}

impl Progress for TerminalProgress {
    fn layer_started(&self, layer: usize, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size.max(1)));
        bar.set_style(
            ProgressStyle::with_template(
                "  layer {prefix:>3} [{bar:24}] {binary_bytes}/{binary_total_bytes} read, {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{}/{}", layer + 1, self.layer_count));
        bar.set_message("0 B scanned");
        if let Some(slot) = self.layers.lock().unwrap().get_mut(layer) {
            *slot = Some((bar, 0));
        }
    }

    fn stored(&self, layer: usize, bytes: u64) {
        self.with_bar(layer, |bar, _| bar.inc(bytes));
    }

    fn scanned(&self, layer: usize, bytes: u64) {
        self.with_bar(layer, |bar, scanned| {
            *scanned += bytes;
            bar.set_message(format!("{} scanned", indicatif::HumanBytes(*scanned)));
        });
    }

    fn layer_done(&self, layer: usize) {
        if let Some((bar, _)) = self
            .layers
            .lock()
            .unwrap()
            .get_mut(layer)
            .and_then(Option::take)
        {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.header.inc(1);
    }
}

/// One bar counting items done (a sweep's images), on standard error.
pub struct CountProgress {
    bar: ProgressBar,
}

impl CountProgress {
    pub fn new(what: &str, total: u64) -> CountProgress {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {pos}/{len} {prefix} {elapsed} (eta {eta})")
                .expect("valid template"),
        );
        bar.set_prefix(what.to_string());
        bar.enable_steady_tick(std::time::Duration::from_millis(250));
        CountProgress { bar }
    }

    pub fn inc(&self) {
        self.bar.inc(1);
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
