//! `--format json`: the report model as it is ([`super::model`]), pretty-printed, findings in a
//! deterministic order so two reports diff cleanly. The same JSON, stored in the cache, reads
//! back into the model: the server decides admissions from it.

use std::io::Write;

use anyhow::Result;

use super::Report;

pub fn write(report: &Report, out: &mut dyn Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::Compression;
    use crate::report::field::ConfigField;
    use crate::report::model::{SkipKind, SkipRecord};
    use crate::report::sample::{add_two_skips, leaky_report};

    /// The server reads back the reports the CLI and the server store: every field written must
    /// read back into the same value, and writing it again must give the same bytes.
    #[test]
    fn a_report_reads_back_into_the_same_report() {
        let mut report = leaky_report();
        let image = &mut report.images[0];
        add_two_skips(image);
        image.layers[1].skipped = Some("foreign layer".into());
        image.layers[0].compression = Some(Compression::Gzip);
        image.findings[0].location.archive_path = vec!["app.jar".into(), "conf.yaml".into()];
        image.findings[0]
            .details
            .insert("account".into(), "123456789012".into());
        for pretty in [false, true] {
            let write = |report: &Report| {
                if pretty {
                    serde_json::to_vec_pretty(report).unwrap()
                } else {
                    serde_json::to_vec(report).unwrap()
                }
            };
            let first = write(&report);
            let read: Report = serde_json::from_slice(&first).unwrap();
            assert_eq!(
                String::from_utf8(write(&read)).unwrap(),
                String::from_utf8(first).unwrap()
            );
        }
        let read: Report = serde_json::from_slice(&serde_json::to_vec(&report).unwrap()).unwrap();
        let field = read.images[0].findings[1].location.field.as_ref();
        assert_eq!(field, Some(&ConfigField::BuildArg("AWS_KEY".into())));
        assert_eq!(read.images[0].skipped[1].kind, SkipKind::Irregular);
        assert_eq!(read.images[0].stats.items_irregular, 1);
    }

    /// Skip kinds came after schema version 1: a report with nothing skipped is written as
    /// before, and a skip record written before kinds existed reads as not scanned.
    #[test]
    fn skip_kinds_leave_older_reports_alone() {
        let report = leaky_report();
        let text = serde_json::to_string(&report).unwrap();
        assert!(!text.contains("items_irregular") && !text.contains("\"kind\":\"not"));
        let old = r#"{"layer_index": 2, "what": "a.zip!/b", "reason": "encrypted zip member"}"#;
        let record: SkipRecord = serde_json::from_str(old).unwrap();
        assert!(record.is_not_scanned());
    }
}
