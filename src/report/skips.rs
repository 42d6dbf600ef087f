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

/// How many messages of each kind [`image_messages`] lists; the rest of that kind are one
/// counted message. SARIF notifications and GitLab messages are read by people in a UI, where
/// a hundred thousand lines hide everything else; the JSON report lists every record.
pub const LISTED_PER_KIND: usize = 100;

/// Whether [`image_messages`] lists every skipped layer and record of `image` (none of its
/// kinds is over [`LISTED_PER_KIND`]).
pub fn listed_in_full(image: &ImageReport) -> bool {
    let layers = image.layers.iter().filter(|l| l.skipped.is_some()).count();
    let of = |kind: SkipKind| image.skipped.iter().filter(|r| r.kind == kind).count();
    layers + of(SkipKind::NotScanned) <= LISTED_PER_KIND
        && of(SkipKind::Irregular) <= LISTED_PER_KIND
}

/// One message per thing the image's scan left out or found irregular: each skipped layer,
/// then each skip record, worded `<kind>: layer N: <what>: <reason>`, at most
/// [`LISTED_PER_KIND`] of each kind; past that, one message per kind counts the rest (`not
/// scanned: 99900 more items not listed here; the JSON report lists them all`). Printers with
/// a place for machine-read notes (SARIF notifications, GitLab messages) write them.
pub fn image_messages(image: &ImageReport) -> Vec<(SkipKind, String)> {
    let layers = image.layers.iter().filter_map(|layer| {
        let reason = layer.skipped.as_ref()?;
        Some((
            SkipKind::NotScanned,
            format!("not scanned: layer {}: {reason}", layer.index + 1),
        ))
    });
    let records = image.skipped.iter().map(|record| {
        (
            record.kind,
            format!("{}: {}", kind_words(record.kind), record_sentence(record)),
        )
    });
    let mut messages = Vec::new();
    let mut seen = [0usize; 2];
    let slot = |kind: SkipKind| match kind {
        SkipKind::NotScanned => 0,
        SkipKind::Irregular => 1,
    };
    for (kind, text) in layers.chain(records) {
        seen[slot(kind)] += 1;
        if seen[slot(kind)] <= LISTED_PER_KIND {
            messages.push((kind, text));
        }
    }
    for kind in [SkipKind::NotScanned, SkipKind::Irregular] {
        let more = seen[slot(kind)].saturating_sub(LISTED_PER_KIND);
        if more > 0 {
            messages.push((
                kind,
                format!(
                    "{}: {more} more not listed here; the JSON report lists them all",
                    kind_words(kind)
                ),
            ));
        }
    }
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

    #[test]
    fn messages_list_a_bounded_number_per_kind_and_count_the_rest() {
        let mut report = leaky_report();
        let image = &mut report.images[0];
        let record = |index: usize, kind: SkipKind| SkipRecord {
            layer_index: 0,
            what: format!("big-{index}.zip"),
            reason: "over the archive budget".into(),
            kind,
        };
        image.layers[0].skipped = Some("foreign layer".into());
        image
            .skipped
            .extend((0..1000).map(|i| record(i, SkipKind::NotScanned)));
        image
            .skipped
            .extend((0..7).map(|i| record(i, SkipKind::Irregular)));
        let messages = image_messages(image);
        let of = |kind: SkipKind| messages.iter().filter(|(k, _)| *k == kind).count();
        // 100 listed and one counting the rest; the irregular ones, under the bound, all.
        assert_eq!(
            (of(SkipKind::NotScanned), of(SkipKind::Irregular)),
            (LISTED_PER_KIND + 1, 7)
        );
        assert_eq!(messages[0].1, "not scanned: layer 1: foreign layer");
        assert_eq!(
            messages[LISTED_PER_KIND - 1].1,
            "not scanned: layer 1: big-98.zip: over the archive budget"
        );
        let last = messages.iter().rfind(|(k, _)| *k == SkipKind::NotScanned);
        assert_eq!(
            last.map(|(_, text)| text.as_str()),
            Some("not scanned: 901 more not listed here; the JSON report lists them all")
        );
        assert!(!listed_in_full(image));
        image.skipped.truncate(LISTED_PER_KIND - 1);
        assert!(listed_in_full(image));
    }
}
