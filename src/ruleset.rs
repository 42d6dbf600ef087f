//! The one place a command's rules become a scanner. `stowaway scan` and `stowaway serve`
//! both build theirs here, so they select and compile rules the same way, and their caches are
//! keyed by the same rules digest: computed once, when the detector is built, and read from it.

use std::sync::Arc;

use anyhow::Result;

use crate::detect::Detector;
use crate::detect::selection::RuleSelection;
use crate::scan::{ScanOptions, Scanner};

/// Selects the rules, compiles them into a detector (which holds their digest, see
/// [`Detector::rules_digest`]) and starts a scanner running it.
pub fn scanner_for(selection: &RuleSelection, options: ScanOptions) -> Result<Scanner> {
    let detector = Detector::new(selection.rules()?)?.with_published(selection.published()?);
    Scanner::new(Arc::new(detector), options)
}
