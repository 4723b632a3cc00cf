//! The unconstrained convex program (11) with `C` outputs (Appendix A.11),
//! in float32, over sampled arrangements whose masks are shared by all
//! classes.

use ndarray::{Array2, ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

use super::data::{ImageSet, argmax_rows};
use super::masks::Masks;
use super::model::{BatchValue, Model};
use crate::CoreError;
use crate::convex::group_weight;
use crate::gemm::matmul;
use crate::limits::{array_bytes, check_allocation, total_bytes};
use crate::unconstrained::SampledArrangements;

/// Rows of a batch handled by one task of the masked passes.
const ROW_BLOCK: usize = 16;

/// Which blocks of `(Z, Z')` one group norm spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// One group per arrangement and sign, over its whole `d × m1 × C` block
    /// (`‖Z_k‖_F` over all classes): the vector-output program.
    Joint,
    /// One group per arrangement, sign and class (`‖Z_kc‖_F`): the program
    /// separates into `C` scalar-output programs (11), one per class against
    /// the rest, on shared masks.
    OneVsRest,
}

/// Program (11) with `C` outputs over `K` sampled arrangements (see the
/// [module documentation](super)). The variables are one `d × 2KCm1`
/// matrix `W = [Z | Z']`; column `((s·K + k)·C + c)·m1 + j` is `z^s_kjc`
/// (`s = 0` for `Z`, `1` for `Z'`).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvexModel {
    d: usize,
    k: usize,
    m1: usize,
    classes: usize,
    gates: Array2<f32>,
    w2: Array2<f32>,
    signs: Vec<f32>,
    grouping: Grouping,
    group_weight: f64,
    lambda: f64,
}

impl ConvexModel {
    /// The program over `arrangements` for `classes` outputs, with group
    /// weight `β/√m2` and violation weight `λ`.
    pub fn new(
        arrangements: &SampledArrangements,
        classes: usize,
        grouping: Grouping,
        beta: f64,
        m2: usize,
        lambda: f64,
    ) -> Result<Self, CoreError> {
        let (k, d, m1) = (arrangements.k(), arrangements.d(), arrangements.m1());
        if classes == 0 || !(beta >= 0.0 && lambda >= 0.0 && beta.is_finite() && lambda.is_finite())
        {
            return Err(CoreError::Convex(format!(
                "need C ≥ 1, finite β ≥ 0 and λ ≥ 0, got C = {classes}, β = {beta}, λ = {lambda}"
            )));
        }
        check_allocation(
            || {
                format!(
                    "the variables of (11) for {classes} classes over {k} arrangements of {m1} gates in R^{d}"
                )
            },
            Self::bytes(d, k, m1, classes),
        )?;
        let mut gates = Array2::zeros((d, k * m1));
        for kk in 0..k {
            for j in 0..m1 {
                for r in 0..d {
                    gates[[r, kk * m1 + j]] = arrangements.w1()[[kk, r, j]] as f32;
                }
            }
        }
        let w2 = Array2::from_shape_fn((k, m1), |(kk, j)| {
            let magnitude = arrangements.w2_abs()[[kk, j]] as f32;
            if arrangements.signs()[[kk, j]] {
                magnitude
            } else {
                -magnitude
            }
        });
        let signs = arrangements
            .signs()
            .iter()
            .map(|&p| if p { 1.0 } else { -1.0 })
            .collect();
        Ok(Self {
            d,
            k,
            m1,
            classes,
            gates,
            w2,
            signs,
            grouping,
            group_weight: group_weight(beta, m2.max(1)),
            lambda,
        })
    }

    /// Bytes of the variables `W` (float32, `d × 2KCm1`).
    pub fn bytes(d: usize, k: usize, m1: usize, classes: usize) -> u64 {
        array_bytes(4, &[d, 2, k, classes, m1])
    }

    /// Number of arrangements `K`.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Gates per arrangement `m1`.
    pub fn m1(&self) -> usize {
        self.m1
    }
    /// Outputs `C`.
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// Input dimension `d`.
    pub fn d(&self) -> usize {
        self.d
    }
    /// The grouping of the norms.
    pub fn grouping(&self) -> Grouping {
        self.grouping
    }
    /// `I_kj = sign(w2_kj)`, flattened `k·m1 + j`.
    pub fn signs(&self) -> &[f32] {
        &self.signs
    }

    /// Columns of `W`.
    pub fn columns(&self) -> usize {
        2 * self.k * self.classes * self.m1
    }

    /// The column of `z^s_kjc`.
    pub fn column(&self, s: usize, kk: usize, c: usize, j: usize) -> usize {
        ((s * self.k + kk) * self.classes + c) * self.m1 + j
    }

    /// Columns per group norm.
    fn group_width(&self) -> usize {
        match self.grouping {
            Grouping::Joint => self.classes * self.m1,
            Grouping::OneVsRest => self.m1,
        }
    }

    /// `W` as a `d × 2KCm1` view of the flat parameters.
    pub fn variables<'a>(&self, params: &'a [f32]) -> ArrayView2<'a, f32> {
        ArrayView2::from_shape((self.d, self.columns()), params).expect("parameter length")
    }

    /// The norm of every group, `Σ` over its columns and all `d` rows.
    pub fn group_norms(&self, params: &[f32]) -> Vec<f64> {
        let w = self.variables(params);
        let width = self.group_width();
        (0..self.columns() / width)
            .into_par_iter()
            .map(|g| {
                let mut sum = 0.0f64;
                for row in w.rows() {
                    let block = &row.to_slice().expect("row-major")[g * width..(g + 1) * width];
                    sum += block.iter().map(|v| f64::from(v * v)).sum::<f64>();
                }
                sum.sqrt()
            })
            .collect()
    }

    /// The masked pass over `U = X_b W` (rows of the batch): outputs, each
    /// row's violation `h_i`, the batch's sums and, when `gradient` is set,
    /// `U` overwritten by `B = ∂(batch data term)/∂U` (scaled by `1/b`).
    fn masked_pass(
        &self,
        mut u: ArrayViewMut2<f32>,
        set: &ImageSet,
        masks: &Masks,
        rows: &[usize],
        gradient: bool,
    ) -> (Array2<f32>, Vec<f64>, BatchValue) {
        let (k, m1, classes) = (self.k, self.m1, self.classes);
        let b = rows.len();
        let scale = 1.0 / b as f32;
        let loss_scale = 2.0 / (b * classes) as f32;
        let lambda = self.lambda as f32;
        let mut outputs = Array2::<f32>::zeros((b, classes));
        let mut violations = vec![0.0f64; b];
        let tasks: Vec<_> = u
            .axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .zip(outputs.axis_chunks_iter_mut(Axis(0), ROW_BLOCK))
            .zip(rows.chunks(ROW_BLOCK).zip(violations.chunks_mut(ROW_BLOCK)))
            .collect();
        let value = tasks
            .into_par_iter()
            .map(
                |((mut u_block, mut f_block), (block_rows, block_violations))| {
                    let mut d1 = vec![0.0f32; k * m1];
                    let mut side1 = vec![0.0f32; k * m1];
                    let mut d2 = vec![0.0f32; k];
                    let mut pre2 = vec![0.0f32; 2 * k * classes];
                    let mut sum = BatchValue::default();
                    for (((mut u_row, mut f_row), &r), row_violation) in u_block
                        .rows_mut()
                        .into_iter()
                        .zip(f_block.rows_mut())
                        .zip(block_rows)
                        .zip(block_violations.iter_mut())
                    {
                        masks.expand(r, &mut d1, &mut d2);
                        for ((s, d), sign) in side1.iter_mut().zip(&d1).zip(&self.signs) {
                            *s = (2.0 * d - 1.0) * sign;
                        }
                        let u_row = u_row.as_slice_mut().expect("row-major");
                        let label = set.labels()[r];
                        let mut violation = 0.0f64;
                        for s in 0..2 {
                            let sign_s = if s == 0 { 1.0 } else { -1.0 };
                            for kk in 0..k {
                                let gates = kk * m1..(kk + 1) * m1;
                                for c in 0..classes {
                                    let col = self.column(s, kk, c, 0);
                                    let (p2, v1) = masked_sums(
                                        &u_row[col..col + m1],
                                        &d1[gates.clone()],
                                        &side1[gates.clone()],
                                    );
                                    pre2[(s * k + kk) * classes + c] = p2;
                                    f_row[c] += sign_s * d2[kk] * p2;
                                    let side2 = 2.0 * d2[kk] - 1.0;
                                    violation += f64::from(v1) + f64::from((-side2 * p2).max(0.0));
                                }
                            }
                        }
                        *row_violation = violation;
                        let mut loss = 0.0f64;
                        for (c, f) in f_row.iter().enumerate() {
                            let residual = f - f32::from(u8::from(c == label));
                            loss += f64::from(residual * residual);
                        }
                        sum = sum.plus(BatchValue {
                            loss,
                            violation,
                            correct: usize::from(
                                argmax_rows(f_row.view().insert_axis(Axis(0)))[0] == label,
                            ),
                        });
                        if !gradient {
                            continue;
                        }
                        for s in 0..2 {
                            let sign_s = if s == 0 { 1.0 } else { -1.0 };
                            for kk in 0..k {
                                let side2 = 2.0 * d2[kk] - 1.0;
                                let gates = kk * m1..(kk + 1) * m1;
                                for c in 0..classes {
                                    let residual = f_row[c] - f32::from(u8::from(c == label));
                                    let p2 = pre2[(s * k + kk) * classes + c];
                                    let slope2 = if -side2 * p2 > 0.0 { 1.0 } else { 0.0 };
                                    let c2 = loss_scale * sign_s * d2[kk] * residual
                                        - scale * lambda * side2 * slope2;
                                    let col = self.column(s, kk, c, 0);
                                    for ((v, d), side) in u_row[col..col + m1]
                                        .iter_mut()
                                        .zip(&d1[gates.clone()])
                                        .zip(&side1[gates.clone()])
                                    {
                                        let slope1 = if -side * *v > 0.0 { 1.0 } else { 0.0 };
                                        *v = d * c2 - scale * lambda * side * slope1;
                                    }
                                }
                            }
                        }
                    }
                    sum
                },
            )
            .collect::<Vec<_>>()
            .into_iter()
            .fold(BatchValue::default(), BatchValue::plus);
        (outputs, violations, value)
    }

    /// The outputs (`b × C`) and each row's violation `h_i` on `rows`.
    pub fn outputs_and_violations(
        &self,
        params: &[f32],
        set: &ImageSet,
        masks: &Masks,
        rows: &[usize],
    ) -> (Array2<f32>, Vec<f64>) {
        let xb = set.gather(rows);
        let mut u = self.products(params, xb.view());
        let (f, violations, _) = self.masked_pass(u.view_mut(), set, masks, rows, false);
        (f, violations)
    }

    /// Every block's term `D2_k(i) Σ_j D1_kj(i) x_iᵀ z^s_kjc` on `rows`
    /// (`b × 2KC`, column `(s·K + k)·C + c`): the gated second-layer units
    /// of (11), which output `c` sums with sign `(−1)^s`. Where the block's
    /// constraints hold on `x_i` this is `√a` times the second hidden unit
    /// of the block's sub-network in [`super::to_network`]
    /// (`a = ‖Z^s_kc‖_F`).
    pub fn block_outputs(
        &self,
        params: &[f32],
        set: &ImageSet,
        masks: &Masks,
        rows: &[usize],
    ) -> Array2<f32> {
        let (k, m1, classes) = (self.k, self.m1, self.classes);
        let xb = set.gather(rows);
        let u = self.products(params, xb.view());
        let mut out = Array2::<f32>::zeros((rows.len(), 2 * k * classes));
        out.axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .into_par_iter()
            .zip(u.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
            .zip(rows.par_chunks(ROW_BLOCK))
            .for_each(|((mut out_block, u_block), block_rows)| {
                let mut d1 = vec![0.0f32; k * m1];
                let mut d2 = vec![0.0f32; k];
                for ((mut out_row, u_row), &r) in out_block
                    .rows_mut()
                    .into_iter()
                    .zip(u_block.rows())
                    .zip(block_rows)
                {
                    masks.expand(r, &mut d1, &mut d2);
                    let u_row = u_row.as_slice().expect("row-major");
                    for s in 0..2 {
                        for kk in 0..k {
                            let gates = &d1[kk * m1..(kk + 1) * m1];
                            for c in 0..classes {
                                let col = self.column(s, kk, c, 0);
                                let p2: f32 = u_row[col..col + m1]
                                    .iter()
                                    .zip(gates)
                                    .map(|(u, d)| u * d)
                                    .sum();
                                out_row[(s * k + kk) * classes + c] = d2[kk] * p2;
                            }
                        }
                    }
                }
            });
        out
    }

    /// `U = X_b W` for the samples `xb` (the trainer bounds its memory,
    /// [`Self::batch_bytes`], before training).
    fn products(&self, params: &[f32], xb: ArrayView2<f32>) -> Array2<f32> {
        let mut u = Array2::zeros((xb.nrows(), self.columns()));
        matmul(xb, self.variables(params), u.view_mut(), false);
        u
    }

    /// Bytes one batch of `b` rows needs besides the parameters (`U`).
    pub fn batch_bytes(&self, b: usize) -> u64 {
        total_bytes(&[
            array_bytes(4, &[b, self.columns()]),
            array_bytes(4, &[b, self.d]),
        ])
    }

    /// The masks of the arrangements on `x`.
    pub fn masks(&self, x: ArrayView2<f32>) -> Result<Masks, CoreError> {
        Masks::compute(x, self.gates.view(), self.w2.view())
    }
}

/// Over one group `(s, k, c)` of one row: `Σ_j D1_j u_j` and the first-layer
/// violation `Σ_j (−side_j u_j)+`, in eight interleaved partial sums (fixed
/// order, so reproducible, and vectorizable).
#[inline]
fn masked_sums(u: &[f32], d1: &[f32], side: &[f32]) -> (f32, f32) {
    const LANES: usize = 8;
    let mut p = [0.0f32; LANES];
    let mut v = [0.0f32; LANES];
    let whole = u.len() / LANES * LANES;
    for ((uc, dc), sc) in u[..whole]
        .chunks_exact(LANES)
        .zip(d1[..whole].chunks_exact(LANES))
        .zip(side[..whole].chunks_exact(LANES))
    {
        for l in 0..LANES {
            p[l] += dc[l] * uc[l];
            v[l] += (-sc[l] * uc[l]).max(0.0);
        }
    }
    for ((uv, dv), sv) in u[whole..].iter().zip(&d1[whole..]).zip(&side[whole..]) {
        p[0] += dv * uv;
        v[0] += (-sv * uv).max(0.0);
    }
    (p.iter().sum(), v.iter().sum())
}

impl Model for ConvexModel {
    type Prepared = Masks;

    fn parameters(&self) -> usize {
        self.d * self.columns()
    }

    fn prepare(&self, set: &ImageSet) -> Result<Masks, CoreError> {
        if set.d() != self.d || set.classes() != self.classes {
            return Err(CoreError::Shape(format!(
                "data with d = {}, C = {} for (11) with d = {}, C = {}",
                set.d(),
                set.classes(),
                self.d,
                self.classes
            )));
        }
        self.masks(set.x())
    }

    fn data_gradient(
        &self,
        params: &[f32],
        set: &ImageSet,
        masks: &Masks,
        rows: &[usize],
        grad: &mut [f32],
    ) -> BatchValue {
        let xb = set.gather(rows);
        let mut u = self.products(params, xb.view());
        let (_, _, value) = self.masked_pass(u.view_mut(), set, masks, rows, true);
        let grad =
            ArrayViewMut2::from_shape((self.d, self.columns()), grad).expect("gradient length");
        matmul(xb.t(), u.view(), grad, false);
        value
    }

    fn outputs(
        &self,
        params: &[f32],
        set: &ImageSet,
        masks: &Masks,
        rows: &[usize],
    ) -> (Array2<f32>, BatchValue) {
        let xb = set.gather(rows);
        let mut u = self.products(params, xb.view());
        let (f, _, value) = self.masked_pass(u.view_mut(), set, masks, rows, false);
        (f, value)
    }

    fn regularizer(&self, params: &[f32]) -> f64 {
        self.group_weight * self.group_norms(params).iter().sum::<f64>()
    }

    fn add_regularizer_gradient(&self, params: &[f32], grad: &mut [f32]) -> f64 {
        let norms = self.group_norms(params);
        let weight = self.group_weight;
        let scale: Vec<f32> = norms
            .iter()
            .map(|n| if *n > 0.0 { (weight / n) as f32 } else { 0.0 })
            .collect();
        let width = self.group_width();
        let columns = self.columns();
        grad.par_chunks_mut(columns)
            .zip(params.par_chunks(columns))
            .for_each(|(g_row, w_row)| {
                for ((g_group, w_group), s) in
                    g_row.chunks_mut(width).zip(w_row.chunks(width)).zip(&scale)
                {
                    for (g, w) in g_group.iter_mut().zip(w_group) {
                        *g += s * w;
                    }
                }
            });
        weight * norms.iter().sum::<f64>()
    }
}
