//! stowaway finds secrets leaked into container images.
//!
//! The pipeline (see DESIGN.md): a [`source`] resolves an IMAGE argument into [`source::Image`]s;
//! [`layer`] walks every layer on its own and records whiteouts; [`detect`] matches signatures;
//! [`scan`] puts them together and builds the [`report`], which printers render.

pub mod app;
pub mod cache;
pub mod cli;
pub mod detect;
pub mod layer;
pub mod progress;
pub mod provenance;
pub mod report;
pub mod scan;
pub mod serve;
pub mod source;
