//! Newton polish of ADMM's sparse iterate on the faces it has identified.
//!
//! ADMM's bottleneck on (21) is the primal feasibility of its iterate (see
//! the [parent module](super)). Its projections, however, tell early which
//! constraints bind: a pre-activation `U_ij` that the projection set to
//! zero lies on its first-layer face `σ_ij x̃_iᵀ w̃_bj = 0`, and a sample
//! whose active pre-activations sum to zero lies on its second-layer face.
//! With the support of `V` and these faces fixed, (21) becomes
//!
//! ```text
//! min  ½‖Σ_b A_b N_b z_b − y‖² + β' Σ_b ‖z_b‖     (W̃_b = N_b z_b)
//! ```
//!
//! where the columns of `N_b` span the null space of block `b`'s binding
//! rows `G_b` (so `‖W̃_b‖_F = ‖z_b‖`): a smooth problem on the support,
//! solved here by Newton's method. Its Hessian `MᵀM + Σ_b a_b (I − ẑ_b
//! ẑ_bᵀ)` (`a_b = β'/‖z_b‖`) is a block-scaled identity plus a rank-`n + B`
//! term, so each step is one `n × n` Cholesky factor and a `B × B` Schur
//! complement (Woodbury; the radial blocks cancel exactly). Blocks that
//! the reduced problem shrinks to zero leave the support. Faces the Newton
//! point violates are added and the solve repeated, for up to [`ROUNDS`]
//! rounds.
//!
//! The certificate. On the faces the polished point lies on, the
//! stationarity `A_bᵀv + G_bᵀλ_b = β' ŵ_b` gives each block's multipliers
//! by least squares. They are mapped to the samples' pre-activations and
//! projected onto each sample's dual cone `K_i*`, which keeps them valid
//! even where single coefficients are negative (a sample's face rows are
//! dependent). Blocks outside the support start from ADMM's multipliers
//! `ρ_u Π_{K*}(−Λ)` instead. Either start is then refined for the polished
//! residual by FISTA on `min ‖X̃ᵀ(C_b ⊙ v + η_b)‖_F` over `η_b ∈ K_b*`, with
//! the exact projection onto each `K_i*`. Every iterate is dual feasible,
//! so the bound never depends on the faces being right. The polished point
//! is restored and evaluated like ADMM's own, and the better one is kept.
//!
//! A polish gives up when the faces are not settled: when its first Newton
//! point violates more than a quarter of the identified faces (see
//! `UNTRUSTED_FRACTION`), or when a round adds more faces than the round
//! before. Its rounds would then mostly empty the support. The best
//! polished point and the best bound are kept for the later checks, so a
//! solve capped between polishes still returns them.
//!
//! Measured on parkinsons (K = 8, m1 = 10, β = 0.5, the bench's case), with
//! polishes at 100, 200, 400, … iterations: the default tolerances are met
//! at 1 600 iterations against 7 100 without the polish, with the objective
//! within 1.7e-5 of Clarabel's. A gap of 1e-6 takes 3 200 iterations, where
//! plain ADMM needs 33 310 for 1e-5. The two blocks outside the support set
//! the bound until their multipliers are refined: ADMM's own leave a ratio
//! of 1.003 at 3 200 iterations. In the bench the polished solve takes
//! 2.14 s against plain ADMM's 5.09 s and Clarabel's 5.77 s. Elsewhere, at the same
//! K = 8, m1 = 10, β = 0.5: on sonar (d = 60) the tolerances are met at 200
//! iterations against 990, but the 600 × 600 eigendecompositions make it
//! slower in time; on breast-cancer neither meets them within 20 000
//! iterations, and the polish returns 40.71356 (gap 2.2e-4) where plain
//! ADMM returns 40.74729 (gap 1.0e-3). It is off by default
//! ([`AdmmSettings::polish_from`](super::AdmmSettings::polish_from)) until
//! it scales: at Table 3's m1 = 100 its eigendecompositions would be up to
//! `100 d × 100 d` per block.
//!
//! The null spaces are dense eigendecompositions of `d·m1 × d·m1` matrices,
//! so the polish is only run when `d·m1 ≤ MAX_BLOCK_DIMENSION`.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use pathreg_core::linalg::{Cholesky, symmetric_eigen};
use rayon::prelude::*;

use super::Problem;

/// The largest block dimension `d·m1` the polish is run for.
const MAX_BLOCK_DIMENSION: usize = 1024;

/// A polished point and what certifies it.
pub(super) struct Polished {
    /// The polished variables, rotated, `d × N`.
    pub(super) w: Array2<f64>,
    /// `v = y − f(W̃)`.
    pub(super) residual: Array1<f64>,
    /// For each block of the support, its dual ratio with the face
    /// multipliers refined by [`refined_ratio`]; `None` outside the support.
    pub(super) ratios: Vec<Option<f64>>,
}

/// Which constraints of one block are held with equality: the first-layer
/// face of each `(i, j)` (`n × m1`) and the second-layer face of each `i`.
#[derive(Clone)]
struct Binding {
    orthant: Array2<bool>,
    half: Array1<bool>,
}

impl Binding {
    /// The faces ADMM's projected `U` lies on: zeroed pre-activations, and
    /// samples whose active pre-activations sum to zero.
    fn from_projection(p: &Problem, u: &Array2<f64>, block: usize) -> Self {
        let (n, m1, kk) = (u.nrows(), p.m1, block % p.k);
        let orthant = Array2::from_shape_fn((n, m1), |(i, j)| u[[i, block * m1 + j]] == 0.0);
        let half = Array1::from_shape_fn(n, |i| {
            let (mut sum, mut size) = (0.0, 0.0);
            for j in (0..m1).filter(|&j| p.active[[i, kk * m1 + j]] != 0.0) {
                sum += u[[i, block * m1 + j]];
                size += u[[i, block * m1 + j]].abs();
            }
            size > 0.0 && sum.abs() <= 1e-12 * size
        });
        Self { orthant, half }
    }

    /// How many faces are held.
    fn count(&self) -> usize {
        self.orthant
            .iter()
            .chain(&self.half)
            .filter(|held| **held)
            .count()
    }

    /// The faces the pre-activations `pre` (`n × m1`) of block `block` lie
    /// on, to [`NEAR_TOLERANCE`] of its largest pre-activation.
    fn near(p: &Problem, pre: &Array2<f64>, block: usize) -> Self {
        let (m1, kk) = (p.m1, block % p.k);
        let scale = pre.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let tolerance = NEAR_TOLERANCE * scale;
        let orthant = Array2::from_shape_fn(pre.dim(), |(i, j)| {
            p.sigma[[i, kk * m1 + j]] * pre[[i, j]] <= tolerance
        });
        let half = Array1::from_shape_fn(pre.nrows(), |i| {
            let sum: f64 = (0..m1)
                .filter(|&j| p.active[[i, kk * m1 + j]] != 0.0)
                .map(|j| pre[[i, j]])
                .sum();
            p.side[[i, kk]] * sum <= tolerance
        });
        Self { orthant, half }
    }

    /// Adds the faces whose constraints the pre-activations `pre` (`n × m1`)
    /// of block `block` violate; returns how many.
    fn add_violated(&mut self, p: &Problem, pre: &Array2<f64>, block: usize) -> usize {
        let (m1, kk) = (p.m1, block % p.k);
        let scale = pre.iter().map(|v| v.abs()).fold(0.0, f64::max);
        let tolerance = -VIOLATION_TOLERANCE * scale;
        let mut added = 0;
        for (i, row) in pre.rows().into_iter().enumerate() {
            let mut sum = 0.0;
            for j in 0..m1 {
                let c = kk * m1 + j;
                if p.sigma[[i, c]] * row[j] < tolerance && !self.orthant[[i, j]] {
                    self.orthant[[i, j]] = true;
                    added += 1;
                }
                sum += p.active[[i, c]] * row[j];
            }
            if p.side[[i, kk]] * sum < tolerance && !self.half[i] {
                self.half[i] = true;
                added += 1;
            }
        }
        added
    }
}

/// A constraint counts as violated below this fraction of the block's
/// largest pre-activation.
const VIOLATION_TOLERANCE: f64 = 1e-12;
/// The certificate's multipliers live on the constraints within this
/// fraction of the block's largest pre-activation.
const NEAR_TOLERANCE: f64 = 1e-9;
/// The polish gives up (until the next one) when its first Newton point
/// violates more than this fraction of the faces ADMM identified: the
/// faces are not settled yet, and the rounds would mostly add faces that
/// empty the support. On parkinsons (K = 8, m1 = 10) the first solves at
/// 100–800 iterations violate 67 %, 50 %, 20 % and 11 % of them, the one
/// at 1 600 (which converges) 1 %; on breast-cancer the useful polishes at
/// 6 400 and 12 800 iterations violate 10 %, so a tenth would be too strict.
const UNTRUSTED_FRACTION: f64 = 0.25;
/// Rounds of adding violated faces at most.
const ROUNDS: usize = 8;

/// One block of the support with its binding rows.
struct Face {
    /// `A_b`, `n × d·m1` (neuron-major: entry `(i, j·d + a)`).
    operator: Array2<f64>,
    /// `G_b`, the binding rows, `r × d·m1`.
    rows: Array2<f64>,
    /// Each row's sample, and its neuron (`None` for the second layer's).
    labels: Vec<(usize, Option<usize>)>,
    /// The eigenvectors of `G_bᵀG_b` with non-zero eigenvalue, and those.
    range: Array2<f64>,
    range_values: Array1<f64>,
    /// `N_b`: the rest (the null space of `G_b`).
    null: Array2<f64>,
}

/// Eigenvalues of `G_bᵀG_b` at most this fraction of the largest count as zero.
const NULL_TOLERANCE: f64 = 1e-10;

impl Face {
    fn new(p: &Problem, binding: &Binding, block: usize) -> Result<Self, pathreg_core::CoreError> {
        let (n, d) = p.x_rot.dim();
        let (k, m1) = (p.k, p.m1);
        let dim = d * m1;
        let kk = block % k;
        let mut rows: Vec<f64> = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let x = p.x_rot.row(i);
            for j in 0..m1 {
                let c = kk * m1 + j;
                if binding.orthant[[i, j]] {
                    labels.push((i, Some(j)));
                    let start = rows.len() + j * d;
                    rows.resize(rows.len() + dim, 0.0);
                    for a in 0..d {
                        rows[start + a] = p.sigma[[i, c]] * x[a];
                    }
                }
            }
            if binding.half[i] {
                labels.push((i, None));
                let base = rows.len();
                rows.resize(base + dim, 0.0);
                let side = p.side[[i, kk]];
                for j in (0..m1).filter(|&j| p.active[[i, kk * m1 + j]] != 0.0) {
                    for a in 0..d {
                        rows[base + j * d + a] = side * x[a];
                    }
                }
            }
        }
        let rows = Array2::from_shape_vec((rows.len() / dim, dim), rows)
            .expect("whole rows were appended");
        let (values, vectors) = symmetric_eigen(rows.t().dot(&rows).view())?;
        let top = values.iter().copied().fold(0.0, f64::max);
        let zero = NULL_TOLERANCE * top;
        let null_columns: Vec<usize> = (0..dim).filter(|&c| values[c] <= zero).collect();
        let range_columns: Vec<usize> = (0..dim).filter(|&c| values[c] > zero).collect();
        Ok(Self {
            operator: operator(p, block),
            rows,
            labels,
            range: vectors.select(Axis(1), &range_columns),
            range_values: values.select(Axis(0), &range_columns),
            null: vectors.select(Axis(1), &null_columns),
        })
    }

    /// Block `b`'s multipliers `η_b ∈ K_b*` (`n × m1`) for the residual `v`:
    /// the least-squares solution `λ = −G_b (G_bᵀG_b)⁺ A_bᵀv` of the
    /// stationarity on the faces, mapped to each sample's pre-activations
    /// and projected onto its dual cone (a sample's sum can lie in the dual
    /// cone even where single coefficients of `λ` are negative: its face
    /// rows are dependent).
    fn multipliers(&self, p: &Problem, b: usize, v: ArrayView1<f64>) -> Array2<f64> {
        let (n, m1, kk) = (p.x_rot.nrows(), p.m1, b % p.k);
        let mut eta = Array2::zeros((n, m1));
        if self.rows.nrows() == 0 {
            return eta;
        }
        let g = self.operator.t().dot(&v);
        let coordinates = self.range.t().dot(&g) / &self.range_values;
        let lambda = self.rows.dot(&self.range.dot(&coordinates));
        for (&(i, neuron), l) in self.labels.iter().zip(&lambda) {
            match neuron {
                Some(j) => eta[[i, j]] -= l * p.sigma[[i, kk * m1 + j]],
                None => {
                    for j in (0..m1).filter(|&j| p.active[[i, kk * m1 + j]] != 0.0) {
                        eta[[i, j]] -= l * p.side[[i, kk]];
                    }
                }
            }
        }
        project_dual_rows(p, b, &mut eta, &mut Vec::new());
        eta
    }
}

/// `Π_{K*}(w) = w + Π_K(−w)` (Moreau) for each sample's row of block `b`.
fn project_dual_rows(p: &Problem, b: usize, w: &mut Array2<f64>, events: &mut Vec<(f64, i8)>) {
    for (i, mut row) in w.rows_mut().into_iter().enumerate() {
        let mut negative: Vec<f64> = row.iter().map(|x| -x).collect();
        p.project_block(i, b, &mut negative, events);
        row.iter_mut().zip(&negative).for_each(|(x, m)| *x += m);
    }
}

/// `A_b`, `n × d·m1`: `(A_b)_{i, j·d + a} = C_{i, b·m1 + j} x̃_{ia}`.
fn operator(p: &Problem, b: usize) -> Array2<f64> {
    let (n, d) = p.x_rot.dim();
    let m1 = p.m1;
    Array2::from_shape_fn((n, d * m1), |(i, c)| {
        p.coefficients[[i, b * m1 + c / d]] * p.x_rot[[i, c % d]]
    })
}

/// Polishes `v` (rotated, `d × N`) on the faces `u` identifies, adding the
/// faces each Newton solve violates for up to [`ROUNDS`] rounds; `None`
/// when the support is empty, the blocks are too large, or a
/// factorization fails.
pub(super) fn polish(
    p: &Problem,
    v: &Array2<f64>,
    u: &Array2<f64>,
    y: ArrayView1<f64>,
) -> Option<Polished> {
    let (d, m1) = (p.x_rot.ncols(), p.m1);
    let dim = d * m1;
    let blocks = 2 * p.k;
    if dim > MAX_BLOCK_DIMENSION {
        return None;
    }
    let mut support: Vec<(usize, Binding, Array1<f64>)> = (0..blocks)
        .filter_map(|b| {
            let block = vectorize(v, b, d, m1);
            (block.iter().any(|x| *x != 0.0)).then(|| (b, Binding::from_projection(p, u, b), block))
        })
        .collect();
    // Each entry: block, binding, full vector, and its face once built
    // (rebuilt only when the binding grows).
    let mut faces: Vec<Option<Face>> = support.iter().map(|_| None).collect();
    let identified: usize = support.iter().map(|(_, binding, _)| binding.count()).sum();
    let mut previous = usize::MAX;
    for round in 0..ROUNDS {
        let built: Vec<Face> = support
            .par_iter()
            .zip(faces.par_iter_mut())
            .map(|((b, binding, _), face)| match face.take() {
                Some(face) => Ok(face),
                None => Face::new(p, binding, *b),
            })
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        let z = newton(
            p,
            &built,
            &support.iter().map(|s| &s.2).collect::<Vec<_>>(),
            y,
        )?;
        let mut added = 0;
        let (mut next, mut next_faces) = (Vec::new(), Vec::new());
        for ((entry, face), zb) in support.into_iter().zip(built).zip(z) {
            let Some(zb) = zb else { continue };
            let (b, mut binding, _) = entry;
            let block = face.null.dot(&zb);
            let pre = p.x_rot.dot(&unvectorize(&block, d, m1));
            let grown = binding.add_violated(p, &pre, b);
            added += grown;
            next.push((b, binding, block));
            next_faces.push((grown == 0).then_some(face));
        }
        // Unsettled faces: too many violated at first, or more added than
        // in the round before (the additions cascade instead of shrinking).
        if (round == 0 && added as f64 > UNTRUSTED_FRACTION * identified as f64) || added > previous
        {
            return None;
        }
        previous = added;
        (support, faces) = (next, next_faces);
        if added == 0 || support.is_empty() {
            break;
        }
    }
    if support.is_empty() {
        return None;
    }
    let mut w = Array2::zeros((d, p.columns()));
    let mut residual = y.to_owned();
    for (b, _, block) in &support {
        residual -= &operator(p, *b).dot(block);
        w.slice_mut(ndarray::s![.., b * m1..(b + 1) * m1])
            .assign(&unvectorize(block, d, m1));
    }
    let mut ratios = vec![None; blocks];
    let computed: Vec<f64> = support
        .par_iter()
        .map(|(b, _, block)| {
            let pre = p.x_rot.dot(&unvectorize(block, d, m1));
            Face::new(p, &Binding::near(p, &pre, *b), *b)
                .map(|f| {
                    let start = f.multipliers(p, *b, residual.view());
                    refined_ratio(p, *b, residual.view(), start.view())
                })
                .unwrap_or(f64::INFINITY)
        })
        .collect();
    for ((b, _, _), ratio) in support.iter().zip(computed) {
        ratios[*b] = Some(ratio);
    }
    Some(Polished {
        w,
        residual,
        ratios,
    })
}

/// Iterations at most of [`refined_ratio`]'s accelerated projected gradient.
const REFINE_ITERATIONS: usize = 2000;
/// [`refined_ratio`] stops when a window of this many iterations did not
/// shrink the ratio's excess over 1 below this fraction of itself (a
/// support block's ratio cannot fall below 1).
const STALL_WINDOW: usize = 50;
const STALL_SHRINK: f64 = 0.999;

/// Block `b`'s dual ratio `min ‖X̃ᵀ(C_b ⊙ v + η_b)‖_F / β'` over its
/// multipliers `η_b ∈ K_b*` (`n × m1`), approximately: FISTA from `start`
/// with the exact projection onto each sample's dual cone, stopped once the
/// ratio is at most 1 or stalls. Every iterate is dual feasible, so the
/// smallest ratio seen is valid whatever the accuracy.
pub(super) fn refined_ratio(
    p: &Problem,
    b: usize,
    v: ArrayView1<f64>,
    start: ndarray::ArrayView2<f64>,
) -> f64 {
    let m1 = p.m1;
    let shift =
        &p.coefficients.slice(ndarray::s![.., b * m1..(b + 1) * m1]) * &v.insert_axis(Axis(1));
    let lipschitz = p.eigenvalues.iter().copied().fold(0.0, f64::max);
    let ratio = |eta: &Array2<f64>| {
        let dual = p.x_rot.t().dot(&(&shift + eta));
        dual.iter().map(|x| x * x).sum::<f64>().sqrt() / p.weight
    };
    let mut eta = start.to_owned();
    let mut best = ratio(&eta);
    if best <= 1.0 || lipschitz <= 0.0 {
        return best;
    }
    let (mut previous, mut t) = (eta.clone(), 1.0f64);
    let mut events = Vec::new();
    let mut window_best = best;
    for iteration in 0..REFINE_ITERATIONS {
        let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        let point = &eta + &((&eta - &previous) * ((t - 1.0) / t_next));
        let gradient = p.x_rot.dot(&p.x_rot.t().dot(&(&shift + &point)));
        let mut next = &point - &(gradient / lipschitz);
        project_dual_rows(p, b, &mut next, &mut events);
        (previous, eta, t) = (eta, next, t_next);
        best = best.min(ratio(&eta));
        if best <= 1.0 {
            break;
        }
        if iteration % STALL_WINDOW == STALL_WINDOW - 1 {
            if best - 1.0 > STALL_SHRINK * (window_best - 1.0) {
                break;
            }
            window_best = best;
        }
    }
    best
}

/// Block `b` of `v` (`d × N`) as a neuron-major `d·m1` vector.
fn vectorize(v: &Array2<f64>, b: usize, d: usize, m1: usize) -> Array1<f64> {
    Array1::from_shape_fn(d * m1, |c| v[[c % d, b * m1 + c / d]])
}

/// A neuron-major `d·m1` vector as a `d × m1` block.
fn unvectorize(block: &Array1<f64>, d: usize, m1: usize) -> Array2<f64> {
    Array2::from_shape_fn((d, m1), |(a, j)| block[j * d + a])
}

/// Newton's method on the reduced problem over `faces`, from `start` (the
/// blocks' full vectors): each block's reduced variables, or `None` for a
/// block that left the support.
fn newton(
    p: &Problem,
    faces: &[Face],
    start: &[&Array1<f64>],
    y: ArrayView1<f64>,
) -> Option<Vec<Option<Array1<f64>>>> {
    let n = p.x_rot.nrows();
    let weight = p.weight;
    let all_reduced: Vec<Array2<f64>> = faces.par_iter().map(|f| f.operator.dot(&f.null)).collect();
    let mut live: Vec<usize> = (0..faces.len()).collect();
    let mut z: Vec<Array1<f64>> = faces
        .iter()
        .zip(start)
        .map(|(f, block)| f.null.t().dot(*block))
        .collect();
    let evaluate = |live: &[usize], z: &[Array1<f64>]| {
        let mut residual = y.to_owned();
        let mut penalty = 0.0;
        for &b in live {
            residual -= &all_reduced[b].dot(&z[b]);
            penalty += z[b].dot(&z[b]).sqrt();
        }
        (0.5 * residual.dot(&residual) + weight * penalty, residual)
    };
    for _ in 0..NEWTON_STEPS {
        // Blocks that the reduced problem shrinks to zero leave the support.
        let largest = live.iter().map(|&b| z[b].dot(&z[b])).fold(0.0, f64::max);
        live.retain(|&b| z[b].dot(&z[b]) > DROP * DROP * largest);
        if live.is_empty() {
            break;
        }
        let (value, residual) = evaluate(&live, &z);
        let reduced: Vec<&Array2<f64>> = live.iter().map(|&b| &all_reduced[b]).collect();
        let current: Vec<&Array1<f64>> = live.iter().map(|&b| &z[b]).collect();
        let norms: Vec<f64> = current.iter().map(|zb| zb.dot(*zb).sqrt()).collect();
        let gradients: Vec<Array1<f64>> = reduced
            .iter()
            .zip(&current)
            .zip(&norms)
            .map(|((m, zb), norm)| *zb * (weight / norm) - m.t().dot(&residual))
            .collect();
        let gradient_norm = gradients.iter().map(|g| g.dot(g)).sum::<f64>().sqrt();
        if gradient_norm <= GRADIENT_TOLERANCE * weight {
            break;
        }
        let step = newton_step(&reduced, &current, &norms, &gradients, weight, n)?;
        let slope: f64 = step.iter().zip(&gradients).map(|(s, g)| s.dot(g)).sum();
        if slope.is_nan() || slope >= 0.0 {
            break;
        }
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..40 {
            let mut trial = z.clone();
            for (&b, s) in live.iter().zip(&step) {
                trial[b].scaled_add(t, s);
            }
            let alive = live.iter().all(|&b| trial[b].dot(&trial[b]) > 0.0);
            if alive && evaluate(&live, &trial).0 <= value + 1e-4 * t * slope {
                z = trial;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    let mut out: Vec<Option<Array1<f64>>> = vec![None; faces.len()];
    for b in live {
        out[b] = Some(z[b].clone());
    }
    Some(out)
}

/// A block whose norm falls below this fraction of the largest leaves the
/// support (the reduced problem is not smooth at zero).
const DROP: f64 = 1e-4;
/// Newton steps at most.
const NEWTON_STEPS: usize = 50;
/// Stop when the reduced gradient's norm is below this fraction of `β'`.
const GRADIENT_TOLERANCE: f64 = 1e-11;

/// The Newton direction `−H⁻¹g` for `H = Λ + MᵀM − Σ_b a_b ẑ_b ẑ_bᵀ`,
/// `Λ = diag(a_b I)`, by Woodbury with `U = [Mᵀ | Ẑ]`: the capacitance is
/// `[[P, Q], [Qᵀ, 0]]` with `P = I + Σ_b M_b M_bᵀ/a_b`, `Q_b = M_b ẑ_b/a_b`.
fn newton_step(
    reduced: &[&Array2<f64>],
    z: &[&Array1<f64>],
    norms: &[f64],
    gradients: &[Array1<f64>],
    weight: f64,
    n: usize,
) -> Option<Vec<Array1<f64>>> {
    let count = z.len();
    let scales: Vec<f64> = norms.iter().map(|norm| weight / norm).collect();
    let directions: Vec<Array1<f64>> = z.iter().zip(norms).map(|(zb, norm)| *zb / *norm).collect();
    let mut capacitance = Array2::<f64>::eye(n);
    let mut q = Array2::<f64>::zeros((n, count));
    let mut r1 = Array1::<f64>::zeros(n);
    let mut r2 = Array1::<f64>::zeros(count);
    for b in 0..count {
        let (m, a) = (reduced[b], scales[b]);
        capacitance.scaled_add(1.0 / a, &m.dot(&m.t()));
        q.column_mut(b).assign(&(m.dot(&directions[b]) / a));
        r1.scaled_add(1.0 / a, &m.dot(&gradients[b]));
        r2[b] = directions[b].dot(&gradients[b]) / a;
    }
    let factor = Cholesky::new(capacitance.view()).ok()?;
    let solve = |rhs: Array1<f64>| {
        let mut out = rhs;
        factor.solve_in_place(&mut out);
        out
    };
    let mut p_inv_q = Array2::<f64>::zeros((n, count));
    for b in 0..count {
        p_inv_q.column_mut(b).assign(&solve(q.column(b).to_owned()));
    }
    let schur = q.t().dot(&p_inv_q);
    let mut radial = q.t().dot(&solve(r1.clone())) - &r2;
    Cholesky::new(schur.view())
        .ok()?
        .solve_in_place(&mut radial);
    let sample = solve(&r1 - &q.dot(&radial));
    Some(
        (0..count)
            .map(|b| {
                let correction = reduced[b].t().dot(&sample) + &directions[b] * radial[b];
                (&correction - &gradients[b]) / scales[b]
            })
            .collect(),
    )
}
