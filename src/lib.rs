//! stowaway finds secrets leaked into container images.
//!
//! The pipeline: a [`source`] resolves an IMAGE argument into [`source::Image`]s; [`layer`] walks
//! every layer on its own and records whiteouts; [`detect`] matches signatures; [`scan`] puts
//! them together and builds the [`report`], which printers render. `ARCHITECTURE.md` at the root
//! of the repository is the map: the data flow, what each module owns and where to add things.

#![warn(missing_docs)]

pub mod app;
pub mod cli;
pub mod detect;
pub(crate) mod docs;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod images_from;
pub mod layer;
pub(crate) mod output;
pub(crate) mod progress;
pub mod provenance;
pub mod report;
pub(crate) mod rule_info;
pub mod ruleset;
pub mod scan;
pub(crate) mod serve;
pub mod settings;
pub mod source;
pub(crate) mod store;
pub(crate) mod sweep;
pub(crate) mod tar_reader;
