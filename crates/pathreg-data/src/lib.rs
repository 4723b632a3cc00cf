//! Datasets for pathreg: user CSV files, the paper's synthetic generators, and the
//! real datasets of the paper (the UCI collection of Table 3, MNIST, Fashion-MNIST,
//! CIFAR-10) with pinned manifests, a verifying downloader and parsers.
//!
//! Entry points: [`registry::load`] (name → verified, parsed, split data) and
//! [`registry::fetch`] (download only); [`manifest`] describes the pinned files,
//! [`download`] the downloader, [`uci`], [`idx`] and [`cifar`] the parsers, [`split`]
//! the train/test splits and preprocessing.

pub mod archive;
pub mod cifar;
pub mod csv_file;
pub mod download;
pub mod idx;
pub mod manifest;
pub mod registry;
pub mod split;
pub mod synthetic;
pub mod uci;

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
    /// A dataset manifest is malformed: the manifest file, the key and the reason.
    #[error("{file}: {key}: {reason}")]
    Manifest {
        /// The manifest file.
        file: String,
        /// The offending key (`file[2].sha256`, …).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A transfer failed (connection, timeout, truncated body, I/O while writing).
    #[error("{url}: {reason}")]
    Fetch {
        /// The URL or path being read.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// A file's size differs from its pin.
    #[error("{origin}: size mismatch: expected {expected} bytes, got {actual} bytes")]
    SizeMismatch {
        /// The URL or path the bytes came from.
        origin: String,
        /// The pinned size.
        expected: u64,
        /// The size seen.
        actual: u64,
    },
    /// A file's SHA-256 differs from its pin.
    #[error("{origin}: SHA-256 mismatch: expected {expected}, got {actual}")]
    HashMismatch {
        /// The URL or path the bytes came from.
        origin: String,
        /// The pinned SHA-256 (hex).
        expected: String,
        /// The SHA-256 of the bytes seen (hex).
        actual: String,
    },
    /// An archive member that would escape the extraction folder.
    #[error("{archive}: refusing member {member:?}: {reason}")]
    UnsafeArchive {
        /// The archive.
        archive: String,
        /// The member's path as stored.
        member: String,
        /// Why it is refused.
        reason: String,
    },
    /// An unknown dataset name.
    #[error("unknown dataset {name:?}; known: {known}")]
    UnknownDataset {
        /// The name asked for.
        name: String,
        /// The names that exist.
        known: String,
    },
    /// Every source of a file failed; one line per source.
    #[error("{file}: no source succeeded:\n  {}", .errors.join("\n  "))]
    AllSourcesFailed {
        /// The file (`mnist/train-images-idx3-ubyte.gz`).
        file: String,
        /// Each source's error, in the order tried.
        errors: Vec<String>,
    },
}
