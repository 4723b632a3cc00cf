//! Projection onto polyhedral cones `{z : B z ≥ 0}` through non-negative least
//! squares (Lawson–Hanson), used to check the dual constraints (16)–(17).

/// Result of projecting `g` onto the cone `C = {z : B z ≥ 0}`.
#[derive(Debug, Clone)]
pub struct ConeProjection {
    /// `P_C(g)`.
    pub point: Vec<f64>,
}

/// Projects `g ∈ R^dim` onto `C = {z : B z ≥ 0}` (`b_rows` row-major, `dim`
/// columns). By Moreau's decomposition `P_C(g) = g + Bᵀλ*`, where
/// `λ* = argmin_{λ ≥ 0} ‖Bᵀλ + g‖²` (the polar cone is `{−Bᵀλ : λ ≥ 0}`).
pub fn project_onto_cone(g: &[f64], b_rows: &[f64], dim: usize) -> ConeProjection {
    let num = b_rows.len().checked_div(dim).unwrap_or(0);
    let target: Vec<f64> = g.iter().map(|v| -v).collect();
    let lambda = nnls(b_rows, num, dim, &target);
    let mut point = g.to_vec();
    for (r, l) in lambda.iter().enumerate() {
        if *l != 0.0 {
            for a in 0..dim {
                point[a] += l * b_rows[r * dim + a];
            }
        }
    }
    ConeProjection { point }
}

/// Lawson–Hanson: `argmin_{λ ≥ 0} ‖E λ − f‖` where column `r` of `E` (`dim`
/// rows) is row `r` of `cols` (`num` of them).
fn nnls(cols: &[f64], num: usize, dim: usize, f: &[f64]) -> Vec<f64> {
    let col = |r: usize| &cols[r * dim..(r + 1) * dim];
    let scale = f.iter().map(|v| v.abs()).fold(0.0, f64::max).max(1e-300);
    let tol = 1e-13 * scale * cols.iter().map(|v| v.abs()).fold(1.0, f64::max);
    let mut lambda = vec![0.0; num];
    let mut passive = vec![false; num];
    let mut excluded = vec![false; num];
    let mut residual = f.to_vec();
    for _outer in 0..(3 * num + 10) {
        // Gradient of −½‖Eλ − f‖²: w = Eᵀ(f − Eλ).
        let best = (0..num)
            .filter(|&r| !passive[r] && !excluded[r])
            .map(|r| (r, dot(col(r), &residual)))
            .filter(|(_, w)| *w > tol)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((entering, _)) = best else { break };
        passive[entering] = true;
        for _inner in 0..(3 * num + 10) {
            let set: Vec<usize> = (0..num).filter(|&r| passive[r]).collect();
            let Some(s) = least_squares(&set, &col, dim, f) else {
                // Dependent columns: drop the newest and stop growing this set.
                passive[entering] = false;
                excluded[entering] = true;
                break;
            };
            if s.iter().all(|v| *v > 0.0) {
                for (k, &r) in set.iter().enumerate() {
                    lambda[r] = s[k];
                }
                excluded.fill(false);
                break;
            }
            let mut alpha = f64::INFINITY;
            for (k, &r) in set.iter().enumerate() {
                if s[k] <= 0.0 {
                    let denom = lambda[r] - s[k];
                    if denom > 0.0 {
                        alpha = alpha.min(lambda[r] / denom);
                    }
                }
            }
            if !alpha.is_finite() {
                alpha = 0.0;
            }
            for (k, &r) in set.iter().enumerate() {
                lambda[r] += alpha * (s[k] - lambda[r]);
                if lambda[r] <= 1e-15 * scale {
                    lambda[r] = 0.0;
                    passive[r] = false;
                }
            }
        }
        residual = f.to_vec();
        for r in 0..num {
            if lambda[r] != 0.0 {
                for (a, v) in residual.iter_mut().enumerate() {
                    *v -= lambda[r] * cols[r * dim + a];
                }
            }
        }
    }
    lambda
}

/// Least squares `argmin_s ‖Σ_k s_k col(set[k]) − f‖` by Householder QR;
/// `None` if the columns are numerically dependent.
fn least_squares<'a>(
    set: &[usize],
    col: &impl Fn(usize) -> &'a [f64],
    dim: usize,
    f: &[f64],
) -> Option<Vec<f64>> {
    let k = set.len();
    if k > dim {
        return None;
    }
    // Column-major copy of E_P and the right-hand side.
    let mut a: Vec<f64> = set.iter().flat_map(|&r| col(r).iter().copied()).collect();
    let mut rhs = f.to_vec();
    let norm_scale = a.iter().map(|v| v.abs()).fold(0.0, f64::max);
    for j in 0..k {
        let column = &a[j * dim..(j + 1) * dim];
        let norm = column[j..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm <= 1e-12 * norm_scale {
            return None;
        }
        let alpha = if column[j] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = column[j..].to_vec();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|x| x * x).sum();
        if vnorm2 > 0.0 {
            for jj in j..k {
                let c = &mut a[jj * dim + j..(jj + 1) * dim];
                let proj = 2.0 * dot(&v, c) / vnorm2;
                for (ci, vi) in c.iter_mut().zip(&v) {
                    *ci -= proj * vi;
                }
            }
            let proj = 2.0 * dot(&v, &rhs[j..]) / vnorm2;
            for (ri, vi) in rhs[j..].iter_mut().zip(&v) {
                *ri -= proj * vi;
            }
        }
    }
    let mut s = vec![0.0; k];
    for j in (0..k).rev() {
        let mut acc = rhs[j];
        for jj in j + 1..k {
            acc -= a[jj * dim + j] * s[jj];
        }
        s[j] = acc / a[j * dim + j];
    }
    Some(s)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    /// KKT of the projection: p ∈ C, g − p ∈ C° (checked via λ ≥ 0 form
    /// implicitly by ⟨p, g − p⟩ = 0 and ⟨g − p, c⟩ ≤ 0 for sampled c ∈ C).
    #[test]
    fn projection_satisfies_the_moreau_conditions() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        for trial in 0..200 {
            let dim = 2 + trial % 5;
            let rows = 1 + trial % 9;
            let b: Vec<f64> = (0..rows * dim)
                .map(|_| StandardNormal.sample(&mut rng))
                .collect();
            let g: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
            let p = project_onto_cone(&g, &b, dim).point;
            for r in 0..rows {
                assert!(
                    dot(&b[r * dim..(r + 1) * dim], &p) >= -1e-9,
                    "projection outside the cone"
                );
            }
            let diff: Vec<f64> = g.iter().zip(&p).map(|(a, b)| a - b).collect();
            assert!(dot(&p, &diff).abs() < 1e-9, "not orthogonal");
            // g − p must be in the polar cone: ⟨g − p, c⟩ ≤ 0 for all c ∈ C.
            // Sample points of C by projecting random vectors.
            for _ in 0..5 {
                let h: Vec<f64> = (0..dim).map(|_| StandardNormal.sample(&mut rng)).collect();
                let c = project_onto_cone(&h, &b, dim).point;
                assert!(dot(&diff, &c) <= 1e-9, "residual not in the polar cone");
            }
        }
    }

    #[test]
    fn projection_onto_the_nonnegative_orthant_clips() {
        let b = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let p = project_onto_cone(&[1.0, -2.0, 3.0], &b, 3).point;
        assert!((p[0] - 1.0).abs() < 1e-12 && p[1].abs() < 1e-12 && (p[2] - 3.0).abs() < 1e-12);
    }
}
