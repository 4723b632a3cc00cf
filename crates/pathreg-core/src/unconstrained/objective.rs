//! The kernels of objective (11): one GEMM `U = X [Z | Z']`, a masked pass
//! for the outputs, the violations `h` and the second-layer pre-activations,
//! and one GEMM `Xᵀ B` for the gradient.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use super::accuracy::hits;
use super::gates::Masks;
use super::variables::SampledVariables;
use crate::CoreError;
use crate::convex::group_weight;
use crate::loss::Loss;

/// The parameters of objective (11).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective11 {
    /// `L`.
    pub loss: Loss,
    /// `β`.
    pub beta: f64,
    /// `m2` (the group weight is `β/√m2`).
    pub m2: usize,
    /// `λ`, the weight of the constraint violations `h`.
    pub lambda: f64,
}

impl Objective11 {
    /// `β' = β/√m2`.
    pub fn group_weight(&self) -> f64 {
        group_weight(self.beta, self.m2.max(1))
    }
}

/// The value of objective (11), split into its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective11Value {
    /// `L(f, y)`.
    pub loss: f64,
    /// `Σ_k (‖Z_k‖_F + ‖Z'_k‖_F)` (without `β'`).
    pub group_norms: f64,
    /// `h(Z) + h(Z')`.
    pub violation: f64,
    /// `loss + β'·group_norms + λ·violation`.
    pub objective: f64,
}

/// How the penalty `(t)+` in `h` is evaluated by [`data_term_and_gradient`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Penalty {
    /// `(t)+` itself; subgradient `1[t > 0]`.
    Exact,
    /// The Huber smoothing with parameter `μ > 0`: `0` for `t ≤ 0`, `t²/(2μ)`
    /// for `0 < t < μ`, `t − μ/2` above; gradient `clamp(t/μ, 0, 1)` is
    /// `1/μ`-Lipschitz and the value is within `μ/2` of `(t)+`.
    Huber(f64),
}

impl Penalty {
    fn value(self, t: f64) -> f64 {
        match self {
            Penalty::Exact => t.max(0.0),
            Penalty::Huber(mu) => {
                if t <= 0.0 {
                    0.0
                } else if t < mu {
                    t * t / (2.0 * mu)
                } else {
                    t - 0.5 * mu
                }
            }
        }
    }
    fn slope(self, t: f64) -> f64 {
        match self {
            Penalty::Exact => {
                if t > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Penalty::Huber(mu) => (t / mu).clamp(0.0, 1.0),
        }
    }
}

/// The data-dependent part `L(f, y) + λ h` of (11) at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DataTerm {
    /// `L(f, y)`.
    pub loss: f64,
    /// `h(Z) + h(Z')` (smoothed when a Huber penalty was asked for).
    pub violation: f64,
    /// Outputs with the label's sign (labels ±1, `f > 0` counts as +1).
    pub hits: usize,
}

pub(super) fn check(
    x: ArrayView2<f64>,
    masks: &Masks,
    vars: &SampledVariables,
) -> Result<(), CoreError> {
    if x.nrows() != masks.n() || x.ncols() != vars.d() || masks.k != vars.k || masks.m1 != vars.m1 {
        return Err(CoreError::Shape(format!(
            "data {:?}, masks for n = {} (K = {}, m1 = {}), variables d = {} (K = {}, m1 = {})",
            x.dim(),
            masks.n(),
            masks.k,
            masks.m1,
            vars.d(),
            vars.k,
            vars.m1
        )));
    }
    Ok(())
}

/// Per-sample quantities of the masked pass over `U = X [Z | Z']`.
pub(super) struct Pass {
    pub(super) f: Array1<f64>,
    /// Second-layer pre-activations `Σ_j D1_kj (X z_kj)_i`, `n × 2K`.
    pub(super) pre2: Array2<f64>,
    pub(super) violation: f64,
}

pub(super) fn forward_pass(u: &Array2<f64>, masks: &Masks, penalty: Option<Penalty>) -> Pass {
    let (k, m1) = (masks.k, masks.m1);
    let km1 = k * m1;
    let n = u.nrows();
    let mut f = Array1::zeros(n);
    let mut pre2 = Array2::zeros((n, 2 * k));
    let mut violation = 0.0;
    let signs = masks.signs.as_slice().unwrap_or(&[]);
    for i in 0..n {
        let u_row = u.row(i);
        let u_row = u_row.as_slice().unwrap_or(&[]);
        let d1 = masks.d1.row(i);
        let d1 = d1.as_slice().unwrap_or(&[]);
        let d2 = masks.d2.row(i);
        let mut fi = 0.0;
        for half in 0..2 {
            let sign_half = if half == 0 { 1.0 } else { -1.0 };
            let uh = &u_row[half * km1..(half + 1) * km1];
            for kk in 0..k {
                let cols = kk * m1..(kk + 1) * m1;
                let (p2, v1) =
                    group_sums(&uh[cols.clone()], &d1[cols.clone()], &signs[cols], penalty);
                pre2[[i, half * k + kk]] = p2;
                fi += sign_half * d2[kk] * p2;
                if let Some(pen) = penalty {
                    violation += v1 + pen.value(-(2.0 * d2[kk] - 1.0) * p2);
                }
            }
        }
        f[i] = fi;
    }
    Pass { f, pre2, violation }
}

/// Over one group `(k, j = 1..m1)` of one sample: the second-layer
/// pre-activation `Σ_j D1_j u_j` and the first-layer violation
/// `Σ_j pen(−(2 D1_j − 1) I_j u_j)` (0 without a penalty). Four interleaved
/// partial sums in a fixed order: the additions pipeline (and vectorize)
/// instead of waiting on one accumulator, and results stay reproducible.
#[inline]
fn group_sums(u: &[f64], d1: &[f64], signs: &[f64], penalty: Option<Penalty>) -> (f64, f64) {
    match penalty {
        None => {
            let (p, _) = lane_sums(u, d1, signs, None::<fn(f64) -> f64>);
            (p, 0.0)
        }
        // The exact penalty's `max` is spelled out so the loop vectorizes.
        Some(Penalty::Exact) => lane_sums(u, d1, signs, Some(|t: f64| t.max(0.0))),
        Some(pen) => lane_sums(u, d1, signs, Some(|t| pen.value(t))),
    }
}

/// [`group_sums`] with the penalty as a closure (monomorphized per penalty).
#[inline]
fn lane_sums(
    u: &[f64],
    d1: &[f64],
    signs: &[f64],
    penalty: Option<impl Fn(f64) -> f64>,
) -> (f64, f64) {
    const LANES: usize = 4;
    let mut p = [0.0f64; LANES];
    let mut v = [0.0f64; LANES];
    let chunks = u.len() / LANES * LANES;
    let side = |d: f64, s: f64| (2.0 * d - 1.0) * s;
    let lanes = u[..chunks]
        .chunks_exact(LANES)
        .zip(d1[..chunks].chunks_exact(LANES))
        .zip(signs[..chunks].chunks_exact(LANES));
    for ((uc, dc), sc) in lanes {
        for l in 0..LANES {
            p[l] += dc[l] * uc[l];
            if let Some(pen) = &penalty {
                v[l] += pen(-side(dc[l], sc[l]) * uc[l]);
            }
        }
    }
    for ((uv, dv), sv) in u[chunks..].iter().zip(&d1[chunks..]).zip(&signs[chunks..]) {
        p[0] += dv * uv;
        if let Some(pen) = &penalty {
            v[0] += pen(-side(*dv, *sv) * uv);
        }
    }
    ((p[0] + p[1]) + (p[2] + p[3]), (v[0] + v[1]) + (v[2] + v[3]))
}

/// The convex model's output `f = Σ_k A_k (Z_k − Z'_k)` on `x` with its masks.
pub fn predict(
    x: ArrayView2<f64>,
    masks: &Masks,
    vars: &SampledVariables,
) -> Result<Array1<f64>, CoreError> {
    check(x, masks, vars)?;
    let u = x.dot(&vars.w);
    Ok(forward_pass(&u, masks, None).f)
}

/// Objective (11) (exact `h`) and the model output on the same data.
pub fn evaluate(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    masks: &Masks,
    vars: &SampledVariables,
    objective: &Objective11,
) -> Result<(Objective11Value, Array1<f64>), CoreError> {
    check(x, masks, vars)?;
    check_labels(x, y)?;
    let u = x.dot(&vars.w);
    let pass = forward_pass(&u, masks, Some(Penalty::Exact));
    let loss = objective.loss.value(pass.f.view(), y);
    let norms: f64 = vars.group_norms().iter().sum();
    Ok((
        Objective11Value {
            loss,
            group_norms: norms,
            violation: pass.violation,
            objective: loss + objective.group_weight() * norms + objective.lambda * pass.violation,
        },
        pass.f,
    ))
}

pub(super) fn check_labels(x: ArrayView2<f64>, y: ArrayView1<f64>) -> Result<(), CoreError> {
    if x.nrows() != y.len() {
        return Err(CoreError::Shape(format!(
            "{} samples but {} labels",
            x.nrows(),
            y.len()
        )));
    }
    Ok(())
}

/// `L(f, y)` and `h(Z) + h(Z')` (exact or smoothed by `penalty`): the value
/// of [`data_term_and_gradient`] without the backward GEMM.
pub fn data_term(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    masks: &Masks,
    vars: &SampledVariables,
    loss: Loss,
    penalty: Penalty,
) -> Result<DataTerm, CoreError> {
    check(x, masks, vars)?;
    check_labels(x, y)?;
    let u = x.dot(&vars.w);
    let pass = forward_pass(&u, masks, Some(penalty));
    Ok(DataTerm {
        loss: loss.value(pass.f.view(), y),
        violation: pass.violation,
        hits: hits(pass.f.view(), y),
    })
}

/// `scale · (L(f, y) + λ h)` and its (sub)gradient with respect to the packed
/// variables (`d × 2Km1`). `scale` makes a mini-batch estimate unbiased
/// (`n / batch`); `penalty` picks the exact `(·)+` or its Huber smoothing.
/// The returned [`DataTerm`] is unscaled.
pub fn data_term_and_gradient(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    masks: &Masks,
    vars: &SampledVariables,
    objective: &Objective11,
    scale: f64,
    penalty: Penalty,
) -> Result<(DataTerm, Array2<f64>), CoreError> {
    check(x, masks, vars)?;
    check_labels(x, y)?;
    let u = x.dot(&vars.w);
    let (k, m1) = (masks.k, masks.m1);
    let km1 = k * m1;
    let pass = forward_pass(&u, masks, Some(penalty));
    let loss = objective.loss.value(pass.f.view(), y);
    let g = objective.loss.derivative(pass.f.view(), y) * scale;
    let lam = objective.lambda * scale;
    let signs = masks.signs.as_slice().unwrap_or(&[]);
    // B = ∂(scaled data term)/∂U, then the gradient is Xᵀ B.
    let mut b = Array2::zeros(u.raw_dim());
    for (i, mut b_row) in b.rows_mut().into_iter().enumerate() {
        let b_row = b_row.as_slice_mut().unwrap_or(&mut []);
        let u_row = u.row(i);
        let u_row = u_row.as_slice().unwrap_or(&[]);
        let d1 = masks.d1.row(i);
        let d1 = d1.as_slice().unwrap_or(&[]);
        for half in 0..2 {
            let sign_half = if half == 0 { 1.0 } else { -1.0 };
            for kk in 0..k {
                let d2 = masks.d2[[i, kk]];
                let side2 = 2.0 * d2 - 1.0;
                let p2 = pass.pre2[[i, half * k + kk]];
                // ∂/∂pre2 of the loss and of the second-layer penalty.
                let c2 = sign_half * d2 * g[i] - lam * side2 * penalty.slope(-side2 * p2);
                let off = half * km1 + kk * m1;
                let cols = kk * m1..(kk + 1) * m1;
                let b_group = &mut b_row[off..off + m1];
                let u_group = &u_row[off..off + m1];
                let rows = b_group
                    .iter_mut()
                    .zip(u_group)
                    .zip(&d1[cols.clone()])
                    .zip(&signs[cols]);
                // b = D1 c2 − λ side1 slope(−side1 u), side1 = (2 D1 − 1) I.
                match penalty {
                    Penalty::Exact => {
                        for (((bv, uv), dv), sv) in rows {
                            let side1 = (2.0 * dv - 1.0) * sv;
                            let active = if -side1 * uv > 0.0 { lam * side1 } else { 0.0 };
                            *bv = dv * c2 - active;
                        }
                    }
                    Penalty::Huber(_) => {
                        for (((bv, uv), dv), sv) in rows {
                            let side1 = (2.0 * dv - 1.0) * sv;
                            *bv = dv * c2 - lam * side1 * penalty.slope(-side1 * uv);
                        }
                    }
                }
            }
        }
    }
    let grad = x.t().dot(&b);
    Ok((
        DataTerm {
            loss,
            violation: pass.violation,
            hits: hits(pass.f.view(), y),
        },
        grad,
    ))
}

/// Objective (11) with exact `h` and a subgradient with respect to the
/// packed variables; `scale` multiplies the data term `L + λh` (not the group
/// norms), as for mini-batches.
pub fn objective_and_gradient(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    masks: &Masks,
    vars: &SampledVariables,
    objective: &Objective11,
    scale: f64,
) -> Result<(Objective11Value, Array2<f64>), CoreError> {
    let (term, mut grad) =
        data_term_and_gradient(x, y, masks, vars, objective, scale, Penalty::Exact)?;
    let norms = vars.add_group_lasso_subgradient(objective.group_weight(), &mut grad);
    Ok((
        Objective11Value {
            loss: term.loss,
            group_norms: norms,
            violation: term.violation,
            objective: term.loss
                + objective.group_weight() * norms
                + objective.lambda * term.violation,
        },
        grad,
    ))
}

/// The adjoint of the (masked, linear) loss operator `W ↦ f`:
/// `g ↦ ∂(gᵀf)/∂W` (`d × 2Km1`). With [`predict`] it gives a power
/// iteration for `‖X̃‖²`, the Lipschitz constant of the squared loss.
pub fn adjoint(x: ArrayView2<f64>, masks: &Masks, g: ArrayView1<f64>) -> Array2<f64> {
    let (k, m1) = (masks.k, masks.m1);
    let km1 = k * m1;
    let mut b = Array2::zeros((x.nrows(), 2 * km1));
    for (i, mut row) in b.rows_mut().into_iter().enumerate() {
        for half in 0..2 {
            let sign_half = if half == 0 { 1.0 } else { -1.0 };
            for kk in 0..k {
                let c2 = sign_half * masks.d2[[i, kk]] * g[i];
                for j in 0..m1 {
                    let c = kk * m1 + j;
                    row[half * km1 + c] = masks.d1[[i, c]] * c2;
                }
            }
        }
    }
    x.t().dot(&b)
}

/// `‖X̃‖²`, the squared spectral norm of the masked linear operator
/// `W ↦ f` of (11) (the Lipschitz constant of the squared loss's gradient),
/// estimated by `iterations` power iterations on `X̃ X̃ᵀ` from the uniform
/// vector. The estimate never exceeds the true value and is deterministic.
pub fn operator_norm_squared(
    x: ArrayView2<f64>,
    masks: &Masks,
    iterations: usize,
) -> Result<f64, CoreError> {
    let n = x.nrows();
    let mut g = Array1::from_elem(n, 1.0 / (n.max(1) as f64).sqrt());
    let mut sigma2 = 0.0;
    for _ in 0..iterations {
        let w = adjoint(x, masks, g.view());
        let probe = SampledVariables::from_packed(w, masks.k, masks.m1)?;
        let f = predict(x, masks, &probe)?;
        let norm = f.dot(&f).sqrt();
        if norm == 0.0 {
            break;
        }
        sigma2 = norm;
        g = f / norm;
    }
    Ok(sigma2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::standard_normal;
    use crate::unconstrained::SampledArrangements;
    use crate::unconstrained::test_support::problem;
    use ndarray::s;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// `f` by the definition, sample by sample.
    fn naive_predict(arr: &SampledArrangements, x: &Array2<f64>, v: &SampledVariables) -> Vec<f64> {
        let (k, m1) = (arr.k(), arr.m1());
        let (z, zp) = v.to_blocks();
        (0..x.nrows())
            .map(|i| {
                let xi = x.row(i);
                let mut f = 0.0;
                for kk in 0..k {
                    let mut pre2 = 0.0;
                    let mut out = 0.0;
                    for j in 0..m1 {
                        let g = xi.dot(&arr.w1().slice(s![kk, .., j]));
                        let w2 =
                            if arr.signs()[[kk, j]] { 1.0 } else { -1.0 } * arr.w2_abs()[[kk, j]];
                        pre2 += w2 * g.max(0.0);
                        if g > 0.0 {
                            out +=
                                xi.dot(&z.slice(s![kk, .., j])) - xi.dot(&zp.slice(s![kk, .., j]));
                        }
                    }
                    if pre2 > 0.0 {
                        f += out;
                    }
                }
                f
            })
            .collect()
    }

    #[test]
    fn prediction_matches_the_definition() {
        let (arr, x, _, v) = problem(1, 9, 3, 4, 5);
        let masks = arr.masks(x.view()).unwrap();
        let f = predict(x.view(), &masks, &v).unwrap();
        for (a, b) in f.iter().zip(naive_predict(&arr, &x, &v)) {
            assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    fn finite_difference_check(loss: Loss) {
        let (arr, x, y, v) = problem(3, 11, 4, 3, 4);
        let masks = arr.masks(x.view()).unwrap();
        let obj = Objective11 {
            loss,
            beta: 0.7,
            m2: 3,
            lambda: 0.45,
        };
        let v = SampledVariables::from_packed(v.packed() * 0.3, 3, 4).unwrap();
        let (value, grad) =
            objective_and_gradient(x.view(), y.view(), &masks, &v, &obj, 1.0).unwrap();
        let (check_value, _) = evaluate(x.view(), y.view(), &masks, &v, &obj).unwrap();
        assert!((value.objective - check_value.objective).abs() < 1e-12 * value.objective);
        assert!(
            value.violation > 0.0,
            "the random point must violate constraints"
        );
        let h = 1e-6;
        let mut worst: f64 = 0.0;
        for idx in 0..v.packed().len() {
            let (r, c) = (idx / v.packed().ncols(), idx % v.packed().ncols());
            let mut plus = v.clone();
            plus.packed_mut()[[r, c]] += h;
            let mut minus = v.clone();
            minus.packed_mut()[[r, c]] -= h;
            let fp = evaluate(x.view(), y.view(), &masks, &plus, &obj)
                .unwrap()
                .0
                .objective;
            let fm = evaluate(x.view(), y.view(), &masks, &minus, &obj)
                .unwrap()
                .0
                .objective;
            let numeric = (fp - fm) / (2.0 * h);
            worst = worst.max((numeric - grad[[r, c]]).abs() / (1.0 + numeric.abs()));
        }
        assert!(
            worst < 1e-5,
            "{loss:?}: worst relative gradient error {worst}"
        );
    }

    #[test]
    fn gradient_matches_finite_differences() {
        finite_difference_check(Loss::Squared);
        finite_difference_check(Loss::Logistic);
    }

    #[test]
    fn huber_gradient_matches_finite_differences() {
        let (arr, x, y, v) = problem(4, 10, 3, 2, 3);
        let masks = arr.masks(x.view()).unwrap();
        let obj = Objective11 {
            loss: Loss::Squared,
            beta: 0.0,
            m2: 1,
            lambda: 0.8,
        };
        let pen = Penalty::Huber(0.5);
        let value = |v: &SampledVariables| {
            let (t, _) =
                data_term_and_gradient(x.view(), y.view(), &masks, v, &obj, 2.0, pen).unwrap();
            2.0 * (t.loss + obj.lambda * t.violation)
        };
        let (_, grad) =
            data_term_and_gradient(x.view(), y.view(), &masks, &v, &obj, 2.0, pen).unwrap();
        let h = 1e-6;
        for idx in 0..v.packed().len() {
            let (r, c) = (idx / v.packed().ncols(), idx % v.packed().ncols());
            let mut plus = v.clone();
            plus.packed_mut()[[r, c]] += h;
            let mut minus = v.clone();
            minus.packed_mut()[[r, c]] -= h;
            let numeric = (value(&plus) - value(&minus)) / (2.0 * h);
            assert!((numeric - grad[[r, c]]).abs() < 1e-5 * (1.0 + numeric.abs()));
        }
    }

    #[test]
    fn adjoint_is_the_transpose_of_predict() {
        let (arr, x, _, v) = problem(6, 8, 3, 3, 2);
        let masks = arr.masks(x.view()).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let g = Array1::from_shape_fn(8, |_| standard_normal(&mut rng));
        let lhs = g.dot(&predict(x.view(), &masks, &v).unwrap());
        let rhs = (adjoint(x.view(), &masks, g.view()) * v.packed()).sum();
        assert!((lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()));
    }
}
