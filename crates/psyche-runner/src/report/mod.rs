//! Reports: a generic [`Document`] (headings, text, tables, figures, errors) rendered to
//! markdown and HTML, and the summary of a run log built on it.
//!
//! - [`Document`], [`Table`], [`Figure`] ([`Bar`], [`Point`], [`Series`]): build a report in
//!   code, write it with [`Document::write`] (`<stem>.md`, `<stem>.html`, `<stem>-figN.svg`).
//!   HTML goes through minijinja with auto-escaping; a statistic that failed is shown with its
//!   error ([`Document::error`], [`error_cell`], [`Bar::failed`]), never as a dash.
//! - [`summarize`] → [`Summary`] → [`Summary::to_document`]; [`write_reports`] does all of it
//!   from a log path.
//! - [`rescore`] re-runs judges over an existing log without regenerating anything.

mod document;
mod draw;
mod figure;
mod html;
mod rescore;
mod summary;

pub use document::{Block, Document, ReportPaths, Table, error_cell};
pub use figure::{Bar, CalibrationPoint, Figure, FigureData, Point, Series};
pub use rescore::{rescore, sample_from_record};
pub use summary::{GroupRow, ReportConfig, Summary, summarize, write_reports};
