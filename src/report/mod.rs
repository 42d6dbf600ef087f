//! Reports: the finding model, redaction, remediation advice, one printer per format (text,
//! json, sarif, gitlab, markdown, junit), and suppression of accepted findings (baselines and
//! ignore files).

pub(crate) mod baseline;
pub(crate) mod date;
pub(crate) mod describe;
pub(crate) mod field;
pub(crate) mod gitlab;
pub(crate) mod ignore;
pub(crate) mod json;
pub(crate) mod junit;
pub(crate) mod markdown;
pub mod model;
pub(crate) mod redact;
pub(crate) mod remediation;
pub(crate) mod ruledoc;
#[cfg(test)]
pub(crate) mod sample;
pub(crate) mod sarif;
pub(crate) mod skips;
pub(crate) mod suppress;
pub(crate) mod text;

pub use model::{Finding, ImageReport, Report};
