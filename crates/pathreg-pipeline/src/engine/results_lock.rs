//! The committed hash lock (`outputs/results.lock`): per experiment, the exact
//! and rounded result hashes and every row's hashes, so `cargo xtask verify`
//! can regenerate an experiment and say which cells moved and by how much.

use std::collections::BTreeMap;
use std::path::Path;

use super::RunSummary;
use super::hashing::{ROUNDED_DIGITS, RowHash, combined};
use crate::PipelineError;

/// The lock file.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LockFile {
    /// Experiments by name.
    pub experiments: BTreeMap<String, LockedExperiment>,
}

/// One experiment's recorded hashes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LockedExperiment {
    /// The manifest, relative to the workspace root where possible.
    pub manifest: String,
    /// Exact hash (bit-identical floats): stable on one machine.
    pub exact: String,
    /// Rounded hash: meant to be stable across machines.
    pub rounded: String,
    /// Significant digits of the rounded hash.
    pub rounded_digits: usize,
    /// Per-row hashes.
    pub rows: Vec<RowHash>,
}

/// Which hash `verify` compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// Bit-identical results (same machine).
    Exact,
    /// Results rounded to [`ROUNDED_DIGITS`] significant digits.
    Rounded,
}

impl HashKind {
    /// "exact" or "rounded".
    pub fn name(self) -> &'static str {
        match self {
            HashKind::Exact => "exact",
            HashKind::Rounded => "rounded",
        }
    }
}

impl LockFile {
    /// Reads the lock; a missing file is an error that says so.
    pub fn read(path: &Path) -> Result<Self, PipelineError> {
        match std::fs::metadata(path) {
            Ok(meta) if !meta.is_file() => {
                return Err(PipelineError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "not a regular file",
                    ),
                });
            }
            _ => {}
        }
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| PipelineError::Manifest {
                path: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
                key: String::new(),
                reason: format!("invalid lock file: {e}"),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(PipelineError::NoLock(path.to_path_buf()))
            }
            Err(source) => Err(PipelineError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Reads the lock, or an empty one where there is no file yet (to record into).
    pub fn read_or_new(path: &Path) -> Result<Self, PipelineError> {
        match Self::read(path) {
            Err(PipelineError::NoLock(_)) => Ok(Self::default()),
            other => other,
        }
    }

    /// Writes the lock atomically.
    pub fn write(&self, path: &Path) -> Result<(), PipelineError> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|source| PipelineError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        text.push('\n');
        pathreg_report::write_atomic(path, text.as_bytes())?;
        Ok(())
    }

    /// Records a run's hashes under its experiment name.
    pub fn record(&mut self, name: &str, manifest: &str, summary: &RunSummary) {
        self.experiments.insert(
            name.to_string(),
            LockedExperiment {
                manifest: manifest.to_string(),
                exact: summary.result_hash.clone(),
                rounded: summary.rounded_hash.clone(),
                rounded_digits: ROUNDED_DIGITS,
                rows: summary.rows.clone(),
            },
        );
    }
}

/// Compares a fresh run with the lock: the experiment hash, the row count and
/// every row's hash. Returns the readable differences (empty when they agree).
pub fn compare(locked: &LockedExperiment, summary: &RunSummary, kind: HashKind) -> Vec<String> {
    let pick = |r: &RowHash| match kind {
        HashKind::Exact => r.exact.clone(),
        HashKind::Rounded => r.rounded.clone(),
    };
    let (old, new) = match kind {
        HashKind::Exact => (&locked.exact, &summary.result_hash),
        HashKind::Rounded => (&locked.rounded, &summary.rounded_hash),
    };
    let mut lines = Vec::new();
    if kind == HashKind::Rounded && locked.rounded_digits != ROUNDED_DIGITS {
        lines.push(format!(
            "  the lock records rounded hashes at {} significant digits; this version rounds to {ROUNDED_DIGITS}",
            locked.rounded_digits
        ));
    }
    if locked.rows.len() != summary.rows.len() {
        lines.push(format!(
            "  the lock records {} rows, the run produced {}",
            locked.rows.len(),
            summary.rows.len()
        ));
    }
    for row in &locked.rows {
        match summary.rows.iter().find(|r| r.label == row.label) {
            None => lines.push(format!(
                "  {}: in the lock but not produced any more",
                row.label
            )),
            Some(now) if pick(now) != pick(row) => {
                let before: f64 = row.objective.parse().unwrap_or(f64::NAN);
                let after: f64 = now.objective.parse().unwrap_or(f64::NAN);
                let relative = (after - before) / before.abs().max(f64::MIN_POSITIVE);
                lines.push(if row.objective == now.objective {
                    format!(
                        "  {}: objective {} unchanged at {} digits; other values (loss, regularizer, curve, status or seed) moved",
                        row.label, row.objective, ROUNDED_DIGITS
                    )
                } else {
                    format!(
                        "  {}: objective {} → {} ({:+.3e} relative)",
                        row.label, row.objective, now.objective, relative
                    )
                });
            }
            Some(_) => {}
        }
    }
    for row in &summary.rows {
        if !locked.rows.iter().any(|r| r.label == row.label) {
            lines.push(format!(
                "  {}: new (objective {})",
                row.label, row.objective
            ));
        }
    }
    let self_consistent = combined(&locked.rows, kind) == *old;
    if !self_consistent {
        lines.push(format!(
            "  the lock's {} experiment hash does not match its own rows: the lock was edited or is damaged",
            kind.name()
        ));
    } else if lines.is_empty() && old != new {
        lines.push("  the row order changed".into());
    }
    lines
}
