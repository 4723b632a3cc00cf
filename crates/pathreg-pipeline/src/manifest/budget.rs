//! What a manifest may ask for, estimated from its sizes and checked before
//! any work starts: memory (every allocation the cells will make from the
//! manifest's sizes, against `pathreg_core::limits::MAX_ALLOCATION_BYTES`),
//! exact enumeration's work and memory (`EnumerationEstimate`), the number of
//! cells and the training work. Each refusal names the keys, the estimate and
//! the limit; `Limits::Overridden` (`--override-limits`) runs it anyway, and
//! the constructors still refuse allocations that cannot succeed.

use std::ops::Range;

use pathreg_core::limits::{MAX_ALLOCATION_BYTES, describe_bytes};

use super::toolkit::Validator;
use crate::PipelineError;

/// Whether the manifest checks bound what a manifest may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Limits {
    /// Refuse a manifest beyond any limit (the default).
    #[default]
    Enforced,
    /// Run it anyway (`--override-limits`).
    Overridden,
}

/// The most cells (cached fits) one manifest may define.
pub const MAX_CELLS: u64 = 100_000;
/// The most multiply-adds the non-convex training of one manifest may take
/// (about a day on one core).
pub const MAX_TRAINING_WORK: f64 = 1e14;
/// The most epochs of one training run.
pub const MAX_EPOCHS: usize = 10_000_000;
/// The most multiply-adds of drawing sampled arrangements (about an hour).
pub const MAX_SAMPLING_WORK: f64 = 1e13;
/// The smallest β: below it `β·R(θ)` is lost in the rounding of any
/// objective of order one, the program is effectively unregularized, and the
/// solver's iterations do not converge.
pub const MIN_BETA: f64 = 1e-12;

/// Checks one estimate against its limit.
pub struct Budget<'v> {
    v: &'v Validator<'v>,
    limits: Limits,
}

impl<'v> Budget<'v> {
    /// A budget for the manifest `v` validates.
    pub fn new(v: &'v Validator<'v>, limits: Limits) -> Self {
        Self { v, limits }
    }

    fn refuse(&self, span: Range<usize>, keys: &str, reason: String) -> Result<(), PipelineError> {
        match self.limits {
            Limits::Enforced => Err(self.v.error(
                span,
                keys,
                format!("{reason}; pass --override-limits to run it anyway"),
            )),
            Limits::Overridden => Ok(()),
        }
    }

    /// Refuses `bytes` of `what` beyond the allocation limit.
    pub fn bytes(
        &self,
        span: Range<usize>,
        keys: &str,
        what: &str,
        bytes: u64,
    ) -> Result<(), PipelineError> {
        if bytes <= MAX_ALLOCATION_BYTES {
            return Ok(());
        }
        self.refuse(
            span,
            keys,
            format!(
                "{what} needs an estimated {}, over the limit of {}",
                describe_bytes(u128::from(bytes)),
                describe_bytes(u128::from(MAX_ALLOCATION_BYTES))
            ),
        )
    }

    /// Refuses more than [`MAX_CELLS`] cells.
    pub fn cells(&self, span: Range<usize>, keys: &str, cells: u64) -> Result<(), PipelineError> {
        if cells <= MAX_CELLS {
            return Ok(());
        }
        self.refuse(
            span,
            keys,
            format!("the manifest defines {cells} cells, over the limit of {MAX_CELLS}"),
        )
    }

    /// Refuses more than [`MAX_TRAINING_WORK`] multiply-adds of training.
    pub fn training(&self, span: Range<usize>, keys: &str, work: f64) -> Result<(), PipelineError> {
        if work <= MAX_TRAINING_WORK {
            return Ok(());
        }
        self.refuse(
            span,
            keys,
            format!(
                "the training takes an estimated {work:.2e} multiply-adds, over the limit of {MAX_TRAINING_WORK:.0e}"
            ),
        )
    }

    /// Refuses more than [`MAX_EPOCHS`] epochs.
    pub fn epochs(
        &self,
        span: Range<usize>,
        key: &str,
        epochs: usize,
    ) -> Result<(), PipelineError> {
        if epochs <= MAX_EPOCHS {
            return Ok(());
        }
        self.refuse(
            span,
            key,
            format!("{epochs} epochs, over the limit of {MAX_EPOCHS}"),
        )
    }

    /// Refuses drawing arrangements beyond [`MAX_SAMPLING_WORK`] multiply-adds.
    pub fn sampling(&self, span: Range<usize>, keys: &str, work: f64) -> Result<(), PipelineError> {
        if work <= MAX_SAMPLING_WORK {
            return Ok(());
        }
        self.refuse(
            span,
            keys,
            format!(
                "drawing the arrangements takes an estimated {work:.2e} multiply-adds, over the limit of {MAX_SAMPLING_WORK:.0e}"
            ),
        )
    }

    /// Refuses a β below [`MIN_BETA`].
    pub fn beta(&self, span: Range<usize>, key: &str, beta: f64) -> Result<(), PipelineError> {
        if beta >= MIN_BETA {
            return Ok(());
        }
        self.refuse(
            span,
            key,
            format!(
                "β = {beta:e} is below {MIN_BETA:e}: the regularizer vanishes in rounding and the solve does not converge"
            ),
        )
    }

    /// Refuses what a core estimate refuses (e.g. exact enumeration's work).
    pub fn core(
        &self,
        span: Range<usize>,
        keys: &str,
        check: Result<(), pathreg_core::CoreError>,
    ) -> Result<(), PipelineError> {
        match check {
            Ok(()) => Ok(()),
            Err(e) => self.refuse(span, keys, e.to_string()),
        }
    }
}

/// Multiply-adds of one pass of a parallel network over `n` samples, forward
/// and backward (about three times the forward `K (d m1 + m1 m2 + m2)` per sample).
pub fn network_pass_work(n: usize, k: usize, d: usize, m1: usize, m2: usize) -> f64 {
    3.0 * n as f64 * k as f64 * (d as f64 * m1 as f64 + m1 as f64 * m2 as f64 + m2 as f64)
}
