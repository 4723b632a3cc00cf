//! A random instance of (11) shared by the unit tests.

use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::gates::SampledArrangements;
use super::variables::SampledVariables;
use crate::network::standard_normal;

/// Gates, data, labels ±1 and variables, all standard normal from `seed`.
pub(super) fn problem(
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
