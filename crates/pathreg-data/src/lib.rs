//! Datasets for pathreg: user CSV files and the paper's synthetic generators.

pub mod csv_file;
pub mod synthetic;

use ndarray::{Array1, Array2};

/// A regression/classification dataset: `x` is `n × d`, `y` has `n` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Feature column names (`x0`, `x1`, … when the source has none).
    pub feature_names: Vec<String>,
    /// Samples, one per row.
    pub x: Array2<f64>,
    /// Labels.
    pub y: Array1<f64>,
}

impl Dataset {
    /// Number of samples.
    pub fn n(&self) -> usize {
        self.x.nrows()
    }
    /// Number of features.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// The dataset as CSV text: a header of the feature names then `y`, one row
    /// per sample, every float written in Rust's shortest round-trip form so
    /// that parsing the file gives back the exact same bits.
    pub fn to_csv(&self) -> String {
        let mut out = self.feature_names.join(",");
        out.push_str(",y\n");
        for (row, y) in self.x.rows().into_iter().zip(&self.y) {
            for v in row {
                out.push_str(&format!("{v:?},"));
            }
            out.push_str(&format!("{y:?}\n"));
        }
        out
    }
}

/// Errors reading or generating data; every variant names its source.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content is malformed.
    #[error("{path}:{line}: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// 1-based line number (0 when the whole file is at fault).
        line: u64,
        /// What is wrong.
        reason: String,
    },
    /// Invalid generator parameters.
    #[error("{0}")]
    Invalid(String),
}
