//! Reports: the finding model, redaction, remediation advice, one printer per format (text,
//! json, sarif, gitlab), and suppression of accepted findings (baselines and ignore files).

pub mod baseline;
pub mod date;
pub mod describe;
pub mod field;
pub mod gitlab;
pub mod ignore;
pub mod json;
pub mod model;
pub mod redact;
pub mod remediation;
pub mod ruledoc;
#[cfg(test)]
pub(crate) mod sample;
pub mod sarif;
pub mod suppress;
pub mod text;

pub use model::{Finding, ImageReport, Report};
