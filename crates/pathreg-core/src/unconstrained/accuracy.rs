//! Sign accuracy (labels ±1) of outputs, of the convex model (11) and of
//! networks.

use ndarray::{ArrayView1, ArrayView2};

use super::gates::SampledArrangements;
use super::objective::{check_labels, predict};
use super::variables::SampledVariables;
use crate::CoreError;
use crate::network::ParallelNetwork;

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
    use ndarray::Array1;

    #[test]
    fn accuracy_counts_signs() {
        let f = Array1::from(vec![0.5, -0.1, 0.0, 2.0]);
        let y = Array1::from(vec![1.0, -1.0, 1.0, -1.0]);
        assert_eq!(accuracy(f.view(), y.view()), 0.5);
    }
}
