//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while building tables or writing reports.
///
/// Variants that concern a file name the path; none of them carries a polars or plotters type, so
/// callers do not need those crates to handle errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A column pushed into a [`crate::Table`] has a different length from the existing columns.
    #[error("column `{name}` has {actual} rows but the table has {expected}")]
    LengthMismatch {
        /// Name of the offending column.
        name: String,
        /// Row count of the table.
        expected: usize,
        /// Row count of the rejected column.
        actual: usize,
    },
    /// A column with this name already exists in the table.
    #[error("duplicate column name `{name}`")]
    DuplicateColumn {
        /// The repeated name.
        name: String,
    },
    /// An operating-system I/O operation failed.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// File or directory the operation was about.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Polars failed to build, write or read a data frame.
    #[error("table I/O failed for {}: {reason}", path.display())]
    Polars {
        /// File being written or read.
        path: PathBuf,
        /// Polars' description of the failure.
        reason: String,
    },
    /// A Parquet file holds a column whose type has no [`crate::Column`] equivalent.
    #[error("column `{name}` in {} has unsupported type {dtype}", path.display())]
    UnsupportedColumn {
        /// File being read.
        path: PathBuf,
        /// Column name.
        name: String,
        /// Polars' name of the data type.
        dtype: String,
    },
    /// A Parquet column contains nulls, which [`crate::Column`] cannot represent.
    #[error("column `{name}` in {} contains {nulls} null value(s)", path.display())]
    NullValues {
        /// File being read.
        path: PathBuf,
        /// Column name.
        name: String,
        /// How many nulls were found.
        nulls: usize,
    },
    /// Drawing a chart failed (backend, font or encoder error).
    #[error("could not render plot {}: {reason}", path.display())]
    Plot {
        /// Output file of the chart.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

impl ReportError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn plot(path: impl Into<PathBuf>, reason: impl ToString) -> Self {
        Self::Plot {
            path: path.into(),
            reason: reason.to_string(),
        }
    }
}
