//! The convex model over `K` *sampled* arrangements (Remark 3.3 of [29], used
//! for Table 3 and Figure 5), in the unconstrained form (11) of Appendix A.1.
//!
//! # The arrangements
//!
//! Arrangement `k` is defined by the gate vectors of a standard normal network,
//! `w1_kj ∈ R^d` and `w2_kj = I_kj |w2_kj|` (`j = 1..m1`). For any data `X`
//! (training *or* test) its masks are recomputed from the stored gates:
//!
//! ```text
//! D1_kj = 1[X w1_kj > 0],     D2_k = 1[Σ_j w2_kj (X w1_kj)+ > 0].
//! ```
//!
//! # The program
//!
//! We follow the convention of [`crate::convex`] (program (21): the sign
//! pattern inside the first-layer constraint, `A_k z = D2_k Σ_j D1_kj X z_j`).
//! With `β' = β/√m2` and variables `Z_k = [z_k1 … z_km1]`, `Z'_k` (`d × m1`):
//!
//! ```text
//! (11)  min  L( Σ_k A_k (Z_k − Z'_k), y ) + β' Σ_k (‖Z_k‖_F + ‖Z'_k‖_F) + λ (h(Z) + h(Z'))
//!
//!       h(Z) = Σ_{k,j} 1ᵀ( −(2 D1_kj − I) X (I_kj z_kj) )+      (first ReLU layer)
//!            + Σ_k     1ᵀ( −(2 D2_k − I) Σ_j D1_kj X z_kj )+     (second ReLU layer)
//! ```
//!
//! `h` sums the absolute constraint violations of the cones `C_k` of (21), so
//! `h(Z) = 0` iff every `Z_k ∈ C_k`. (The paper's (11) writes the sign pattern
//! in the second-layer term and `X̃(z' − z)`; the substitution `z_j ← I_j z_j`
//! and swapping the names `z ↔ z'` map one form onto the other.)
//!
//! # Storage
//!
//! The variables are stored *packed* ([`SampledVariables`]): one `d × 2Km1`
//! matrix `W = [Z | Z']` whose column `k·m1 + j` is `z_kj` and column
//! `Km1 + k·m1 + j` is `z'_kj`. Then every evaluation is one GEMM
//! `U = X W` (`n × 2Km1`), a masked elementwise pass, and — for the gradient —
//! one GEMM `Xᵀ B`. The `n × (d·m1·K)` matrix X̃ is never formed.
//!
//! # Proposition 1
//!
//! [`to_convex_solution`] turns `(Z, Z')` into a [`ConvexSolution`] over the
//! triples the gates induce on the training data, so Proposition 1's map
//! ([`ConvexSolution::to_network`]) is reused unchanged. When `h(Z) + h(Z') = 0`
//! the mapped network predicts exactly like the convex model on that data;
//! otherwise `Σ_i |f_net(x_i) − f_convex(x_i)| ≤ h(Z) + h(Z')` (each violated
//! first- or second-layer term moves one output by at most its violation).

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, Axis, s};
use rand::Rng;

use crate::CoreError;
use crate::arrangement::{Mask, NeuronPattern, Triple};
use crate::convex::{ConvexSolution, group_weight};
use crate::loss::Loss;
use crate::network::{ParallelNetwork, standard_normal};

/// `K` sampled arrangements, stored as the gate vectors that define them.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledArrangements {
    /// `K × d × m1`.
    w1: Array3<f64>,
    /// `I_kj = sign(w2_kj)`, `K × m1` (`true` for +1).
    signs: Array2<bool>,
    /// `|w2_kj|`, `K × m1`.
    w2_abs: Array2<f64>,
    /// The gates packed as `d × Km1` (column `k·m1 + j` is `w1_kj`).
    gates: Array2<f64>,
}

impl SampledArrangements {
    /// Arrangements from gate weights `w1` (`K × d × m1`), sign pattern
    /// `signs` (`K × m1`) and magnitudes `w2_abs ≥ 0` (`K × m1`).
    pub fn new(
        w1: Array3<f64>,
        signs: Array2<bool>,
        w2_abs: Array2<f64>,
    ) -> Result<Self, CoreError> {
        let (k, d, m1) = w1.dim();
        if k == 0 || d == 0 || m1 == 0 {
            return Err(CoreError::Shape(format!(
                "sampled arrangements need K, d, m1 ≥ 1, got {:?}",
                w1.dim()
            )));
        }
        if signs.dim() != (k, m1) || w2_abs.dim() != (k, m1) {
            return Err(CoreError::Shape(format!(
                "gates W1 {:?} but signs {:?} and |w2| {:?} (expected {:?})",
                w1.dim(),
                signs.dim(),
                w2_abs.dim(),
                (k, m1)
            )));
        }
        if w1.iter().any(|v| !v.is_finite()) || w2_abs.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(CoreError::Arrangement(
                "gate weights must be finite and |w2| non-negative".into(),
            ));
        }
        let mut gates = Array2::zeros((d, k * m1));
        for kk in 0..k {
            gates
                .slice_mut(s![.., kk * m1..(kk + 1) * m1])
                .assign(&w1.index_axis(Axis(0), kk));
        }
        Ok(Self {
            w1,
            signs,
            w2_abs,
            gates,
        })
    }

    /// Arrangements read off the first two layers of gate networks:
    /// `w1` is `K × d × m1`, `w2` (signed) is `K × m1`.
    pub fn from_gates(w1: Array3<f64>, w2: Array2<f64>) -> Result<Self, CoreError> {
        let signs = w2.mapv(|v| v > 0.0);
        let w2_abs = w2.mapv(f64::abs);
        Self::new(w1, signs, w2_abs)
    }

    /// `K` arrangements of i.i.d. standard normal networks, drawn per
    /// arrangement in the order of [`crate::ArrangementSet::sample`] (`W1`
    /// row-major `d × m1`, then `w2`), so both read the same triples off the
    /// same seeded generator.
    pub fn sample<R: Rng + ?Sized>(
        rng: &mut R,
        k: usize,
        d: usize,
        m1: usize,
    ) -> Result<Self, CoreError> {
        let mut w1 = Array3::zeros((k, d, m1));
        let mut w2 = Array2::zeros((k, m1));
        for kk in 0..k {
            for v in w1.index_axis_mut(Axis(0), kk).iter_mut() {
                *v = standard_normal(rng);
            }
            for v in w2.row_mut(kk).iter_mut() {
                *v = standard_normal(rng);
            }
        }
        Self::from_gates(w1, w2)
    }

    /// Number of arrangements K.
    pub fn k(&self) -> usize {
        self.w1.dim().0
    }
    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.w1.dim().1
    }
    /// First hidden width m1.
    pub fn m1(&self) -> usize {
        self.w1.dim().2
    }
    /// Gate weights, `K × d × m1`.
    pub fn w1(&self) -> &Array3<f64> {
        &self.w1
    }
    /// Sign pattern `I_kj > 0`, `K × m1`.
    pub fn signs(&self) -> &Array2<bool> {
        &self.signs
    }
    /// `|w2_kj|`, `K × m1`.
    pub fn w2_abs(&self) -> &Array2<f64> {
        &self.w2_abs
    }

    /// The masks `D1_kj`, `D2_k` on data `x` (see the module documentation).
    pub fn masks(&self, x: ArrayView2<f64>) -> Result<Masks, CoreError> {
        let (n, d) = x.dim();
        if d != self.d() {
            return Err(CoreError::Shape(format!(
                "data has {d} features but the arrangements expect {}",
                self.d()
            )));
        }
        let (k, m1) = (self.k(), self.m1());
        let pre1 = x.dot(&self.gates);
        let d1 = pre1.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 });
        let mut d2 = Array2::zeros((n, k));
        for (i, row) in pre1.rows().into_iter().enumerate() {
            let row = row.to_slice().unwrap_or(&[]);
            for kk in 0..k {
                let mut pre2 = 0.0;
                for j in 0..m1 {
                    let w2 = if self.signs[[kk, j]] {
                        self.w2_abs[[kk, j]]
                    } else {
                        -self.w2_abs[[kk, j]]
                    };
                    pre2 += w2 * row[kk * m1 + j].max(0.0);
                }
                d2[[i, kk]] = if pre2 > 0.0 { 1.0 } else { 0.0 };
            }
        }
        let signs = Array1::from_iter(self.signs.iter().map(|p| if *p { 1.0 } else { -1.0 }));
        Ok(Masks {
            d1,
            d2,
            signs,
            k,
            m1,
        })
    }

    /// The canonical triples (one per arrangement, duplicates kept) on `x`.
    pub fn triples(&self, x: ArrayView2<f64>) -> Result<Vec<Triple>, CoreError> {
        let masks = self.masks(x)?;
        Ok((0..self.k())
            .map(|kk| masks.triple(kk, &self.signs).0)
            .collect())
    }
}

/// The masks of [`SampledArrangements`] on one data matrix, as 0/1 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Masks {
    /// `n × Km1`: column `k·m1 + j` is `diag(D1_kj)`.
    d1: Array2<f64>,
    /// `n × K`: column `k` is `diag(D2_k)`.
    d2: Array2<f64>,
    /// `I_kj` as ±1, length `Km1`.
    signs: Array1<f64>,
    k: usize,
    m1: usize,
}

impl Masks {
    /// Number of samples n.
    pub fn n(&self) -> usize {
        self.d1.nrows()
    }
    /// `D1` as 0/1, `n × Km1`.
    pub fn d1(&self) -> &Array2<f64> {
        &self.d1
    }
    /// `D2` as 0/1, `n × K`.
    pub fn d2(&self) -> &Array2<f64> {
        &self.d2
    }
    /// The masks of the samples `rows` (a mini-batch).
    pub fn select(&self, rows: &[usize]) -> Masks {
        Masks {
            d1: self.d1.select(Axis(0), rows),
            d2: self.d2.select(Axis(0), rows),
            signs: self.signs.clone(),
            k: self.k,
            m1: self.m1,
        }
    }

    /// Arrangement `kk` as a canonical [`Triple`] and the permutation that
    /// sorts its neurons (`order[p]` is the original neuron at position `p`).
    fn triple(&self, kk: usize, signs: &Array2<bool>) -> (Triple, Vec<usize>) {
        let n = self.n();
        let m1 = self.m1;
        let neurons: Vec<NeuronPattern> = (0..m1)
            .map(|j| NeuronPattern {
                d1: Mask::from_bools(self.d1.column(kk * m1 + j).iter().map(|v| *v > 0.0), n),
                positive: signs[[kk, j]],
            })
            .collect();
        let mut order: Vec<usize> = (0..m1).collect();
        order.sort_by(|a, b| neurons[*a].cmp(&neurons[*b]));
        let d2 = Mask::from_bools(self.d2.column(kk).iter().map(|v| *v > 0.0), n);
        (Triple::new(neurons, d2, n), order)
    }
}

/// The variables `(Z, Z')` of (11), packed as `W = [Z | Z']` (`d × 2Km1`; see
/// the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub struct SampledVariables {
    w: Array2<f64>,
    k: usize,
    m1: usize,
}

impl SampledVariables {
    /// `Z = Z' = 0`.
    pub fn zeros(k: usize, d: usize, m1: usize) -> Self {
        Self {
            w: Array2::zeros((d, 2 * k * m1)),
            k,
            m1,
        }
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
        let mut out = Self::zeros(k, d, m1);
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

    fn block_mut(&mut self, kk: usize, prime: bool) -> ndarray::ArrayViewMut2<'_, f64> {
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

fn check(x: ArrayView2<f64>, masks: &Masks, vars: &SampledVariables) -> Result<(), CoreError> {
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
struct Pass {
    f: Array1<f64>,
    /// Second-layer pre-activations `Σ_j D1_kj (X z_kj)_i`, `n × 2K`.
    pre2: Array2<f64>,
    violation: f64,
}

fn forward_pass(u: &Array2<f64>, masks: &Masks, penalty: Option<Penalty>) -> Pass {
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

fn check_labels(x: ArrayView2<f64>, y: ArrayView1<f64>) -> Result<(), CoreError> {
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

/// Number of samples with `sign(f_i) = y_i` for labels ±1 (`f_i > 0` counts
/// as +1, otherwise −1).
pub fn hits(f: ArrayView1<f64>, y: ArrayView1<f64>) -> usize {
    f.iter()
        .zip(y)
        .filter(|(fi, yi)| (if **fi > 0.0 { 1.0 } else { -1.0 }) == **yi)
        .count()
}

/// Fraction of samples with `sign(f_i) = y_i` for labels ±1 (see [`hits`]).
pub fn accuracy(f: ArrayView1<f64>, y: ArrayView1<f64>) -> f64 {
    if f.is_empty() {
        return 0.0;
    }
    hits(f, y) as f64 / f.len() as f64
}

/// Accuracy of the convex model on `(x, y)` (masks recomputed from the gates).
pub fn model_accuracy(
    arrangements: &SampledArrangements,
    vars: &SampledVariables,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
) -> Result<f64, CoreError> {
    let masks = arrangements.masks(x)?;
    check_labels(x, y)?;
    Ok(accuracy(predict(x, &masks, vars)?.view(), y))
}

/// Accuracy of a network on `(x, y)` for labels ±1.
pub fn network_accuracy(
    network: &ParallelNetwork,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
) -> Result<f64, CoreError> {
    check_labels(x, y)?;
    Ok(accuracy(network.predict(x)?.view(), y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrangement::ArrangementSet;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn problem(
        seed: u64,
        n: usize,
        d: usize,
        k: usize,
        m1: usize,
    ) -> (
        SampledArrangements,
        Array2<f64>,
        Array1<f64>,
        SampledVariables,
    ) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let arr = SampledArrangements::sample(&mut rng, k, d, m1).unwrap();
        let x = Array2::from_shape_fn((n, d), |_| standard_normal(&mut rng));
        let y = Array1::from_shape_fn(n, |_| {
            if standard_normal(&mut rng) > 0.0 {
                1.0
            } else {
                -1.0
            }
        });
        let w = Array2::from_shape_fn((d, 2 * k * m1), |_| standard_normal(&mut rng));
        (arr, x, y, SampledVariables::from_packed(w, k, m1).unwrap())
    }

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

    #[test]
    fn sampling_reads_the_same_triples_as_arrangement_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = Array2::from_shape_fn((8, 3), |_| standard_normal(&mut rng));
        let arr = SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(9), 6, 3, 2).unwrap();
        let set =
            ArrangementSet::sample(x.view(), 2, 6, &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
        let mut ours = arr.triples(x.view()).unwrap();
        ours.sort();
        ours.dedup();
        assert_eq!(ours, set.triples());
    }

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
        let mut feasible = SampledVariables::zeros(k, d, m1);
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

    #[test]
    fn masks_reject_wrong_dimension() {
        let (arr, _, _, _) = problem(12, 3, 3, 2, 2);
        assert!(arr.masks(Array2::zeros((3, 4)).view()).is_err());
        assert!(
            SampledArrangements::new(
                Array3::zeros((2, 3, 2)),
                Array2::from_elem((2, 3), true),
                Array2::zeros((2, 2))
            )
            .is_err()
        );
    }

    #[test]
    fn accuracy_counts_signs() {
        let f = Array1::from(vec![0.5, -0.1, 0.0, 2.0]);
        let y = Array1::from(vec![1.0, -1.0, 1.0, -1.0]);
        assert_eq!(accuracy(f.view(), y.view()), 0.5);
    }
}
