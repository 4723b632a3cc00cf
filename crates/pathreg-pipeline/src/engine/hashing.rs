//! Result hashes: an exact hash of every row's values (floats by their bits,
//! for same-machine determinism) and a rounded hash (floats to
//! [`ROUNDED_DIGITS`] significant digits, meant to survive other machines and
//! compilers), per row and for the whole result.

use sha2::{Digest, Sha256};

use super::results_lock::HashKind;

/// Significant digits of the rounded hash.
pub const ROUNDED_DIGITS: usize = 6;

/// A result row's identity and hashes, for the lock file and `verify`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RowHash {
    /// Unique within an experiment, e.g. `method K=.. run=.. key=value…`.
    pub label: String,
    /// SHA-256 of the row's exact values (floats by their bits).
    pub exact: String,
    /// SHA-256 of the row's values rounded to [`ROUNDED_DIGITS`] significant digits.
    pub rounded: String,
    /// The row's headline value, rounded, for readable diffs.
    pub objective: String,
}

/// The experiment-level hashes and the per-row ones.
#[derive(Debug, Clone)]
pub struct Hashes {
    /// Exact hash of all rows.
    pub exact: String,
    /// Rounded hash of all rows.
    pub rounded: String,
    /// Every row's hashes, in row order.
    pub rows: Vec<RowHash>,
}

/// What a row contributes to the hashes: its label, its discrete fields and
/// its float values (never timings or cache flags).
pub struct HashInput {
    /// The row's unique label.
    pub label: String,
    /// Discrete fields (status, counts, seeds), hashed as text.
    pub texts: Vec<String>,
    /// Float values, hashed by their bits (exact) and rounded (rounded).
    pub values: Vec<f64>,
    /// The value shown in `verify`'s diff.
    pub headline: f64,
}

/// `v` in scientific notation with [`ROUNDED_DIGITS`] significant digits.
fn rounded(v: f64) -> String {
    format!("{:.*e}", ROUNDED_DIGITS - 1, v)
}

/// The exact hash (float bits) and the rounded hash ([`ROUNDED_DIGITS`]
/// significant digits) of every row and of the whole result.
pub fn hash_rows(inputs: &[HashInput]) -> Hashes {
    let mut rows = Vec::with_capacity(inputs.len());
    for input in inputs {
        let mut exact = Sha256::new();
        let mut round = Sha256::new();
        for part in std::iter::once(&input.label).chain(&input.texts) {
            for hasher in [&mut exact, &mut round] {
                hasher.update((part.len() as u64).to_le_bytes());
                hasher.update(part.as_bytes());
            }
        }
        for v in &input.values {
            exact.update(v.to_bits().to_le_bytes());
            let text = rounded(*v);
            round.update((text.len() as u64).to_le_bytes());
            round.update(text.as_bytes());
        }
        let row = RowHash {
            label: input.label.clone(),
            exact: hex::encode(exact.finalize()),
            rounded: hex::encode(round.finalize()),
            objective: rounded(input.headline),
        };
        rows.push(row);
    }
    Hashes {
        exact: combined(&rows, HashKind::Exact),
        rounded: combined(&rows, HashKind::Rounded),
        rows,
    }
}

/// The experiment hash of `rows`: SHA-256 over their exact (or rounded)
/// row hashes, in row order.
pub fn combined(rows: &[RowHash], kind: HashKind) -> String {
    let mut all = Sha256::new();
    match kind {
        HashKind::Exact => all.update(b"pathreg/results/v3"),
        HashKind::Rounded => all.update(b"pathreg/results-rounded/v3"),
    }
    for row in rows {
        all.update(match kind {
            HashKind::Exact => row.exact.as_bytes(),
            HashKind::Rounded => row.rounded.as_bytes(),
        });
    }
    hex::encode(all.finalize())
}
