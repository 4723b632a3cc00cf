//! Matrix products (float32 or float64) whose results do not depend on the
//! thread count.
//!
//! Every product is split into fixed blocks of [`COLUMN_BLOCK`] output
//! columns; each block is one single-threaded faer product and the blocks run
//! in parallel on rayon's pool. A block's arithmetic is the same whichever
//! thread runs it, so the same inputs give the same bits at 1, 2 or 64
//! threads (faer's own parallel split is not promised to be).

use faer::{Accum, Par};
use faer_ext::IntoFaer;
use ndarray::{ArrayView2, ArrayViewMut2, Axis};
use rayon::prelude::*;

/// The element types of [`matmul`]: `f32` and `f64`.
pub trait Scalar: faer::traits::ComplexField + Copy + Send + Sync {
    /// One.
    const ONE: Self;
}

impl Scalar for f32 {
    const ONE: Self = 1.0;
}

impl Scalar for f64 {
    const ONE: Self = 1.0;
}

/// Output columns computed by one task.
pub const COLUMN_BLOCK: usize = 512;

/// `out ← a · b` (or `out ← out + a · b` when `accumulate`), in blocks of
/// [`COLUMN_BLOCK`] columns. Shapes must agree (`a: m × k`, `b: k × n`,
/// `out: m × n`); callers check them.
pub fn matmul<T: Scalar>(
    a: ArrayView2<T>,
    b: ArrayView2<T>,
    mut out: ArrayViewMut2<T>,
    accumulate: bool,
) {
    debug_assert_eq!(a.ncols(), b.nrows());
    debug_assert_eq!((a.nrows(), b.ncols()), out.dim());
    let accum = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let blocks: Vec<_> = out
        .axis_chunks_iter_mut(Axis(1), COLUMN_BLOCK)
        .zip(b.axis_chunks_iter(Axis(1), COLUMN_BLOCK))
        .collect();
    blocks.into_par_iter().for_each(|(out_block, b_block)| {
        faer::linalg::matmul::matmul(
            out_block.into_faer(),
            accum,
            a.into_faer(),
            b_block.into_faer(),
            T::ONE,
            Par::Seq,
        );
    });
}

/// Work of one product `m × k` by `k × n`, in floating-point operations.
pub fn flops(m: usize, k: usize, n: usize) -> f64 {
    2.0 * m as f64 * k as f64 * n as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn naive(a: &Array2<f32>, b: &Array2<f32>) -> Array2<f32> {
        Array2::from_shape_fn((a.nrows(), b.ncols()), |(i, j)| {
            (0..a.ncols())
                .map(|l| f64::from(a[[i, l]]) * f64::from(b[[l, j]]))
                .sum::<f64>() as f32
        })
    }

    #[test]
    fn blocks_agree_with_a_naive_product_and_across_thread_counts() {
        let a = Array2::from_shape_fn((37, 29), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
        let b = Array2::from_shape_fn((29, 1100), |(i, j)| ((i * 5 + j) % 13) as f32 * 0.25 - 1.5);
        let expect = naive(&a, &b);
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = Array2::from_elem((37, 1100), 1.0f32);
            pool.install(|| matmul(a.view(), b.view(), out.view_mut(), true));
            out
        };
        let one = run(1);
        assert_eq!(one, run(3));
        for (x, e) in one.iter().zip(&expect) {
            assert!((x - 1.0 - e).abs() <= 1e-3 * (1.0 + e.abs()), "{x} vs {e}");
        }
        let mut transposed = Array2::zeros((29, 29));
        matmul(a.t(), a.view(), transposed.view_mut(), false);
        let gram = naive(&a.t().to_owned(), &a);
        for (x, e) in transposed.iter().zip(&gram) {
            assert!((x - e).abs() <= 1e-3 * (1.0 + e.abs()));
        }
    }
}
