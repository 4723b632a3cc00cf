//! Proposition 1 for (11): the constraint violation of `(Z, Z')` and the map
//! to a [`ConvexSolution`] of (21) and on to a parallel network.

use ndarray::{Array2, ArrayView2, s};

use super::gates::{Masks, SampledArrangements};
use super::objective::{Penalty, check, forward_pass};
use super::variables::SampledVariables;
use crate::CoreError;
use crate::convex::ConvexSolution;
use crate::network::ParallelNetwork;

/// How far `(Z, Z')` is from the cones of (21) on some data.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ViolationReport {
    /// `h(Z) + h(Z')`.
    pub total: f64,
    /// `total / Σ_k (‖Z_k‖ + ‖Z'_k‖)` (0 when all groups are zero).
    pub relative: f64,
    /// The largest single violated inequality.
    pub max: f64,
    /// `max` divided by the largest group norm (as
    /// [`ConvexSolution::max_constraint_violation`]).
    pub max_relative: f64,
}

/// The constraint violation of `(Z, Z')` on `x` (see [`ViolationReport`]).
pub fn violation_report(
    x: ArrayView2<f64>,
    masks: &Masks,
    vars: &SampledVariables,
) -> Result<ViolationReport, CoreError> {
    check(x, masks, vars)?;
    let u = x.dot(&vars.w);
    let (k, m1) = (masks.k, masks.m1);
    let km1 = k * m1;
    let pass = forward_pass(&u, masks, Some(Penalty::Exact));
    let mut max: f64 = 0.0;
    for i in 0..u.nrows() {
        for half in 0..2 {
            for kk in 0..k {
                let side2 = 2.0 * masks.d2[[i, kk]] - 1.0;
                max = max.max(-side2 * pass.pre2[[i, half * k + kk]]);
                for j in 0..m1 {
                    let c = kk * m1 + j;
                    let side1 = (2.0 * masks.d1[[i, c]] - 1.0) * masks.signs[c];
                    max = max.max(-side1 * u[[i, half * km1 + c]]);
                }
            }
        }
    }
    let norms = vars.group_norms();
    let sum: f64 = norms.iter().sum();
    let largest = norms.iter().copied().fold(0.0, f64::max);
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    Ok(ViolationReport {
        total: pass.violation,
        relative: ratio(pass.violation, sum),
        max,
        max_relative: ratio(max, largest),
    })
}

/// `(Z, Z')` as a [`ConvexSolution`] of (21) over the `K` triples that the
/// gates induce on `x` (duplicates kept; each triple's neurons in canonical
/// order, the blocks permuted to match).
pub fn to_convex_solution(
    arrangements: &SampledArrangements,
    x: ArrayView2<f64>,
    vars: &SampledVariables,
) -> Result<ConvexSolution, CoreError> {
    let masks = arrangements.masks(x)?;
    check(x, &masks, vars)?;
    let (k, d, m1) = (vars.k, vars.d(), vars.m1);
    let mut triples = Vec::with_capacity(k);
    let mut z = Array2::zeros((k, d * m1));
    let mut zp = Array2::zeros((k, d * m1));
    for kk in 0..k {
        let (triple, order) = masks.triple(kk, &arrangements.signs);
        for (pos, &j) in order.iter().enumerate() {
            z.slice_mut(s![kk, pos * d..(pos + 1) * d])
                .assign(&vars.block(kk, false).column(j));
            zp.slice_mut(s![kk, pos * d..(pos + 1) * d])
                .assign(&vars.block(kk, true).column(j));
        }
        triples.push(triple);
    }
    ConvexSolution::new(triples, d, z, zp)
}

/// Proposition 1: the parallel network with one sub-network per non-zero
/// group (at most `2K`), via [`ConvexSolution::to_network`] with
/// `rel_tol = 0`. `x` only fixes the (function-preserving) neuron order.
pub fn to_network(
    arrangements: &SampledArrangements,
    x: ArrayView2<f64>,
    vars: &SampledVariables,
    m2: usize,
) -> Result<ParallelNetwork, CoreError> {
    to_convex_solution(arrangements, x, vars)?.to_network(m2, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Loss;
    use crate::network::standard_normal;
    use crate::unconstrained::test_support::problem;
    use crate::unconstrained::{Objective11, evaluate, predict};
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn agrees_with_convex_solution_of_program_21() {
        let (arr, x, y, v) = problem(2, 7, 3, 3, 2);
        let masks = arr.masks(x.view()).unwrap();
        let sol = to_convex_solution(&arr, x.view(), &v).unwrap();
        let ours = predict(x.view(), &masks, &v).unwrap();
        let theirs = sol.predict(x.view());
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-10 * (1.0 + b.abs()));
        }
        let obj = Objective11 {
            loss: Loss::Squared,
            beta: 0.3,
            m2: 2,
            lambda: 0.0,
        };
        let (value, _) = evaluate(x.view(), y.view(), &masks, &v, &obj).unwrap();
        let reference = sol.objective(x.view(), y.view(), 0.3, 2);
        assert!((value.objective - reference.objective).abs() < 1e-10 * reference.objective);
        // The violation relative to the largest group matches (21)'s check.
        let report = violation_report(x.view(), &masks, &v).unwrap();
        let expected = sol.max_constraint_violation(x.view());
        assert!((report.max_relative - expected).abs() < 1e-10 * (1.0 + expected));
    }

    /// Projects each group onto its cone approximately by zeroing every
    /// violated coordinate pattern: keeps only neurons whose `X z_kj` has the
    /// sign of `D1_kj` on every sample (here: `z_kj = I_kj c · w1_kj`).
    #[test]
    fn mapped_network_is_exact_on_feasible_points_and_bounded_otherwise() {
        let mut rng = ChaCha8Rng::seed_from_u64(10);
        let (n, d, k, m1, m2) = (12, 3, 4, 3, 2);
        let arr = SampledArrangements::sample(&mut rng, k, d, m1).unwrap();
        let x = Array2::from_shape_fn((n, d), |_| standard_normal(&mut rng));
        let masks = arr.masks(x.view()).unwrap();
        // A feasible point: z_kj = c_k |w2_kj| I_kj w1_kj is exactly the gate
        // network scaled, so both layers' constraints hold by construction.
        let mut feasible = SampledVariables::zeros(k, d, m1).unwrap();
        for kk in 0..k {
            for prime in [false, true] {
                let c = if prime { 0.5 } else { 1.5 } + kk as f64;
                let mut block = Array2::zeros((d, m1));
                for j in 0..m1 {
                    let sign = if arr.signs()[[kk, j]] { 1.0 } else { -1.0 };
                    block.column_mut(j).assign(
                        &(&arr.w1().slice(s![kk, .., j]) * (c * sign * arr.w2_abs()[[kk, j]])),
                    );
                }
                feasible.block_mut(kk, prime).assign(&block);
            }
        }
        let report = violation_report(x.view(), &masks, &feasible).unwrap();
        assert_eq!(report.total, 0.0);
        let net = to_network(&arr, x.view(), &feasible, m2).unwrap();
        assert_eq!(net.num_subnetworks(), 2 * k);
        let f_convex = predict(x.view(), &masks, &feasible).unwrap();
        let f_net = net.predict(x.view()).unwrap();
        for (a, b) in f_convex.iter().zip(&f_net) {
            assert!((a - b).abs() < 1e-10 * (1.0 + a.abs()), "{a} vs {b}");
        }
        // Path norm of the mapped network = Σ‖Z‖/√m2.
        let norms: f64 = feasible.group_norms().iter().sum();
        assert!((net.path_regularizer() - norms / (m2 as f64).sqrt()).abs() < 1e-10 * norms);
        // An infeasible point: the outputs differ by at most h in ℓ1.
        let (_, _, _, v) = problem(11, n, d, k, m1);
        let report = violation_report(x.view(), &masks, &v).unwrap();
        assert!(report.total > 0.0);
        let net = to_network(&arr, x.view(), &v, m2).unwrap();
        let f_convex = predict(x.view(), &masks, &v).unwrap();
        let f_net = net.predict(x.view()).unwrap();
        let l1: f64 = f_convex
            .iter()
            .zip(&f_net)
            .map(|(a, b)| (a - b).abs())
            .sum();
        assert!(
            l1 <= report.total * (1.0 + 1e-10),
            "{l1} > {}",
            report.total
        );
        // Zero groups are skipped.
        let mut sparse = feasible.clone();
        sparse.block_mut(0, true).fill(0.0);
        assert_eq!(
            to_network(&arr, x.view(), &sparse, m2)
                .unwrap()
                .num_subnetworks(),
            2 * k - 1
        );
    }
}
