//! The non-convex three-layer parallel network with `C` outputs
//! (Appendix A.11) in float32, with A.11's path regularizer or weight decay.

use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, Axis};
use rand::Rng;
use rayon::prelude::*;

use super::data::{ImageSet, argmax_rows};
use super::model::{BatchValue, Model};
use crate::CoreError;
use crate::gemm::matmul;
use crate::limits::{array_bytes, check_allocation, total_bytes};
use crate::network::Regularizer;

/// Rows of a batch handled by one task of the elementwise passes.
const ROW_BLOCK: usize = 16;

/// The widths of a network with vector outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetworkShape {
    /// Input dimension `d`.
    pub d: usize,
    /// Sub-networks `K`.
    pub k: usize,
    /// First hidden width `m1`.
    pub m1: usize,
    /// Second hidden width `m2`.
    pub m2: usize,
    /// Outputs `C`.
    pub classes: usize,
}

impl NetworkShape {
    /// Parameters: `d·K·m1 + K·m1·m2 + K·m2·C`.
    pub fn parameters(&self) -> usize {
        let NetworkShape {
            d,
            k,
            m1,
            m2,
            classes,
        } = *self;
        d * k * m1 + k * m1 * m2 + k * m2 * classes
    }

    fn bytes(&self) -> u64 {
        let NetworkShape {
            d,
            k,
            m1,
            m2,
            classes,
        } = *self;
        total_bytes(&[
            array_bytes(4, &[d, k, m1]),
            array_bytes(4, &[k, m1, m2]),
            array_bytes(4, &[k, m2, classes]),
        ])
    }
}

/// `f(X) = Σ_k ((X W1k)+ W2k)+ W3k ∈ R^{n×C}` (`W1k: d × m1`, `W2k: m1 × m2`,
/// `W3k: m2 × C`), with β times either A.11's path regularizer
///
/// ```text
/// R(θ) = Σ_k sqrt( Σ_{j1, j2} ‖w1_kj1‖² w2_kj1j2² ‖w3_kj2‖² )
/// ```
///
/// (`w3_kj2 ∈ R^C` the row of `W3k` that neuron `j2` feeds) or weight decay
/// `½ (‖W1‖² + ‖W2‖² + ‖W3‖²)`.
///
/// The flat parameters are `[W1 | W2 | W3]`: `W1` as a row-major
/// `d × K·m1` matrix (column `k·m1 + j` is `w1_kj`), then `W2` as
/// `K × m1 × m2` and `W3` as `K × m2 × C`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetworkModel {
    shape: NetworkShape,
    regularizer: Regularizer,
    beta: f64,
}

/// The three weight tensors as views of the flat parameters.
struct Weights<'a> {
    w1: ArrayView2<'a, f32>,
    w2: ArrayView3<'a, f32>,
    w3: ArrayView3<'a, f32>,
}

impl NetworkModel {
    /// A network of `shape` trained with `β · regularizer`.
    pub fn new(
        shape: NetworkShape,
        regularizer: Regularizer,
        beta: f64,
    ) -> Result<Self, CoreError> {
        let NetworkShape {
            d,
            k,
            m1,
            m2,
            classes,
        } = shape;
        if d == 0 || k == 0 || m1 == 0 || m2 == 0 || classes == 0 {
            return Err(CoreError::Shape(format!(
                "every width must be ≥ 1, got {shape:?}"
            )));
        }
        if !(beta >= 0.0 && beta.is_finite()) {
            return Err(CoreError::Shape(format!(
                "β must be finite and ≥ 0, got {beta}"
            )));
        }
        check_allocation(|| format!("a parallel network {shape:?}"), shape.bytes())?;
        Ok(Self {
            shape,
            regularizer,
            beta,
        })
    }

    /// The widths.
    pub fn shape(&self) -> NetworkShape {
        self.shape
    }

    /// PyTorch's default initialization of `nn.Linear` weights: every weight
    /// uniform on `[−1/√fan_in, 1/√fan_in]` (fan-in `d`, `m1`, `m2` by
    /// layer), drawn in the flat order.
    pub fn pytorch_uniform<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f32> {
        let NetworkShape { d, k, m1, m2, .. } = self.shape;
        let first = d * k * m1;
        let second = k * m1 * m2;
        let layers = [
            (first, d),
            (second, m1),
            (self.shape.parameters() - first - second, m2),
        ];
        let mut out = Vec::with_capacity(self.shape.parameters());
        for (count, fan_in) in layers {
            let bound = 1.0 / (fan_in as f64).sqrt();
            out.extend((0..count).map(|_| ((2.0 * rng.random::<f64>() - 1.0) * bound) as f32));
        }
        out
    }

    fn split<'a>(&self, params: &'a [f32]) -> Weights<'a> {
        let NetworkShape {
            d,
            k,
            m1,
            m2,
            classes,
        } = self.shape;
        let (w1, rest) = params.split_at(d * k * m1);
        let (w2, w3) = rest.split_at(k * m1 * m2);
        Weights {
            w1: ArrayView2::from_shape((d, k * m1), w1).expect("W1 length"),
            w2: ArrayView3::from_shape((k, m1, m2), w2).expect("W2 length"),
            w3: ArrayView3::from_shape((k, m2, classes), w3).expect("W3 length"),
        }
    }

    /// The forward pass on `xb`: `Z1 = X W1` (`b × K·m1`, pre-activations),
    /// `A2` (`b × K·m2`, second-layer pre-activations) and the outputs.
    fn forward(&self, w: &Weights, xb: ArrayView2<f32>) -> (Array2<f32>, Array2<f32>, Array2<f32>) {
        let NetworkShape {
            k, m1, m2, classes, ..
        } = self.shape;
        let b = xb.nrows();
        let mut z1 = Array2::zeros((b, k * m1));
        matmul(xb, w.w1, z1.view_mut(), false);
        let mut a2 = Array2::<f32>::zeros((b, k * m2));
        let mut f = Array2::<f32>::zeros((b, classes));
        a2.axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .into_par_iter()
            .zip(f.axis_chunks_iter_mut(Axis(0), ROW_BLOCK).into_par_iter())
            .zip(z1.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
            .for_each(|((mut a2_block, mut f_block), z1_block)| {
                for ((mut a2_row, mut f_row), z1_row) in a2_block
                    .rows_mut()
                    .into_iter()
                    .zip(f_block.rows_mut())
                    .zip(z1_block.rows())
                {
                    for kk in 0..k {
                        for l in 0..m2 {
                            let mut pre = 0.0f32;
                            for j in 0..m1 {
                                pre += z1_row[kk * m1 + j].max(0.0) * w.w2[[kk, j, l]];
                            }
                            a2_row[kk * m2 + l] = pre;
                            let h2 = pre.max(0.0);
                            if h2 > 0.0 {
                                for c in 0..classes {
                                    f_row[c] += h2 * w.w3[[kk, l, c]];
                                }
                            }
                        }
                    }
                }
            });
        (z1, a2, f)
    }

    /// `‖w1_kj‖²` for every column of `W1`.
    fn column_norms(w1: ArrayView2<f32>) -> Vec<f64> {
        // One task per block of columns, each summing its rows in order.
        let mut out = vec![0.0f64; w1.ncols()];
        out.par_chunks_mut(crate::gemm::COLUMN_BLOCK)
            .enumerate()
            .for_each(|(block, sums)| {
                let start = block * crate::gemm::COLUMN_BLOCK;
                for row in w1.rows() {
                    let row = &row.as_slice().expect("row-major")[start..start + sums.len()];
                    for (o, v) in sums.iter_mut().zip(row) {
                        *o += f64::from(v * v);
                    }
                }
            });
        out
    }

    /// The path norm `R_k` of every sub-network, with `‖w1_kj‖²`.
    fn path_norms(&self, w: &Weights) -> (Vec<f64>, Vec<f64>) {
        let NetworkShape { k, m1, m2, .. } = self.shape;
        let a = Self::column_norms(w.w1);
        let norms = (0..k)
            .map(|kk| {
                let mut total = 0.0f64;
                for l in 0..m2 {
                    let q: f64 =
                        w.w3.slice(ndarray::s![kk, l, ..])
                            .iter()
                            .map(|v| f64::from(v * v))
                            .sum();
                    for j in 0..m1 {
                        let w2 = f64::from(w.w2[[kk, j, l]]);
                        total += a[kk * m1 + j] * w2 * w2 * q;
                    }
                }
                total.sqrt()
            })
            .collect();
        (norms, a)
    }

    /// The outputs of the network on `x`, every row (in blocks of 1 000).
    pub fn predict(&self, params: &[f32], x: ArrayView2<f32>) -> Array2<f32> {
        self.second_layer_and_outputs(params, x).1
    }

    /// The second hidden layer `((X W1k)+ W2k)+` of every sub-network
    /// (`n × K·m2`, column `k·m2 + l`) and the outputs, every row of `x` (in
    /// blocks of 1 000, so memory stays that of one block's first layer).
    pub fn second_layer_and_outputs(
        &self,
        params: &[f32],
        x: ArrayView2<f32>,
    ) -> (Array2<f32>, Array2<f32>) {
        let w = self.split(params);
        let NetworkShape { k, m2, classes, .. } = self.shape;
        let mut hidden = Array2::zeros((x.nrows(), k * m2));
        let mut out = Array2::zeros((x.nrows(), classes));
        for ((x_block, mut hidden_block), mut out_block) in x
            .axis_chunks_iter(Axis(0), 1000)
            .zip(hidden.axis_chunks_iter_mut(Axis(0), 1000))
            .zip(out.axis_chunks_iter_mut(Axis(0), 1000))
        {
            let (_, a2, f) = self.forward(&w, x_block);
            hidden_block.assign(&a2.mapv(|v| v.max(0.0)));
            out_block.assign(&f);
        }
        (hidden, out)
    }
}

impl Model for NetworkModel {
    type Prepared = ();

    fn parameters(&self) -> usize {
        self.shape.parameters()
    }

    fn prepare(&self, set: &ImageSet) -> Result<(), CoreError> {
        if set.d() != self.shape.d || set.classes() != self.shape.classes {
            return Err(CoreError::Shape(format!(
                "data with d = {}, C = {} for a network with d = {}, C = {}",
                set.d(),
                set.classes(),
                self.shape.d,
                self.shape.classes
            )));
        }
        Ok(())
    }

    fn data_gradient(
        &self,
        params: &[f32],
        set: &ImageSet,
        _: &(),
        rows: &[usize],
        grad: &mut [f32],
    ) -> BatchValue {
        let NetworkShape {
            d,
            k,
            m1,
            m2,
            classes,
        } = self.shape;
        let w = self.split(params);
        let xb = set.gather(rows);
        let (mut z1, a2, f) = self.forward(&w, xb.view());
        let value = batch_value(f.view(), set, rows);
        let scale = 2.0 / (rows.len() * classes) as f32;
        // dF = 2 (F − Y)/(bC), then dA2 = (dF W3ᵀ) ⊙ 1[A2 > 0].
        let mut df = f;
        for (mut row, &r) in df.rows_mut().into_iter().zip(rows) {
            row[set.labels()[r]] -= 1.0;
            row.mapv_inplace(|v| v * scale);
        }
        let mut da2 = a2.clone();
        da2.axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .into_par_iter()
            .zip(df.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
            .for_each(|(mut da2_block, df_block)| {
                for (mut da2_row, df_row) in da2_block.rows_mut().into_iter().zip(df_block.rows()) {
                    for kk in 0..k {
                        for l in 0..m2 {
                            let v = &mut da2_row[kk * m2 + l];
                            *v = if *v > 0.0 {
                                (0..classes).map(|c| w.w3[[kk, l, c]] * df_row[c]).sum()
                            } else {
                                0.0
                            };
                        }
                    }
                }
            });
        let (g1, rest) = grad.split_at_mut(d * k * m1);
        let (g2, g3) = rest.split_at_mut(k * m1 * m2);
        // dW3[k, l, c] = Σ_i (A2)+[i, kl] dF[i, c] and dW2[k, j, l] = Σ_i H1[i, kj] dA2[i, kl],
        // one sub-network per task, rows summed in order.
        g3.par_chunks_mut(m2 * classes)
            .zip(g2.par_chunks_mut(m1 * m2))
            .enumerate()
            .for_each(|(kk, (g3k, g2k))| {
                g3k.fill(0.0);
                g2k.fill(0.0);
                for i in 0..rows.len() {
                    for l in 0..m2 {
                        let h2 = a2[[i, kk * m2 + l]].max(0.0);
                        if h2 > 0.0 {
                            for c in 0..classes {
                                g3k[l * classes + c] += h2 * df[[i, c]];
                            }
                        }
                        let grad_a2 = da2[[i, kk * m2 + l]];
                        if grad_a2 != 0.0 {
                            for j in 0..m1 {
                                g2k[j * m2 + l] += z1[[i, kk * m1 + j]].max(0.0) * grad_a2;
                            }
                        }
                    }
                }
            });
        // dZ1 = (dA2 W2ᵀ) ⊙ 1[Z1 > 0] in place of Z1, then dW1 = Xᵀ dZ1.
        first_layer_gradient(
            &mut z1,
            &da2,
            w.w2.as_slice().expect("W2 is contiguous"),
            m1,
            m2,
        );
        let g1 = ArrayViewMut2::from_shape((d, k * m1), g1).expect("W1 gradient length");
        matmul(xb.t(), z1.view(), g1, false);
        value
    }

    fn outputs(
        &self,
        params: &[f32],
        set: &ImageSet,
        _: &(),
        rows: &[usize],
    ) -> (Array2<f32>, BatchValue) {
        let w = self.split(params);
        let (_, _, f) = self.forward(&w, set.gather(rows).view());
        let value = batch_value(f.view(), set, rows);
        (f, value)
    }

    fn regularizer(&self, params: &[f32]) -> f64 {
        self.beta
            * match self.regularizer {
                Regularizer::Path => self.path_norms(&self.split(params)).0.iter().sum::<f64>(),
                Regularizer::WeightDecay => {
                    0.5 * params.iter().map(|v| f64::from(v * v)).sum::<f64>()
                }
            }
    }

    fn add_regularizer_gradient(&self, params: &[f32], grad: &mut [f32]) -> f64 {
        let beta = self.beta;
        match self.regularizer {
            Regularizer::WeightDecay => {
                grad.par_iter_mut()
                    .zip(params.par_iter())
                    .for_each(|(g, w)| *g += beta as f32 * w);
                self.regularizer(params)
            }
            Regularizer::Path => {
                let NetworkShape {
                    d,
                    k,
                    m1,
                    m2,
                    classes,
                } = self.shape;
                let w = self.split(params);
                let (norms, a) = self.path_norms(&w);
                let q = |kk: usize, l: usize| -> f64 {
                    w.w3.slice(ndarray::s![kk, l, ..])
                        .iter()
                        .map(|v| f64::from(v * v))
                        .sum()
                };
                let inv: Vec<f64> = norms
                    .iter()
                    .map(|r| if *r > 0.0 { beta / r } else { 0.0 })
                    .collect();
                // ∂R_k/∂w1_kj = w1_kj Σ_l w2_kjl² q_kl / R_k.
                let mut s1 = vec![0.0f32; k * m1];
                for kk in 0..k {
                    for j in 0..m1 {
                        let t: f64 = (0..m2)
                            .map(|l| f64::from(w.w2[[kk, j, l]]).powi(2) * q(kk, l))
                            .sum();
                        s1[kk * m1 + j] = (inv[kk] * t) as f32;
                    }
                }
                let (g1, rest) = grad.split_at_mut(d * k * m1);
                let (g2, g3) = rest.split_at_mut(k * m1 * m2);
                g1.par_chunks_mut(k * m1)
                    .zip(w.w1.axis_iter(Axis(0)).into_par_iter())
                    .for_each(|(g_row, w_row)| {
                        for ((g, v), s) in g_row.iter_mut().zip(w_row).zip(&s1) {
                            *g += s * v;
                        }
                    });
                for kk in 0..k {
                    for l in 0..m2 {
                        let q_kl = q(kk, l);
                        let mut t = 0.0f64;
                        for j in 0..m1 {
                            let w2 = f64::from(w.w2[[kk, j, l]]);
                            g2[(kk * m1 + j) * m2 + l] +=
                                (inv[kk] * a[kk * m1 + j] * w2 * q_kl) as f32;
                            t += a[kk * m1 + j] * w2 * w2;
                        }
                        for c in 0..classes {
                            g3[(kk * m2 + l) * classes + c] +=
                                (inv[kk] * t) as f32 * w.w3[[kk, l, c]];
                        }
                    }
                }
                beta * norms.iter().sum::<f64>()
            }
        }
    }
}

/// A batch's sums for a network's outputs `f` on `rows`: the squared error
/// against one-hot labels and the rows predicted right.
pub(super) fn batch_value(f: ArrayView2<f32>, set: &ImageSet, rows: &[usize]) -> BatchValue {
    let mut loss = 0.0f64;
    for (f_row, &r) in f.rows().into_iter().zip(rows) {
        for (c, v) in f_row.iter().enumerate() {
            let residual = v - f32::from(u8::from(c == set.labels()[r]));
            loss += f64::from(residual * residual);
        }
    }
    let predicted = argmax_rows(f);
    BatchValue {
        loss,
        violation: 0.0,
        correct: predicted
            .iter()
            .zip(rows)
            .filter(|(p, r)| **p == set.labels()[**r])
            .count(),
    }
}

/// The backward pass through a parallel block's second layer: `Z1` (the
/// first layer's pre-activations, `b × K·m1`) becomes
/// `dZ1 = (dA2 W2ᵀ) ⊙ 1[Z1 > 0]`, sub-network by sub-network (`W2` flat
/// `K × m1 × m2`, `dA2` `b × K·m2`).
pub(super) fn first_layer_gradient(
    z1: &mut Array2<f32>,
    da2: &Array2<f32>,
    w2: &[f32],
    m1: usize,
    m2: usize,
) {
    z1.axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
        .into_par_iter()
        .zip(da2.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
        .for_each(|(mut z1_block, da2_block)| {
            for (mut z1_row, da2_row) in z1_block.rows_mut().into_iter().zip(da2_block.rows()) {
                let z1_row = z1_row.as_slice_mut().expect("row-major");
                let da2_row = da2_row.as_slice().expect("row-major");
                for (kk, (z1_k, da2_k)) in z1_row
                    .chunks_exact_mut(m1)
                    .zip(da2_row.chunks_exact(m2))
                    .enumerate()
                {
                    let w2_k = &w2[kk * m1 * m2..(kk + 1) * m1 * m2];
                    for (v, w2_j) in z1_k.iter_mut().zip(w2_k.chunks_exact(m2)) {
                        *v = if *v > 0.0 {
                            w2_j.iter().zip(da2_k).map(|(a, b)| a * b).sum()
                        } else {
                            0.0
                        };
                    }
                }
            }
        });
}
