//! Detection: rules (data), the prefilter + regex engine, validators and decoders.
//!
//! Its modules use each other in one direction only: `severity`, `decoder` and `keywords` use
//! none of the others; `validate` uses `severity`; `rules` uses `validate` and the names;
//! `engine` runs the rules; `decode` opens what the engine cannot see; `file` puts the engine
//! and the decoders together for whole files; `selection` and `selftest` work on rules.

pub mod decode;
pub mod decoder;
pub mod engine;
pub mod file;
pub mod keywords;
pub mod rules;
pub mod selection;
pub mod selftest;
pub mod severity;
pub mod validate;

// Paths for code outside `detect`; modules inside it import from the defining module, so that
// these re-exports add no edge between siblings.
pub use decode::{FileMatch, FileScan, Limits, Skipped};
pub use engine::{Detector, Match};
pub use rules::Rule;
pub use severity::Severity;
