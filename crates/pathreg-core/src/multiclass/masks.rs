//! The masks `D1`, `D2` of sampled arrangements, one bit per entry.

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::CoreError;
use crate::gemm::matmul;
use crate::limits::{array_bytes, check_allocation, total_bytes};

/// Rows of pre-activations formed at once while computing masks.
const ROWS_AT_ONCE: usize = 1024;

/// `D1_kj(i) = 1[x_iᵀ g_kj > 0]` and `D2_k(i) = 1[Σ_j w2_kj (x_iᵀ g_kj)+ > 0]`
/// for every sample `i`, packed into 64-bit words row by row: `K·m1 + K`
/// bits per sample (60 000 Fashion-MNIST rows at `K = 40`, `m1 = 100` take
/// 30 MB instead of 1 GB as float32).
#[derive(Debug, Clone, PartialEq)]
pub struct Masks {
    n: usize,
    k: usize,
    m1: usize,
    words: usize,
    bits: Vec<u64>,
}

impl Masks {
    /// Bytes of the masks of `n` samples.
    pub fn bytes(n: usize, k: usize, m1: usize) -> u64 {
        array_bytes(8, &[n, words_per_row(k, m1)])
    }

    /// The masks of the gates `gates` (`d × K·m1`, column `k·m1 + j` is
    /// `g_kj`) with second-layer gates `w2` (`K × m1`) on the samples `x`.
    pub fn compute(
        x: ArrayView2<f32>,
        gates: ArrayView2<f32>,
        w2: ArrayView2<f32>,
    ) -> Result<Self, CoreError> {
        let (n, k, m1) = (x.nrows(), w2.nrows(), w2.ncols());
        if gates.nrows() != x.ncols() || gates.ncols() != k * m1 {
            return Err(CoreError::Shape(format!(
                "data {:?}, gates {:?}, second-layer gates {:?}",
                x.dim(),
                gates.dim(),
                w2.dim()
            )));
        }
        check_allocation(
            || format!("the masks of {k} arrangements of {m1} gates on {n} samples"),
            total_bytes(&[
                Self::bytes(n, k, m1),
                array_bytes(4, &[ROWS_AT_ONCE.min(n), k * m1]),
            ]),
        )?;
        let words = words_per_row(k, m1);
        let mut bits = vec![0u64; n * words];
        let mut pre = Array2::<f32>::zeros((ROWS_AT_ONCE.min(n), k * m1));
        for (block, x_block) in x.axis_chunks_iter(Axis(0), ROWS_AT_ONCE).enumerate() {
            let rows = x_block.nrows();
            let mut pre = pre.slice_mut(ndarray::s![..rows, ..]);
            matmul(x_block, gates, pre.view_mut(), false);
            let start = block * ROWS_AT_ONCE * words;
            bits[start..start + rows * words]
                .par_chunks_mut(words)
                .zip(pre.axis_iter(Axis(0)).into_par_iter())
                .for_each(|(row_bits, pre_row)| {
                    for kk in 0..k {
                        let mut second = 0.0f32;
                        for j in 0..m1 {
                            let v = pre_row[kk * m1 + j];
                            if v > 0.0 {
                                set_bit(row_bits, kk * m1 + j);
                                second += w2[[kk, j]] * v;
                            }
                        }
                        if second > 0.0 {
                            set_bit(row_bits, k * m1 + kk);
                        }
                    }
                });
        }
        Ok(Self {
            n,
            k,
            m1,
            words,
            bits,
        })
    }

    /// Number of samples.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Sample `i`'s masks as 0/1: `d1` (`K·m1`) and `d2` (`K`).
    pub fn expand(&self, i: usize, d1: &mut [f32], d2: &mut [f32]) {
        let row = &self.bits[i * self.words..(i + 1) * self.words];
        let km1 = self.k * self.m1;
        for (c, out) in d1.iter_mut().enumerate() {
            *out = f32::from(u8::from(bit(row, c)));
        }
        for (kk, out) in d2.iter_mut().enumerate() {
            *out = f32::from(u8::from(bit(row, km1 + kk)));
        }
    }

    /// `D1_kj(i)`.
    pub fn d1(&self, i: usize, kk: usize, j: usize) -> bool {
        bit(&self.bits[i * self.words..], kk * self.m1 + j)
    }

    /// `D2_k(i)`.
    pub fn d2(&self, i: usize, kk: usize) -> bool {
        bit(&self.bits[i * self.words..], self.k * self.m1 + kk)
    }
}

fn words_per_row(k: usize, m1: usize) -> usize {
    (k * m1 + k).div_ceil(64)
}

fn set_bit(words: &mut [u64], index: usize) {
    words[index / 64] |= 1 << (index % 64);
}

fn bit(words: &[u64], index: usize) -> bool {
    words[index / 64] >> (index % 64) & 1 == 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn bits_match_the_definition() {
        let x = array![[1.0f32, 0.0], [0.0, 1.0], [-1.0, -1.0]];
        let gates = array![[1.0f32, -1.0, 1.0], [1.0, 1.0, -2.0]];
        let w2 = array![[1.0f32, -3.0, 1.0]];
        let masks = Masks::compute(x.view(), gates.view(), w2.view()).unwrap();
        let pre = x.dot(&gates);
        for i in 0..3 {
            let mut d1 = [0.0f32; 3];
            let mut d2 = [0.0f32; 1];
            masks.expand(i, &mut d1, &mut d2);
            let mut second = 0.0;
            for j in 0..3 {
                assert_eq!(d1[j] == 1.0, pre[[i, j]] > 0.0);
                assert_eq!(masks.d1(i, 0, j), pre[[i, j]] > 0.0);
                second += w2[[0, j]] * pre[[i, j]].max(0.0);
            }
            assert_eq!(d2[0] == 1.0, second > 0.0);
            assert_eq!(masks.d2(i, 0), second > 0.0);
        }
    }
}
