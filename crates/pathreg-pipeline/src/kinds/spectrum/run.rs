//! Figure 7's cells (Appendix A.9): the singular values of one dataset's
//! training matrix, exactly from the eigenvalues of its `d × d` Gram matrix.

use std::time::Instant;

use pathreg_core::linalg::singular_values_via_gram;
use pathreg_data::registry::load;
use pathreg_data::split::Preprocess;
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::PipelineError;
use crate::engine::Cell;
use crate::engine::cache::{Cache, CacheKey};
use crate::stages::data::Access;

/// The cache stage of one dataset's spectrum.
pub const STAGE: &str = "spectrum";
/// Cache schema version: bump when the computation changes what it computes.
const SPECTRUM_VERSION: u32 = 1;

/// One dataset's spectrum (cached as the `spectrum` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Spectrum {
    pub n: usize,
    pub d: usize,
    /// Singular values, non-increasing.
    pub singular_values: Vec<f64>,
    pub files: Vec<(String, String)>,
    pub load_s: f64,
    pub spectrum_s: f64,
}

impl Spectrum {
    /// `σ_1`, the scale of the normalized spectrum (never zero).
    pub fn leading(&self) -> f64 {
        self.singular_values
            .first()
            .copied()
            .unwrap_or(1.0)
            .max(f64::MIN_POSITIVE)
    }
}

/// One dataset of the manifest, as a cell of the engine's loop.
pub(super) struct DatasetCell {
    pub name: String,
    pub center: bool,
    key: CacheKey,
}

impl DatasetCell {
    /// The cell of dataset `name`, keyed by its pinned files (or content).
    pub fn new(name: &str, center: bool) -> Result<Self, PipelineError> {
        Ok(Self {
            name: name.to_string(),
            center,
            key: key(name, center)?,
        })
    }
}

impl Cell for DatasetCell {
    type Output = Spectrum;

    fn key(&self) -> CacheKey {
        self.key.clone()
    }

    fn label(&self) -> String {
        format!("spectrum {}", self.name)
    }

    fn compute(&self, _cache: &Cache) -> Result<Spectrum, PipelineError> {
        let start = Instant::now();
        let mut config = Access::Fetch.config();
        config.split = None;
        if self.center {
            config.preprocess = Preprocess::Center;
        }
        let loaded = load(&self.name, &config)?;
        let x = loaded.train.x;
        let load_s = start.elapsed().as_secs_f64();
        let spectrum_start = Instant::now();
        let singular_values = singular_values_via_gram(x.view())?;
        Ok(Spectrum {
            n: x.nrows(),
            d: x.ncols(),
            singular_values: singular_values.to_vec(),
            files: loaded
                .files
                .iter()
                .map(|f| (f.file.clone(), f.sha256.clone()))
                .collect(),
            load_s,
            spectrum_s: spectrum_start.elapsed().as_secs_f64(),
        })
    }
}

/// The dataset's pinned file hashes (or a CSV's content hash), which key its cache entry.
fn key(name: &str, center: bool) -> Result<CacheKey, PipelineError> {
    let pins: Vec<String> = match name.strip_prefix("csv:") {
        // A user CSV has no pin: key it by its content.
        Some(path) => {
            let bytes = std::fs::read(path).map_err(|source| PipelineError::Io {
                path: path.into(),
                source,
            })?;
            vec![hex::encode(sha2::Sha256::digest(&bytes))]
        }
        None => crate::stages::data::pins(name)?,
    };
    let refs: Vec<&str> = pins.iter().map(String::as_str).collect();
    Ok(CacheKey::new(
        STAGE,
        SPECTRUM_VERSION,
        &serde_json::json!({ "dataset": name, "center": center }),
        &refs,
    ))
}
