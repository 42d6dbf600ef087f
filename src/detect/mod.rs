//! Detection: rules (data), the prefilter + regex engine, validators and decoders.
//!
//! Its modules use each other in one direction only: `severity`, `decoder`, `keywords` and
//! `utf16` use none of the others; `validate` uses `severity`; `rules` uses `validate` and the names;
//! `engine` runs the rules; `decode` opens what the engine cannot see; `file` puts the engine
//! and the decoders together for whole files; `selection` and `selftest` work on rules.

pub mod catalog;
pub(crate) mod decode;
pub(crate) mod decoder;
pub(crate) mod engine;
pub(crate) mod file;
pub(crate) mod keywords;
pub(crate) mod password_hash;
pub mod pattern;
pub mod published;
pub mod rules;
pub(crate) mod selection;
pub mod selftest;
pub(crate) mod severity;
pub(crate) mod utf16;
pub(crate) mod validate;
pub(crate) mod x509;

// Paths for code outside `detect`; modules inside it import from the defining module, so that
// these re-exports add no edge between siblings.
pub use decode::{FileMatch, FileScan, Limits, Skipped};
pub use engine::{Detector, Match, ruleset_digest};
pub use published::{PublishedKeys, Sighting};
pub use rules::Rule;
pub use severity::Severity;
pub use validate::Validator;
