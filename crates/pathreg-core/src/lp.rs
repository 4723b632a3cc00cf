//! Strict feasibility of homogeneous linear systems `G w > 0`, the primitive
//! behind exact hyperplane-arrangement enumeration (Appendix A.8, A.10).
//!
//! By Gordan's theorem, `G w > 0` has a solution iff there is no `λ ≥ 0`,
//! `λ ≠ 0` with `Gᵀλ = 0`. We decide the latter with a phase-1 simplex on
//! `Gᵀλ = 0, 1ᵀλ = 1, λ ≥ 0` (Bland's rule, so it terminates on these highly
//! degenerate systems). When the phase-1 optimum is positive, the simplex
//! multipliers `y = (y_w, y_0)` satisfy `g_jᵀ(−y_w) ≥ y_0 > 0` for every row
//! `g_j` of `G`, so `−y_w` is a strictly feasible witness. Every "feasible"
//! answer is verified on its witness, so it never rests on a tolerance.

/// Pivot and feasibility tolerance of the simplex.
const EPS: f64 = 1e-11;

#[cfg(test)]
thread_local! {
    /// Calls of [`strictly_feasible`] on this thread, for tests of the LP bound
    /// of [`crate::arrangement::EnumerationEstimate`].
    pub(crate) static LP_CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Returns a strictly feasible `w` (`G w > 0` componentwise) or `None`.
///
/// `rows` holds the rows of `G`, each of length `dim`. An empty system is
/// feasible (witness: the zero vector is returned only in that case).
pub fn strictly_feasible(rows: &[f64], dim: usize) -> Option<Vec<f64>> {
    #[cfg(test)]
    LP_CALLS.with(|c| c.set(c.get() + 1));
    let num_rows = rows.len().checked_div(dim).unwrap_or(0);
    if num_rows == 0 {
        return Some(vec![0.0; dim]);
    }
    let m = dim + 1; // equality constraints: Gᵀλ = 0 (dim rows) and 1ᵀλ = 1
    let n_lambda = num_rows;
    let n_cols = n_lambda + m; // λ then one artificial per constraint
    let width = n_cols + 1; // plus the right-hand side
    let mut tableau = vec![0.0; (m + 1) * width];
    for j in 0..n_lambda {
        for a in 0..dim {
            tableau[a * width + j] = rows[j * dim + a];
        }
        tableau[dim * width + j] = 1.0;
    }
    for i in 0..m {
        tableau[i * width + n_lambda + i] = 1.0;
    }
    tableau[dim * width + n_cols] = 1.0;
    // Objective row: reduced costs of the phase-1 objective Σ artificials.
    let obj = m * width;
    for j in 0..width {
        let col_sum: f64 = (0..m).map(|i| tableau[i * width + j]).sum();
        let cost = if j >= n_lambda && j < n_cols {
            1.0
        } else {
            0.0
        };
        tableau[obj + j] = cost - col_sum;
    }
    let mut basis: Vec<usize> = (n_lambda..n_cols).collect();
    let max_pivots = 50 * (m + n_cols);
    for _ in 0..max_pivots {
        let Some(entering) = (0..n_cols).find(|&j| tableau[obj + j] < -EPS) else {
            break;
        };
        let mut leaving: Option<(usize, f64)> = None;
        for i in 0..m {
            let a = tableau[i * width + entering];
            if a > EPS {
                let ratio = tableau[i * width + n_cols] / a;
                match leaving {
                    Some((l, r))
                        if ratio > r + EPS || (ratio >= r - EPS && basis[i] > basis[l]) => {}
                    _ => leaving = Some((i, ratio)),
                }
            }
        }
        // Phase-1 objective is bounded below by 0, so a leaving row exists.
        let Some((row, _)) = leaving else { break };
        pivot(&mut tableau, m + 1, width, row, entering);
        basis[row] = entering;
    }
    let phase1_value = -tableau[obj + n_cols];
    if phase1_value <= EPS {
        return None;
    }
    // Multipliers from the artificials' reduced costs: r_i = 1 − y_i.
    let witness: Vec<f64> = (0..dim)
        .map(|a| -(1.0 - tableau[obj + n_lambda + a]))
        .collect();
    let verified = rows.chunks_exact(dim).all(|g| {
        let value: f64 = g.iter().zip(&witness).map(|(u, v)| u * v).sum();
        let scale: f64 = g.iter().map(|u| u.abs()).sum::<f64>()
            * witness.iter().map(|v| v.abs()).fold(0.0, f64::max);
        value > 1e-12 * scale.max(f64::MIN_POSITIVE)
    });
    verified.then_some(witness)
}

fn pivot(tableau: &mut [f64], num_rows: usize, width: usize, row: usize, col: usize) {
    let p = tableau[row * width + col];
    for j in 0..width {
        tableau[row * width + j] /= p;
    }
    for i in 0..num_rows {
        if i == row {
            continue;
        }
        let factor = tableau[i * width + col];
        if factor != 0.0 {
            for j in 0..width {
                tableau[i * width + j] -= factor * tableau[row * width + j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_quadrant_is_feasible_with_a_valid_witness() {
        let rows = [1.0, 0.0, 0.0, 1.0];
        let w = strictly_feasible(&rows, 2).unwrap();
        assert!(w[0] > 0.0 && w[1] > 0.0);
    }

    #[test]
    fn opposite_half_spaces_are_infeasible() {
        let rows = [1.0, 2.0, -1.0, -2.0];
        assert!(strictly_feasible(&rows, 2).is_none());
    }

    #[test]
    fn three_vectors_summing_to_zero_are_infeasible() {
        // g1 + g2 + g3 = 0, so no w has all three inner products positive.
        let rows = [1.0, 0.0, -0.5, 0.8, -0.5, -0.8];
        assert!(strictly_feasible(&rows, 2).is_none());
        // Flip one: feasible.
        let rows = [1.0, 0.0, -0.5, 0.8, 0.5, 0.8];
        let w = strictly_feasible(&rows, 2).unwrap();
        for g in rows.chunks(2) {
            assert!(g[0] * w[0] + g[1] * w[1] > 0.0);
        }
    }

    #[test]
    fn thin_cone_in_higher_dimension() {
        let rows = [
            1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, -1.0, -1.0, -0.999,
        ];
        // The positive orthant and −(1, 1, 0.999)·w > 0 cannot both hold.
        assert!(strictly_feasible(&rows, 3).is_none());
        // A thin but open cone: w1, w2 > 0 and w3 > w1 + 0.999 w2.
        let rows = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -1.0, -0.999, 1.0];
        let w = strictly_feasible(&rows, 3).unwrap();
        for g in rows.chunks(3) {
            assert!(g.iter().zip(&w).map(|(a, b)| a * b).sum::<f64>() > 0.0);
        }
    }
}
