//! `--format json`: the report model as it is (see DESIGN.md), pretty-printed, findings in a
//! deterministic order so two reports diff cleanly.

use std::io::Write;

use anyhow::Result;

use super::Report;

pub fn write(report: &Report, out: &mut dyn Write) -> Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)?;
    Ok(())
}
