//! Result tables and figures for pathreg.
//!
//! * [`Table`] is a small column-oriented table whose public API does not expose polars; it is
//!   written to CSV ([`write_csv`]) and Parquet ([`write_parquet`]) through polars, and read back
//!   with [`read_parquet`].
//! * [`markdown_table`] renders GitHub-flavoured Markdown tables from pre-formatted cells.
//! * [`LinePlot`] draws 2-D line/scatter charts (linear or log axes) to SVG and PNG with plotters,
//!   using an embedded DejaVu Sans font so that output does not depend on system fonts.
//! * [`RegionPlot`] draws two-class decision regions on a grid, one panel per model.
//! * [`ForestPlot`] draws estimates with confidence intervals, one row per item and one marker
//!   per group.
//! * [`stats`] holds paired comparisons: Student-t intervals, the exact Wilcoxon signed-rank test
//!   and Holm's correction.
//!
//! Every file this crate writes is written atomically ([`write_atomic`]): a temporary file in the
//! target's directory is written, fsynced and renamed over the target, so a reader never sees a
//! half-written file.

#![warn(missing_docs)]

mod atomic;
mod error;
mod figure;
mod forest;
mod io;
mod markdown;
mod plot;
mod region;
pub mod stats;
mod table;

pub use atomic::write_atomic;
pub use error::ReportError;
pub use figure::Figure;
pub use forest::{ForestGroup, ForestPlot};
pub use io::{read_parquet, write_csv, write_parquet};
pub use markdown::markdown_table;
pub use plot::{LinePlot, PALETTE, Series, SeriesStyle};
pub use region::{RegionPanel, RegionPlot};
pub use table::{Column, Table};
