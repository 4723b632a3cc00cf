//! The deep network that layerwise stacking (Figure 6) builds, trained end
//! to end instead: `S` parallel three-layer blocks one after another, each
//! block's second hidden layer feeding the next, in float32, with weight
//! decay.

use ndarray::{Array2, ArrayView2, ArrayView3, ArrayViewMut2, Axis};
use rand::Rng;
use rayon::prelude::*;

use super::data::ImageSet;
use super::model::{BatchValue, Model};
use super::network::{batch_value, first_layer_gradient};
use crate::CoreError;
use crate::gemm::matmul;
use crate::limits::{array_bytes, check_allocation};

/// Rows of a batch handled by one task of the elementwise passes.
const ROW_BLOCK: usize = 16;

/// The widths of a [`DeepNetworkModel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeepShape {
    /// Input dimension `d`.
    pub d: usize,
    /// Blocks `S` (the stages of a stack).
    pub stages: usize,
    /// Sub-networks per block `K`.
    pub k: usize,
    /// First hidden width of a sub-network `m1`.
    pub m1: usize,
    /// Second hidden width of a sub-network `m2`.
    pub m2: usize,
    /// Outputs `C`.
    pub classes: usize,
}

impl DeepShape {
    /// The input width of block `s` (0-based): `d`, then `K·m2`.
    fn input(&self, s: usize) -> usize {
        if s == 0 { self.d } else { self.k * self.m2 }
    }

    /// Parameters of block `s`: `W1_s` then `W2_s`.
    fn block_parameters(&self, s: usize) -> usize {
        self.input(s) * self.k * self.m1 + self.k * self.m1 * self.m2
    }

    /// Parameters: every block's, then `W3` (`K·m2 × C`).
    pub fn parameters(&self) -> usize {
        (0..self.stages)
            .map(|s| self.block_parameters(s))
            .sum::<usize>()
            + self.k * self.m2 * self.classes
    }
}

/// `H_0 = X`, `H_s = ((H_{s−1} W1_s)+ ⊛ W2_s)+` for `s = 1..S`, and
/// `f(X) = H_S W3`, where `⊛ W2_s` applies each sub-network's `m1 × m2`
/// block to its own `m1` first-layer neurons (block-diagonal, as in a
/// parallel network). With `S = 1` this is [`super::NetworkModel`] with the
/// same flat layout: `[W1_1 | W2_1 | … | W1_S | W2_S | W3]`, `W1_s`
/// row-major `input × K·m1` (column `k·m1 + j` is `w1_kj`), `W2_s` as
/// `K × m1 × m2`, `W3` as `K·m2 × C`. The regularizer is weight decay
/// `(β/2) ‖θ‖²` (the path regularizer of A.11 is defined for one block).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeepNetworkModel {
    shape: DeepShape,
    beta: f64,
}

/// One block's weights as views of the flat parameters.
struct Block<'a> {
    w1: ArrayView2<'a, f32>,
    w2: ArrayView3<'a, f32>,
}

/// One block's forward values on a batch.
struct BlockValues {
    /// `Z1 = H W1` (pre-activations, `b × K·m1`).
    z1: Array2<f32>,
    /// Second-layer pre-activations (`b × K·m2`).
    a2: Array2<f32>,
}

impl DeepNetworkModel {
    /// A network of `shape` with weight decay `β`.
    pub fn new(shape: DeepShape, beta: f64) -> Result<Self, CoreError> {
        let DeepShape {
            d,
            stages,
            k,
            m1,
            m2,
            classes,
        } = shape;
        if [d, stages, k, m1, m2, classes].contains(&0) {
            return Err(CoreError::Shape(format!(
                "every width must be ≥ 1, got {shape:?}"
            )));
        }
        if !(beta >= 0.0 && beta.is_finite()) {
            return Err(CoreError::Shape(format!(
                "β must be finite and ≥ 0, got {beta}"
            )));
        }
        check_allocation(
            || format!("a deep parallel network {shape:?}"),
            array_bytes(4, &[shape.parameters()]),
        )?;
        Ok(Self { shape, beta })
    }

    /// The widths.
    pub fn shape(&self) -> DeepShape {
        self.shape
    }

    /// PyTorch's default `nn.Linear` initialization, layer by layer in the
    /// flat order: uniform on `[−1/√fan_in, 1/√fan_in]` with fan-in the
    /// block's input width for `W1_s`, `m1` for `W2_s` and `m2` for `W3`
    /// (as [`super::NetworkModel::pytorch_uniform`]).
    pub fn pytorch_uniform<R: Rng + ?Sized>(&self, rng: &mut R) -> Vec<f32> {
        let DeepShape {
            k, m1, m2, classes, ..
        } = self.shape;
        let mut layers = Vec::new();
        for s in 0..self.shape.stages {
            layers.push((self.shape.input(s) * k * m1, self.shape.input(s)));
            layers.push((k * m1 * m2, m1));
        }
        layers.push((k * m2 * classes, m2));
        let mut out = Vec::with_capacity(self.shape.parameters());
        for (count, fan_in) in layers {
            let bound = 1.0 / (fan_in as f64).sqrt();
            out.extend((0..count).map(|_| ((2.0 * rng.random::<f64>() - 1.0) * bound) as f32));
        }
        out
    }

    /// The blocks and `W3` as views of `params`.
    fn split<'a>(&self, params: &'a [f32]) -> (Vec<Block<'a>>, ArrayView2<'a, f32>) {
        let DeepShape {
            k, m1, m2, classes, ..
        } = self.shape;
        let mut rest = params;
        let mut blocks = Vec::with_capacity(self.shape.stages);
        for s in 0..self.shape.stages {
            let input = self.shape.input(s);
            let (w1, tail) = rest.split_at(input * k * m1);
            let (w2, tail) = tail.split_at(k * m1 * m2);
            rest = tail;
            blocks.push(Block {
                w1: ArrayView2::from_shape((input, k * m1), w1).expect("W1 length"),
                w2: ArrayView3::from_shape((k, m1, m2), w2).expect("W2 length"),
            });
        }
        let w3 = ArrayView2::from_shape((k * m2, classes), rest).expect("W3 length");
        (blocks, w3)
    }

    /// One block on `h`: its pre-activations and its output `H_s`.
    fn block_forward(&self, block: &Block, h: ArrayView2<f32>) -> (BlockValues, Array2<f32>) {
        let DeepShape { k, m1, m2, .. } = self.shape;
        let b = h.nrows();
        let mut z1 = Array2::zeros((b, k * m1));
        matmul(h, block.w1, z1.view_mut(), false);
        let mut a2 = Array2::<f32>::zeros((b, k * m2));
        let w2 = block.w2.as_slice().expect("W2 is contiguous");
        a2.axis_chunks_iter_mut(Axis(0), ROW_BLOCK)
            .into_par_iter()
            .zip(z1.axis_chunks_iter(Axis(0), ROW_BLOCK).into_par_iter())
            .for_each(|(mut a2_block, z1_block)| {
                for (mut a2_row, z1_row) in a2_block.rows_mut().into_iter().zip(z1_block.rows()) {
                    let a2_row = a2_row.as_slice_mut().expect("row-major");
                    let z1_row = z1_row.as_slice().expect("row-major");
                    for kk in 0..k {
                        let out = &mut a2_row[kk * m2..(kk + 1) * m2];
                        for j in 0..m1 {
                            let h1 = z1_row[kk * m1 + j].max(0.0);
                            if h1 > 0.0 {
                                let row = &w2[(kk * m1 + j) * m2..(kk * m1 + j + 1) * m2];
                                for (o, w) in out.iter_mut().zip(row) {
                                    *o += h1 * w;
                                }
                            }
                        }
                    }
                }
            });
        let next = a2.mapv(|v| v.max(0.0));
        (BlockValues { z1, a2 }, next)
    }

    /// Every block's values, every `H_s` (`H_0 = xb` first) and the outputs.
    fn forward(
        &self,
        params: &[f32],
        xb: ArrayView2<f32>,
    ) -> (Vec<BlockValues>, Vec<Array2<f32>>, Array2<f32>) {
        let (blocks, w3) = self.split(params);
        let mut values = Vec::with_capacity(blocks.len());
        let mut hidden = vec![xb.to_owned()];
        for block in &blocks {
            let (v, next) = self.block_forward(block, hidden.last().expect("H_0").view());
            values.push(v);
            hidden.push(next);
        }
        let mut f = Array2::zeros((xb.nrows(), self.shape.classes));
        matmul(hidden.last().expect("H_S").view(), w3, f.view_mut(), false);
        (values, hidden, f)
    }

    /// The outputs of the network on `x`, every row (in blocks of 1 000).
    pub fn predict(&self, params: &[f32], x: ArrayView2<f32>) -> Array2<f32> {
        let mut out = Array2::zeros((x.nrows(), self.shape.classes));
        for (x_block, mut out_block) in x
            .axis_chunks_iter(Axis(0), 1000)
            .zip(out.axis_chunks_iter_mut(Axis(0), 1000))
        {
            out_block.assign(&self.forward(params, x_block).2);
        }
        out
    }

    /// One block's backward pass: from `dH_s` (overwritten), its gradient
    /// into `grad` (the block's `[W1_s | W2_s]`) and `dH_{s−1}` when asked.
    fn block_backward(
        &self,
        block: &Block,
        values: BlockValues,
        input: ArrayView2<f32>,
        mut dh: Array2<f32>,
        grad: &mut [f32],
        want_input_gradient: bool,
    ) -> Option<Array2<f32>> {
        let DeepShape { k, m1, m2, .. } = self.shape;
        let BlockValues { mut z1, a2 } = values;
        // dA2 = dH ⊙ 1[A2 > 0], in place of dH.
        dh.zip_mut_with(&a2, |g, a| {
            if *a <= 0.0 {
                *g = 0.0;
            }
        });
        let da2 = dh;
        let (g1, g2) = grad.split_at_mut(input.ncols() * k * m1);
        // dW2[k, j, l] = Σ_i (Z1)+[i, kj] dA2[i, kl], one sub-network per task, rows in order.
        g2.par_chunks_mut(m1 * m2)
            .enumerate()
            .for_each(|(kk, g2k)| {
                g2k.fill(0.0);
                for (z1_row, da2_row) in z1.rows().into_iter().zip(da2.rows()) {
                    let da2_k = &da2_row.as_slice().expect("row-major")[kk * m2..(kk + 1) * m2];
                    if da2_k.iter().all(|v| *v == 0.0) {
                        continue;
                    }
                    for j in 0..m1 {
                        let h1 = z1_row[kk * m1 + j].max(0.0);
                        if h1 > 0.0 {
                            for (g, d) in g2k[j * m2..(j + 1) * m2].iter_mut().zip(da2_k) {
                                *g += h1 * d;
                            }
                        }
                    }
                }
            });
        // dZ1 = (dA2 W2ᵀ) ⊙ 1[Z1 > 0] in place of Z1, then dW1 = Hᵀ dZ1.
        first_layer_gradient(
            &mut z1,
            &da2,
            block.w2.as_slice().expect("W2 is contiguous"),
            m1,
            m2,
        );
        let g1 = ArrayViewMut2::from_shape((input.ncols(), k * m1), g1).expect("W1 gradient");
        matmul(input.t(), z1.view(), g1, false);
        want_input_gradient.then(|| {
            let mut d_input = Array2::zeros(input.dim());
            matmul(z1.view(), block.w1.t(), d_input.view_mut(), false);
            d_input
        })
    }
}

impl Model for DeepNetworkModel {
    type Prepared = ();

    fn parameters(&self) -> usize {
        self.shape.parameters()
    }

    fn prepare(&self, set: &ImageSet) -> Result<(), CoreError> {
        if set.d() != self.shape.d || set.classes() != self.shape.classes {
            return Err(CoreError::Shape(format!(
                "data with d = {}, C = {} for a deep network with d = {}, C = {}",
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
        let classes = self.shape.classes;
        let xb = set.gather(rows);
        let (values, hidden, f) = self.forward(params, xb.view());
        let value = batch_value(f.view(), set, rows);
        let scale = 2.0 / (rows.len() * classes) as f32;
        let mut df = f;
        for (mut row, &r) in df.rows_mut().into_iter().zip(rows) {
            row[set.labels()[r]] -= 1.0;
            row.mapv_inplace(|v| v * scale);
        }
        let (blocks, w3) = self.split(params);
        let w3_len = w3.len();
        let (block_grads, g3) = grad.split_at_mut(grad.len() - w3_len);
        let h_last = hidden.last().expect("H_S");
        let g3 = ArrayViewMut2::from_shape(w3.dim(), g3).expect("W3 gradient length");
        matmul(h_last.t(), df.view(), g3, false);
        let mut dh = Array2::zeros(h_last.dim());
        matmul(df.view(), w3.t(), dh.view_mut(), false);
        let mut offsets = vec![0usize];
        for s in 0..self.shape.stages {
            offsets.push(offsets[s] + self.shape.block_parameters(s));
        }
        for (s, (block, v)) in blocks.iter().zip(values).enumerate().rev() {
            let g = &mut block_grads[offsets[s]..offsets[s + 1]];
            match self.block_backward(block, v, hidden[s].view(), dh, g, s > 0) {
                Some(next) => dh = next,
                None => break,
            }
        }
        value
    }

    fn outputs(
        &self,
        params: &[f32],
        set: &ImageSet,
        _: &(),
        rows: &[usize],
    ) -> (Array2<f32>, BatchValue) {
        let (_, _, f) = self.forward(params, set.gather(rows).view());
        let value = batch_value(f.view(), set, rows);
        (f, value)
    }

    fn regularizer(&self, params: &[f32]) -> f64 {
        0.5 * self.beta * params.iter().map(|v| f64::from(v * v)).sum::<f64>()
    }

    fn add_regularizer_gradient(&self, params: &[f32], grad: &mut [f32]) -> f64 {
        let beta = self.beta as f32;
        grad.par_iter_mut()
            .zip(params.par_iter())
            .for_each(|(g, w)| *g += beta * w);
        self.regularizer(params)
    }
}
