//! Theorem 2 and Appendix A.8: the rank-r approximation of the data, the
//! worst-case bound (10) on what training on it costs, and the closed-form
//! number of hyperplane arrangements of data of rank r.

use ndarray::{Array2, ArrayView2};

use crate::CoreError;
use crate::linalg::thin_svd;

/// Figure 4's kept rank `r = max(1, ⌊f·d⌋)` for a fraction `f` of `d` features.
pub fn kept_rank(d: usize, fraction: f64) -> usize {
    ((fraction * d as f64).floor() as usize).max(1)
}

/// The best rank-`r` approximation `X̂_r` of `x` (Eckart–Young) and
/// `σ_{r+1}`, its spectral-norm error (0 when `r ≥ rank`).
pub fn rank_r_approximation(x: ArrayView2<f64>, r: usize) -> Result<(Array2<f64>, f64), CoreError> {
    let svd = thin_svd(x)?;
    let sigma_next = svd.s.get(r).copied().unwrap_or(0.0);
    Ok((svd.truncate(r), sigma_next))
}

/// Theorem 2's bound (10): the objective on `X` of the optimum trained on
/// `X̂_r` is at most `p3* (1 + √(m1 m2) R σ_{r+1} / β)²`, for a loss that is
/// `R`-Lipschitz.
pub fn theorem2_bound(
    p3: f64,
    m1: usize,
    m2: usize,
    lipschitz: f64,
    sigma_next: f64,
    beta: f64,
) -> f64 {
    p3 * (1.0 + ((m1 * m2) as f64).sqrt() * lipschitz * sigma_next / beta).powi(2)
}

/// `2 Σ_{k<r} C(n−1, k)`: the number of regions of n hyperplanes through the
/// origin in general position in rank r (Appendix A.8).
pub fn closed_form_regions(n: usize, r: usize) -> u64 {
    let mut total: u64 = 0;
    let mut binom: u64 = 1; // C(n−1, 0)
    for k in 0..r.min(n) {
        total += binom;
        binom = binom * (n as u64 - 1 - k as u64) / (k as u64 + 1);
    }
    2 * total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_counts_match_small_cases() {
        assert_eq!(closed_form_regions(5, 1), 2);
        assert_eq!(closed_form_regions(5, 2), 10);
        assert_eq!(
            closed_form_regions(15, 6),
            2 * (1 + 14 + 91 + 364 + 1001 + 2002)
        );
    }

    #[test]
    fn kept_rank_floors_and_keeps_at_least_one() {
        assert_eq!(kept_rank(2, 0.5), 1);
        assert_eq!(kept_rank(5, 0.5), 2);
        assert_eq!(kept_rank(3, 0.1), 1);
        assert_eq!(kept_rank(6, 1.0), 6);
    }

    #[test]
    fn the_bound_is_the_optimum_when_nothing_is_dropped() {
        assert_eq!(theorem2_bound(2.0, 3, 1, 1.0, 0.0, 0.1), 2.0);
        let b = theorem2_bound(1.0, 4, 1, 1.0, 0.5, 1.0);
        assert!((b - 4.0).abs() < 1e-15); // (1 + 2·0.5)²
    }

    #[test]
    fn the_approximation_error_is_the_next_singular_value() {
        let x = ndarray::array![[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]];
        let (low, sigma_next) = rank_r_approximation(x.view(), 1).unwrap();
        assert!((sigma_next - 1.0).abs() < 1e-12);
        assert!((low[[0, 0]] - 3.0).abs() < 1e-12 && low[[1, 1]].abs() < 1e-12);
    }
}
