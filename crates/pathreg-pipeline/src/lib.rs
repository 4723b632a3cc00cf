//! The experiment pipeline: manifest → validated [`Experiment`] → cells (each
//! with its own derived seed) → results → tables, figures and provenance under
//! `outputs/<name>/`. The pipeline orchestrates; the math lives in
//! `pathreg-core` and `pathreg-solvers`.

pub mod cache;
pub mod classification;
pub mod lock;
mod lowrank;
pub mod manifest;
pub mod outputs;
mod provenance;
mod run;
pub mod seeds;
mod spectrum;

use std::path::PathBuf;

pub use manifest::Experiment;
pub use run::{Progress, RunOptions, RunSummary, cached_cells, run_manifest};

/// Errors of the pipeline, each naming the file or stage at fault.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A manifest that does not parse or validate.
    #[error("{}:{line}:{column}: {}{reason}", path.display(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column (0 if unknown).
        column: usize,
        /// The offending key, dotted.
        key: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A file-system failure.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Loading or generating data failed.
    #[error("data: {0}")]
    Data(#[from] pathreg_data::DataError),
    /// The mathematical core rejected its input.
    #[error("{0}")]
    Core(#[from] pathreg_core::CoreError),
    /// A solver failed.
    #[error("solver: {0}")]
    Solver(#[from] pathreg_solvers::SolverError),
    /// Writing tables or figures failed.
    #[error("report: {0}")]
    Report(#[from] pathreg_report::ReportError),
    /// A result that fails its own verification (e.g. the Proposition 1 map).
    #[error("verification failed: {0}")]
    Verification(String),
}
