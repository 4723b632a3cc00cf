//! The variables `(Z, Z')` of (11), packed into one matrix.

use ndarray::{Array2, Array3, ArrayView2, Axis, s};

use crate::CoreError;
use crate::limits::{array_bytes, check_allocation};

/// The variables `(Z, Z')` of (11), packed as `W = [Z | Z']` (`d × 2Km1`; see
/// the [module documentation](super)).
#[derive(Debug, Clone, PartialEq)]
pub struct SampledVariables {
    pub(super) w: Array2<f64>,
    pub(super) k: usize,
    pub(super) m1: usize,
}

impl SampledVariables {
    /// Bytes of the variables for `K` arrangements of `m1` gates in `R^d`
    /// (`8 · d · 2K·m1`), saturating at `u64::MAX`. [`Self::zeros`]
    /// refuses beyond [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn bytes(k: usize, d: usize, m1: usize) -> u64 {
        array_bytes(std::mem::size_of::<f64>(), &[d, 2, k, m1])
    }

    /// `Z = Z' = 0`, refusing with [`CoreError::TooLarge`] when the variables
    /// ([`Self::bytes`]) would exceed [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn zeros(k: usize, d: usize, m1: usize) -> Result<Self, CoreError> {
        check_allocation(
            || format!("the variables (Z, Z') of {k} arrangements of {m1} gates in R^{d}"),
            Self::bytes(k, d, m1),
        )?;
        Ok(Self {
            w: Array2::zeros((d, 2 * k * m1)),
            k,
            m1,
        })
    }

    /// From `Z` and `Z'`, each `K × d × m1` (`Z[k, :, j] = z_kj`).
    pub fn from_blocks(z: &Array3<f64>, z_prime: &Array3<f64>) -> Result<Self, CoreError> {
        if z.dim() != z_prime.dim() {
            return Err(CoreError::Shape(format!(
                "Z {:?} and Z' {:?} differ",
                z.dim(),
                z_prime.dim()
            )));
        }
        let (k, d, m1) = z.dim();
        let mut out = Self::zeros(k, d, m1)?;
        for kk in 0..k {
            out.block_mut(kk, false).assign(&z.index_axis(Axis(0), kk));
            out.block_mut(kk, true)
                .assign(&z_prime.index_axis(Axis(0), kk));
        }
        Ok(out)
    }

    /// From a packed `d × 2Km1` matrix.
    pub fn from_packed(w: Array2<f64>, k: usize, m1: usize) -> Result<Self, CoreError> {
        if w.ncols() != 2 * k * m1 {
            return Err(CoreError::Shape(format!(
                "packed variables have {} columns, expected 2·K·m1 = {}",
                w.ncols(),
                2 * k * m1
            )));
        }
        Ok(Self { w, k, m1 })
    }

    /// Number of arrangements K.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.w.nrows()
    }
    /// First hidden width m1.
    pub fn m1(&self) -> usize {
        self.m1
    }
    /// The packed matrix `[Z | Z']`.
    pub fn packed(&self) -> &Array2<f64> {
        &self.w
    }
    /// The packed matrix, mutable (for optimizers).
    pub fn packed_mut(&mut self) -> &mut Array2<f64> {
        &mut self.w
    }

    /// `Z_k` (`prime = false`) or `Z'_k`, a `d × m1` view.
    pub fn block(&self, kk: usize, prime: bool) -> ArrayView2<'_, f64> {
        let c = self.column_offset(kk, prime);
        self.w.slice(s![.., c..c + self.m1])
    }

    pub(super) fn block_mut(&mut self, kk: usize, prime: bool) -> ndarray::ArrayViewMut2<'_, f64> {
        let c = self.column_offset(kk, prime);
        self.w.slice_mut(s![.., c..c + self.m1])
    }

    fn column_offset(&self, kk: usize, prime: bool) -> usize {
        usize::from(prime) * self.k * self.m1 + kk * self.m1
    }

    /// `(Z, Z')`, each `K × d × m1`.
    pub fn to_blocks(&self) -> (Array3<f64>, Array3<f64>) {
        let (k, d, m1) = (self.k, self.d(), self.m1);
        let mut z = Array3::zeros((k, d, m1));
        let mut zp = Array3::zeros((k, d, m1));
        for kk in 0..k {
            z.index_axis_mut(Axis(0), kk).assign(&self.block(kk, false));
            zp.index_axis_mut(Axis(0), kk).assign(&self.block(kk, true));
        }
        (z, zp)
    }

    /// Frobenius norms of the `2K` groups: entry `g < K` is `‖Z_g‖_F`, entry
    /// `K + g` is `‖Z'_g‖_F`.
    pub fn group_norms(&self) -> Vec<f64> {
        let groups = 2 * self.k;
        let mut sq = vec![0.0; groups];
        for row in self.w.rows() {
            for (g, chunk) in row.exact_chunks(self.m1).into_iter().enumerate() {
                sq[g] += chunk.dot(&chunk);
            }
        }
        sq.into_iter().map(f64::sqrt).collect()
    }

    /// Groups whose norm exceeds [`ACTIVE_GROUP_TOLERANCE`](crate::convex::ACTIVE_GROUP_TOLERANCE)
    /// times the largest group norm (none when every group is zero).
    pub fn active_groups(&self) -> usize {
        let norms = self.group_norms();
        let largest = norms.iter().copied().fold(0.0, f64::max);
        norms
            .iter()
            .filter(|&&g| g > crate::convex::ACTIVE_GROUP_TOLERANCE * largest)
            .count()
    }

    /// Adds `weight · ∂(Σ_g ‖W_g‖_F)` to `grad` (zero subgradient at zero
    /// groups) and returns `Σ_g ‖W_g‖_F`.
    pub fn add_group_lasso_subgradient(&self, weight: f64, grad: &mut Array2<f64>) -> f64 {
        let norms = self.group_norms();
        let scale: Vec<f64> = norms
            .iter()
            .map(|n| if *n > 0.0 { weight / n } else { 0.0 })
            .collect();
        for (mut g_row, w_row) in grad.rows_mut().into_iter().zip(self.w.rows()) {
            for (gi, (mut gc, wc)) in g_row
                .exact_chunks_mut(self.m1)
                .into_iter()
                .zip(w_row.exact_chunks(self.m1))
                .enumerate()
            {
                gc.scaled_add(scale[gi], &wc);
            }
        }
        norms.iter().sum()
    }

    /// The proximal operator of `t · Σ_g ‖W_g‖_F` (block soft-thresholding):
    /// `W_g ← max(0, 1 − t/‖W_g‖) W_g`.
    pub fn prox_group_lasso(&mut self, t: f64) {
        let norms = self.group_norms();
        let factor: Vec<f64> = norms
            .iter()
            .map(|n| if *n > t { 1.0 - t / n } else { 0.0 })
            .collect();
        let m1 = self.m1;
        for mut row in self.w.rows_mut() {
            for (g, mut chunk) in row.exact_chunks_mut(m1).into_iter().enumerate() {
                chunk.mapv_inplace(|v| v * factor[g]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unconstrained::test_support::problem;

    #[test]
    fn prox_is_block_soft_thresholding() {
        let (_, _, _, v) = problem(7, 2, 3, 2, 2);
        let before = v.group_norms();
        let t = before[1] * 0.5;
        let mut after = v.clone();
        after.prox_group_lasso(before.iter().copied().fold(0.0, f64::max) + 1.0);
        assert!(after.packed().iter().all(|a| *a == 0.0));
        let mut shrunk = v.clone();
        shrunk.prox_group_lasso(t);
        for (g, (a, b)) in before.iter().zip(shrunk.group_norms()).enumerate() {
            let expected = (a - t).max(0.0);
            assert!((b - expected).abs() < 1e-12, "group {g}: {b} vs {expected}");
        }
    }

    #[test]
    fn blocks_round_trip() {
        let (_, _, _, v) = problem(8, 2, 3, 2, 4);
        let (z, zp) = v.to_blocks();
        assert_eq!(SampledVariables::from_blocks(&z, &zp).unwrap(), v);
        let norms = v.group_norms();
        let expect = z
            .index_axis(Axis(0), 1)
            .iter()
            .map(|a| a * a)
            .sum::<f64>()
            .sqrt();
        assert!((norms[1] - expect).abs() < 1e-12);
    }

    #[test]
    fn sizes_beyond_the_allocation_limit_are_errors_not_aborts() {
        assert_eq!(SampledVariables::bytes(3, 4, 5), 8 * 4 * 30);
        for (k, d, m1) in [(1_000_000_000, 10, 100), (usize::MAX, 2, 2)] {
            let err = SampledVariables::zeros(k, d, m1).unwrap_err();
            assert!(matches!(err, CoreError::TooLarge(_)), "{err}");
        }
        assert_eq!(
            SampledVariables::zeros(3, 4, 5)
                .unwrap()
                .group_norms()
                .len(),
            2 * 3
        );
    }
}
