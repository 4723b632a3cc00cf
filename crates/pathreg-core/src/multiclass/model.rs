//! What the trainers need of a model: its flat float32 parameters, the
//! gradient of a mini-batch's data term, the regularizer and its gradient,
//! and outputs on any rows.

use ndarray::Array2;

use super::data::ImageSet;
use crate::CoreError;

/// Sums over one batch's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchValue {
    /// `Σ_i ‖f(x_i) − y_i‖²` with one-hot `y_i`.
    pub loss: f64,
    /// `Σ_i h_i`, the constraint violations of (11) on these rows (0 for a
    /// network).
    pub violation: f64,
    /// Rows whose argmax output is their label.
    pub correct: usize,
}

impl BatchValue {
    /// The sum of two batches' values.
    pub fn plus(self, other: BatchValue) -> BatchValue {
        BatchValue {
            loss: self.loss + other.loss,
            violation: self.violation + other.violation,
            correct: self.correct + other.correct,
        }
    }
}

/// A model trained on the objective
///
/// ```text
/// J(θ) = (1/(nC)) Σ_i ‖f_θ(x_i) − y_i‖² + (λ/n) Σ_i h_i(θ) + β R(θ)
/// ```
///
/// by mini-batches (the data terms averaged over the batch's rows). The
/// loss is PyTorch's `MSELoss()` (the mean over all `n·C` entries) against
/// one-hot targets, so the paper's PyTorch learning rates apply as they
/// are. `h` is the constraint violation of (11) (zero for a network), `R`
/// the regularizer. Parameters are one flat `f32` vector.
pub trait Model: Sync {
    /// What the model precomputes on a dataset (the masks of (11)).
    type Prepared: Sync + Send;

    /// Number of parameters.
    fn parameters(&self) -> usize;

    /// The per-dataset precomputation for `set`.
    fn prepare(&self, set: &ImageSet) -> Result<Self::Prepared, CoreError>;

    /// Sets `grad` to the gradient of
    /// `(1/(bC)) Σ_{i ∈ rows} ‖f_i − y_i‖² + (λ/b) Σ_{i ∈ rows} h_i`
    /// (`b = rows.len()`) and returns the batch's sums.
    fn data_gradient(
        &self,
        params: &[f32],
        set: &ImageSet,
        prepared: &Self::Prepared,
        rows: &[usize],
        grad: &mut [f32],
    ) -> BatchValue;

    /// The outputs `f(x_i)` (`b × C`) on `rows` and the batch's sums.
    fn outputs(
        &self,
        params: &[f32],
        set: &ImageSet,
        prepared: &Self::Prepared,
        rows: &[usize],
    ) -> (Array2<f32>, BatchValue);

    /// `β R(θ)`.
    fn regularizer(&self, params: &[f32]) -> f64;

    /// Adds the (sub)gradient of `β R` to `grad` and returns `β R(θ)`.
    fn add_regularizer_gradient(&self, params: &[f32], grad: &mut [f32]) -> f64;
}
