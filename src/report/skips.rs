//! Words about what a scan left out, shared by every printer: a scan that reached a limit
//! must say so in each format, or "no secrets found" reads as a clean bill of health.
//!
//! Two kinds of skip record exist (see [`SkipKind`]): content *not scanned* (a limit reached,
//! an encrypted or unreadable member), which makes the result incomplete, and *irregular
//! entries*, read as runtimes read them and scanned, reported because ordinary tools never
//! write them.

#[cfg(test)]
use super::model::Report;
use super::model::{ImageReport, SkipKind, SkipRecord, Stats};

/// How many skip records a printer lists per image before pointing at the full list.
pub const SHOWN: usize = 3;

/// `1 item not scanned`, `2 layers not scanned`, `6 irregular entries`: one phrase per count
/// that is not zero, in that order; empty when the scan was complete and regular.
pub fn count_phrases(stats: &Stats) -> Vec<String> {
    let mut phrases = Vec::new();
    if stats.items_skipped > 0 {
        phrases.push(format!(
            "{} not scanned",
            plural(stats.items_skipped, "item", "items")
        ));
    }
    if stats.layers_skipped > 0 {
        phrases.push(format!(
            "{} not scanned",
            plural(stats.layers_skipped, "layer", "layers")
        ));
    }
    if stats.items_irregular > 0 {
        phrases.push(plural(
            stats.items_irregular,
            "irregular entry",
            "irregular entries",
        ));
    }
    phrases
}

/// `1 item`, `3 items`.
pub fn plural(count: usize, one: &str, many: &str) -> String {
    format!("{count} {}", if count == 1 { one } else { many })
}

/// The heading of a kind's list in the text report.
pub fn kind_heading(kind: SkipKind, count: usize) -> String {
    match kind {
        SkipKind::NotScanned => format!("{} not scanned", plural(count, "item", "items")),
        SkipKind::Irregular => format!(
            "{} (scanned as runtimes read them)",
            plural(count, "irregular entry", "irregular entries")
        ),
    }
}

/// `layer 2: app.zip!/key.txt: encrypted zip member`; layers counted from 1, as the text
/// report and the GitLab messages count them.
pub fn record_sentence(record: &SkipRecord) -> String {
    format!(
        "layer {}: {}: {}",
        record.layer_index + 1,
        record.what,
        record.reason
    )
}

/// `not scanned` or `irregular entry`: what a record is, in the words messages start with.
pub fn kind_words(kind: SkipKind) -> &'static str {
    match kind {
        SkipKind::NotScanned => "not scanned",
        SkipKind::Irregular => "irregular entry",
    }
}

/// One message per thing the image's scan left out or found irregular: each skipped layer,
/// then each skip record, worded `<kind>: layer N: <what>: <reason>`. Printers with a place for
/// machine-read notes (SARIF notifications, GitLab messages) write them all.
pub fn image_messages(image: &ImageReport) -> Vec<(SkipKind, String)> {
    let mut messages: Vec<(SkipKind, String)> = image
        .layers
        .iter()
        .filter_map(|layer| {
            let reason = layer.skipped.as_ref()?;
            Some((
                SkipKind::NotScanned,
                format!("not scanned: layer {}: {reason}", layer.index + 1),
            ))
        })
        .collect();
    messages.extend(image.skipped.iter().map(|record| {
        (
            record.kind,
            format!("{}: {}", kind_words(record.kind), record_sentence(record)),
        )
    }));
    messages
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample::{add_two_skips, leaky_report};

    #[test]
    fn counts_and_messages_name_each_kind() {
        let mut report = leaky_report();
        assert!(count_phrases(&report.stats).is_empty());
        let image = &mut report.images[0];
        add_two_skips(image);
        let report = Report::new(report.images, 1);
        assert_eq!(
            count_phrases(&report.stats),
            ["1 item not scanned", "1 irregular entry"]
        );
        let messages = image_messages(&report.images[0]);
        assert_eq!(
            messages[0].1,
            "not scanned: layer 2: app.zip!/key.txt: encrypted zip member"
        );
        assert!(
            messages[1]
                .1
                .starts_with("irregular entry: layer 1: d/sub: tar header")
        );
        assert_eq!(
            kind_heading(SkipKind::Irregular, 2),
            "2 irregular entries (scanned as runtimes read them)"
        );
    }
}
