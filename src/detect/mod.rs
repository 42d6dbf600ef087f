//! Detection: rules (data), the prefilter + regex engine, validators and decoders.

pub mod decode;
pub mod engine;
pub mod file;
pub mod keywords;
pub mod rules;
pub mod selftest;
pub mod validate;

pub use decode::{FileScan, Limits, Skipped};
pub use engine::{Detector, Match};
pub use file::FileMatch;
pub use rules::{Rule, Severity};
