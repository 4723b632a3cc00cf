//! Dense linear algebra beyond ndarray, by faer (pure Rust, no system LAPACK):
//! the thin SVD, rank-r approximations (Theorem 2's X̂_r), the symmetric
//! eigendecomposition and the Cholesky factor (ADMM's linear systems), the order-stable Gram matrix and the energy ranks
//! behind Figure 7's spectra.
//!
//! faer runs sequentially here (`Par::Seq`): pathreg parallelizes over cells
//! with rayon, and sequential kernels keep results independent of the thread
//! count.

use faer::Side;
use faer_ext::{IntoFaer, IntoNdarray};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rayon::prelude::*;

use crate::CoreError;

/// `X = U diag(s) Vᵀ` with `U` `n × k`, `s` non-increasing, `Vᵀ` `k × d`, `k = min(n, d)`.
#[derive(Debug, Clone, PartialEq)]
pub struct ThinSvd {
    /// Left singular vectors, `n × k`.
    pub u: Array2<f64>,
    /// Singular values, non-increasing.
    pub s: Array1<f64>,
    /// Right singular vectors, transposed: `k × d`.
    pub vt: Array2<f64>,
}

fn sequential() {
    faer::set_global_parallelism(faer::Par::Seq);
}

fn check_finite(x: ArrayView2<f64>) -> Result<(), CoreError> {
    if x.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::Shape(
            "matrix contains NaN or infinite values".into(),
        ));
    }
    Ok(())
}

fn check_square(a: ArrayView2<f64>) -> Result<(), CoreError> {
    if a.nrows() != a.ncols() {
        return Err(CoreError::Shape(format!(
            "matrix is {:?}, not square",
            a.dim()
        )));
    }
    check_finite(a)
}

/// The thin SVD of `x`.
pub fn thin_svd(x: ArrayView2<f64>) -> Result<ThinSvd, CoreError> {
    check_finite(x)?;
    sequential();
    let svd = x
        .into_faer()
        .thin_svd()
        .map_err(|e| CoreError::Shape(format!("SVD did not converge: {e:?}")))?;
    let u = svd.U().into_ndarray().to_owned();
    let v = svd.V().into_ndarray().to_owned();
    let s = Array1::from_iter(svd.S().column_vector().iter().copied());
    Ok(ThinSvd {
        u,
        s,
        vt: v.t().to_owned(),
    })
}

impl ThinSvd {
    /// `U diag(s) Vᵀ`.
    pub fn reconstruct(&self) -> Array2<f64> {
        let us = &self.u * &self.s.view().insert_axis(ndarray::Axis(0));
        us.dot(&self.vt)
    }

    /// The best rank-`r` approximation `X̂_r = U_r diag(s_r) V_rᵀ` (Eckart–Young:
    /// `‖X − X̂_r‖₂ = σ_{r+1}`).
    pub fn truncate(&self, r: usize) -> Array2<f64> {
        let r = r.min(self.s.len());
        let u = self.u.slice(s![.., ..r]);
        let vt = self.vt.slice(s![..r, ..]);
        let us = &u * &self.s.slice(s![..r]).insert_axis(ndarray::Axis(0));
        us.dot(&vt)
    }
}

/// Eigenvalues of the symmetric matrix `a`, in non-increasing order.
pub fn symmetric_eigenvalues(a: ArrayView2<f64>) -> Result<Array1<f64>, CoreError> {
    check_square(a)?;
    sequential();
    let mut values = a
        .into_faer()
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| CoreError::Shape(format!("eigendecomposition did not converge: {e:?}")))?;
    values.reverse();
    Ok(Array1::from(values))
}

/// The eigendecomposition `A = Q diag(λ) Qᵀ` of the symmetric matrix `a`:
/// `(λ, Q)`, eigenvalues in non-decreasing order, eigenvectors as columns.
pub fn symmetric_eigen(a: ArrayView2<f64>) -> Result<(Array1<f64>, Array2<f64>), CoreError> {
    check_square(a)?;
    sequential();
    let eigen = a
        .into_faer()
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| CoreError::Shape(format!("eigendecomposition did not converge: {e:?}")))?;
    let values = Array1::from_iter(eigen.S().column_vector().iter().copied());
    Ok((values, eigen.U().into_ndarray().to_owned()))
}

/// The Cholesky factor `A = L Lᵀ` of a symmetric positive definite matrix.
pub struct Cholesky(faer::linalg::solvers::Llt<f64>);

impl Cholesky {
    /// Factors `a` (its lower triangle is read), or fails when `a` is not
    /// numerically positive definite.
    pub fn new(a: ArrayView2<f64>) -> Result<Self, CoreError> {
        check_square(a)?;
        sequential();
        a.into_faer()
            .llt(Side::Lower)
            .map(Self)
            .map_err(|e| CoreError::Shape(format!("Cholesky factorization failed: {e:?}")))
    }

    /// `A⁻¹ b`, in place.
    pub fn solve_in_place(&self, b: &mut Array1<f64>) {
        use faer::linalg::solvers::Solve;
        let mut column = b.view_mut().insert_axis(Axis(1));
        self.0.solve_in_place(column.view_mut().into_faer());
    }
}

/// Rows per block of the Gram-matrix reduction: fixed, so the summation
/// order (and the result, bit for bit) does not depend on the thread count.
const GRAM_BLOCK: usize = 4096;

/// `XᵀX`, summed over fixed blocks of [`GRAM_BLOCK`] rows in parallel and
/// combined in block order.
pub fn gram(x: ArrayView2<f64>) -> Array2<f64> {
    let blocks: Vec<_> = x.axis_chunks_iter(Axis(0), GRAM_BLOCK).collect();
    let partial: Vec<Array2<f64>> = blocks.par_iter().map(|b| b.t().dot(b)).collect();
    let mut total = Array2::zeros((x.ncols(), x.ncols()));
    for p in &partial {
        total += p;
    }
    total
}

/// Singular values of a tall `x` (`n ≫ d`) from its `d × d` Gram matrix
/// `XᵀX` ([`gram`]): `σ_i = sqrt(max(λ_i, 0))`, non-increasing. Accurate for
/// the leading singular values; those below `sqrt(ε)·σ_1` are not resolved.
pub fn singular_values_via_gram(x: ArrayView2<f64>) -> Result<Array1<f64>, CoreError> {
    check_finite(x)?;
    Ok(symmetric_eigenvalues(gram(x).view())?.mapv(|l| l.max(0.0).sqrt()))
}

/// `Σ_{i≤k} σ_i² / Σ σ_i²` for every `k`: the share of the spectrum's energy
/// held by the leading `k` singular values.
pub fn cumulative_energy(singular_values: &[f64]) -> Vec<f64> {
    let total: f64 = singular_values
        .iter()
        .map(|v| v * v)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let mut acc = 0.0;
    singular_values
        .iter()
        .map(|v| {
            acc += v * v;
            acc / total
        })
        .collect()
}

/// The smallest `k` with `Σ_{i≤k} σ_i² ≥ fraction · Σ σ_i²` (the rank that
/// holds that share of the spectrum's energy), for non-increasing `σ`.
pub fn energy_rank(singular_values: &[f64], fraction: f64) -> usize {
    let total: f64 = singular_values.iter().map(|s| s * s).sum();
    let mut acc = 0.0;
    for (i, s) in singular_values.iter().enumerate() {
        acc += s * s;
        if acc >= fraction * total {
            return i + 1;
        }
    }
    singular_values.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::standard_normal;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_simple_fn((n, d), || standard_normal(&mut rng))
    }

    fn max_abs(a: &Array2<f64>) -> f64 {
        a.iter().fold(0.0, |m, v| m.max(v.abs()))
    }

    #[test]
    fn thin_svd_reconstructs_and_is_orthogonal() {
        for (n, d) in [(15, 6), (6, 15), (40, 3)] {
            let x = gaussian(n, d, 3);
            let svd = thin_svd(x.view()).unwrap();
            let k = n.min(d);
            assert_eq!(svd.u.dim(), (n, k));
            assert_eq!(svd.vt.dim(), (k, d));
            assert!(max_abs(&(&svd.reconstruct() - &x)) < 1e-12);
            assert!(max_abs(&(svd.u.t().dot(&svd.u) - Array2::<f64>::eye(k))) < 1e-12);
            assert!(max_abs(&(svd.vt.dot(&svd.vt.t()) - Array2::<f64>::eye(k))) < 1e-12);
            assert!(svd.s.windows(2).into_iter().all(|w| w[0] >= w[1]));
        }
    }

    #[test]
    fn truncation_error_is_the_next_singular_value() {
        let x = gaussian(15, 6, 4);
        let svd = thin_svd(x.view()).unwrap();
        for r in 1..6 {
            let residual = &x - &svd.truncate(r);
            let top = thin_svd(residual.view()).unwrap().s[0];
            assert!((top - svd.s[r]).abs() < 1e-10, "r = {r}");
            let rank = thin_svd(svd.truncate(r).view())
                .unwrap()
                .s
                .iter()
                .filter(|v| **v > 1e-10)
                .count();
            assert_eq!(rank, r);
        }
    }

    #[test]
    fn gram_singular_values_match_the_svd_and_known_eigenvalues() {
        let x = gaussian(200, 8, 5);
        let direct = thin_svd(x.view()).unwrap().s;
        let via_gram = singular_values_via_gram(x.view()).unwrap();
        for (a, b) in direct.iter().zip(&via_gram) {
            assert!((a - b).abs() < 1e-9 * direct[0]);
        }
        let a = ndarray::array![[2.0, 1.0], [1.0, 2.0]];
        let values = symmetric_eigenvalues(a.view()).unwrap();
        assert!((values[0] - 3.0).abs() < 1e-14 && (values[1] - 1.0).abs() < 1e-14);
        assert!(symmetric_eigenvalues(Array2::<f64>::zeros((2, 3)).view()).is_err());
    }

    #[test]
    fn blocked_gram_matches_the_direct_product() {
        let x = Array2::from_shape_fn((GRAM_BLOCK * 2 + 17, 5), |(i, j)| {
            ((i * 7 + j * 3) % 11) as f64 / 11.0
        });
        let direct = x.t().dot(&x);
        let blocked = gram(x.view());
        assert!(
            direct
                .iter()
                .zip(&blocked)
                .all(|(a, b)| (a - b).abs() < 1e-9 * (1.0 + a.abs()))
        );
    }

    #[test]
    fn energy_ranks() {
        let s = [3.0, 1.0, 0.1];
        assert_eq!(energy_rank(&s, 0.8), 1); // 9 of 10.01
        assert_eq!(energy_rank(&s, 0.99), 2);
        assert_eq!(energy_rank(&s, 1.0), 3);
        let shares = cumulative_energy(&s);
        assert!((shares[0] - 9.0 / 10.01).abs() < 1e-15 && shares[2] == 1.0);
    }
}
