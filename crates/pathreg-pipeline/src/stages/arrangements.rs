//! The arrangements stage: the hyperplane arrangements of one dataset, exact
//! (every realizable triple) or sampled from random networks, cached by the
//! data's content hash and the sampling parameters, so every cell and every
//! kind with the same data and parameters shares one entry.

use ndarray::ArrayView2;
use pathreg_core::{ArrangementMode, ArrangementSet};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::PipelineError;
use crate::engine::cache::{Cache, CacheKey};

/// The cache stage name.
pub const STAGE: &str = "arrangements";
/// Cache schema version: bump when enumeration or sampling changes what it computes.
const VERSION: u32 = 1;

/// Which arrangements to compute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ArrangementRequest {
    /// Every realizable triple for first-layer width `m1`.
    Exact {
        /// First hidden width.
        m1: usize,
    },
    /// Triples of `draws` random networks drawn from `seed`.
    Sampled {
        /// First hidden width.
        m1: usize,
        /// Random networks drawn.
        draws: usize,
        /// Seed of the draws.
        seed: u64,
    },
}

impl ArrangementRequest {
    /// The request for `mode` (`draws` and `seed` are used when sampled).
    pub fn new(mode: ArrangementMode, m1: usize, draws: usize, seed: u64) -> Self {
        match mode {
            ArrangementMode::Exact => Self::Exact { m1 },
            ArrangementMode::Sampled => Self::Sampled { m1, draws, seed },
        }
    }

    /// The sampling seed, if sampled.
    pub fn seed(&self) -> Option<u64> {
        match self {
            Self::Exact { .. } => None,
            Self::Sampled { seed, .. } => Some(*seed),
        }
    }

    /// The cache key of these arrangements of the data with content hash `data_sha256`.
    pub fn key(&self, data_sha256: &str) -> CacheKey {
        let params = match *self {
            Self::Exact { m1 } => serde_json::json!({
                "mode": ArrangementMode::Exact, "m1": m1, "draws": null, "seed": null,
            }),
            Self::Sampled { m1, draws, seed } => serde_json::json!({
                "mode": ArrangementMode::Sampled, "m1": m1, "draws": draws, "seed": seed,
            }),
        };
        CacheKey::new(STAGE, VERSION, &params, &[data_sha256])
    }
}

/// Arrangements of `x` as requested, from the cache when present, and whether
/// they were; exact enumeration reports its groups done of total to `progress`.
pub fn arrangements(
    cache: &Cache,
    request: ArrangementRequest,
    x: ArrayView2<f64>,
    data_sha256: &str,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<(ArrangementSet, bool), PipelineError> {
    let key = request.key(data_sha256);
    let (set, cached) = cache.get_or_compute(
        &key,
        ArrangementSet::to_bytes,
        |b| ArrangementSet::from_bytes(b).ok(),
        || {
            Ok(match request {
                ArrangementRequest::Exact { m1 } => {
                    ArrangementSet::enumerate_exact_with_progress(x, m1, progress)?
                }
                ArrangementRequest::Sampled { m1, draws, seed } => {
                    ArrangementSet::sample(x, m1, draws, &mut ChaCha8Rng::seed_from_u64(seed))?
                }
            })
        },
    )?;
    let m1 = match request {
        ArrangementRequest::Exact { m1 } | ArrangementRequest::Sampled { m1, .. } => m1,
    };
    if set.n() != x.nrows() || set.m1() != m1 {
        return Err(PipelineError::ArrangementsMismatch { key: key.hash });
    }
    Ok((set, cached))
}
