//! Mini-batch training of the float32 multi-class models
//! ([`pathreg_core::multiclass`]): the non-convex network and the convex
//! program (11) with vector outputs, by any [`Optimizer`], recording test
//! accuracy against training wall time as Figure 5 plots it.
//!
//! Each epoch visits the training rows in an order shuffled by the seeded
//! generator, in batches of `batch_size` (the last may be smaller). A step
//! is the gradient of the batch's data term plus the regularizer's, then the
//! optimizer's update of the flat parameters. The clock runs only during
//! steps: evaluations of the test set (`evaluations_per_epoch` times an
//! epoch, at evenly spaced batches) are excluded.

use std::time::Instant;

use pathreg_core::multiclass::{ImageSet, Model};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::SolverError;
use crate::nonconvex::Optimizer;

/// Rows evaluated at once by [`evaluate`].
const EVALUATION_BATCH: usize = 1000;

/// How to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageTrainSettings {
    /// The update rule.
    pub optimizer: Optimizer,
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per step.
    pub batch_size: usize,
    /// Test-set evaluations per epoch (at least 1: at the epoch's end).
    pub evaluations_per_epoch: usize,
}

/// The objective and accuracy of a model on a whole dataset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Evaluation {
    /// `(1/(nC)) Σ ‖f_i − y_i‖²` (PyTorch's `MSELoss()`).
    pub loss: f64,
    /// `(1/n) Σ h_i` (0 for a network).
    pub violation: f64,
    /// `β R(θ)`.
    pub regularizer: f64,
    /// The objective `loss + λ violation + β R`.
    pub objective: f64,
    /// Fraction of rows whose argmax output is their label.
    pub accuracy: f64,
}

/// One recorded point of a run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImageCurvePoint {
    /// Epochs done (fractional between epoch ends).
    pub epoch: f64,
    /// Training wall time so far, seconds (evaluations excluded).
    pub time_s: f64,
    /// Mean batch objective of the steps since the previous point (`NaN` at
    /// the start).
    pub batch_objective: f64,
    /// Training accuracy of the batches since the previous point, each
    /// before its update (`NaN` at the start).
    pub running_train_accuracy: f64,
    /// Test accuracy at this point.
    pub test_accuracy: f64,
}

/// A trained model and its history.
#[derive(Debug, Clone)]
pub struct ImageTrainResult {
    /// Final parameters.
    pub params: Vec<f32>,
    /// The recorded curve (its first point is the initialization).
    pub curve: Vec<ImageCurvePoint>,
    /// Epochs run (fewer than asked when the run diverged).
    pub epochs_run: usize,
    /// A batch objective became non-finite; training stopped there.
    pub diverged: bool,
    /// Training wall time, seconds (evaluations excluded).
    pub time_s: f64,
}

/// The model's objective and accuracy on all of `set`, `λ` weighting the
/// violations.
pub fn evaluate<M: Model>(
    model: &M,
    params: &[f32],
    set: &ImageSet,
    prepared: &M::Prepared,
    lambda: f64,
) -> Evaluation {
    let rows: Vec<usize> = (0..set.n()).collect();
    let total = rows
        .chunks(EVALUATION_BATCH)
        .map(|block| model.outputs(params, set, prepared, block).1)
        .fold(
            Default::default(),
            pathreg_core::multiclass::BatchValue::plus,
        );
    let n = set.n().max(1) as f64;
    let regularizer = model.regularizer(params);
    let loss = total.loss / (n * set.classes() as f64);
    Evaluation {
        loss,
        violation: total.violation / n,
        regularizer,
        objective: loss + lambda * total.violation / n + regularizer,
        accuracy: total.correct as f64 / n,
    }
}

/// A dataset with the model's precomputation on it.
pub struct Prepared<'a, M: Model> {
    /// The rows.
    pub set: &'a ImageSet,
    /// The model's precomputation (the masks of (11)).
    pub prepared: &'a M::Prepared,
}

/// Trains `model` from `params` on `train`, evaluating on `test`;
/// `progress` is told the epochs done after every step. `λ` only enters
/// the reported batch objectives (the model's gradient already weights its
/// violations).
#[allow(clippy::too_many_arguments)]
pub fn train_images<M: Model, R: Rng + ?Sized>(
    model: &M,
    mut params: Vec<f32>,
    train: Prepared<M>,
    test: Prepared<M>,
    lambda: f64,
    settings: &ImageTrainSettings,
    rng: &mut R,
    progress: &dyn Fn(f64),
) -> Result<ImageTrainResult, SolverError> {
    let n = train.set.n();
    crate::check_training_input(n, n, settings.batch_size, settings.evaluations_per_epoch)?;
    if params.len() != model.parameters() {
        return Err(SolverError::Invalid(format!(
            "{} initial parameters for a model with {}",
            params.len(),
            model.parameters()
        )));
    }
    let p = params.len();
    let (mut grad, mut m, mut v) = (vec![0.0f32; p], vec![0.0f32; p], vec![0.0f32; p]);
    let batches = n.div_ceil(settings.batch_size);
    let every = batches.div_ceil(settings.evaluations_per_epoch.min(batches));
    let test_accuracy =
        |params: &[f32]| evaluate(model, params, test.set, test.prepared, lambda).accuracy;
    let mut curve = vec![ImageCurvePoint {
        epoch: 0.0,
        time_s: 0.0,
        batch_objective: f64::NAN,
        running_train_accuracy: f64::NAN,
        test_accuracy: test_accuracy(&params),
    }];
    let mut order: Vec<usize> = (0..n).collect();
    let (mut time_s, mut step, mut epochs_run, mut diverged) = (0.0, 0i32, 0, false);
    'epochs: for epoch in 0..settings.epochs {
        order.shuffle(rng);
        let (mut objective_sum, mut steps, mut correct, mut seen) = (0.0, 0usize, 0usize, 0usize);
        for (b, rows) in order.chunks(settings.batch_size).enumerate() {
            let start = Instant::now();
            let value = model.data_gradient(&params, train.set, train.prepared, rows, &mut grad);
            let regularizer = model.add_regularizer_gradient(&params, &mut grad);
            step += 1;
            settings
                .optimizer
                .update_slice(&mut params, &grad, &mut m, &mut v, step);
            time_s += start.elapsed().as_secs_f64();
            let rows_in_batch = rows.len() as f64;
            let batch_objective = value.loss / (rows_in_batch * train.set.classes() as f64)
                + lambda * value.violation / rows_in_batch
                + regularizer;
            if !batch_objective.is_finite() {
                diverged = true;
                break 'epochs;
            }
            objective_sum += batch_objective;
            steps += 1;
            correct += value.correct;
            seen += rows.len();
            let done = epoch as f64 + (b + 1) as f64 / batches as f64;
            progress(done);
            if (b + 1) % every == 0 || b + 1 == batches {
                curve.push(ImageCurvePoint {
                    epoch: done,
                    time_s,
                    batch_objective: objective_sum / steps as f64,
                    running_train_accuracy: correct as f64 / seen as f64,
                    test_accuracy: test_accuracy(&params),
                });
                (objective_sum, steps, correct, seen) = (0.0, 0, 0, 0);
            }
        }
        epochs_run = epoch + 1;
    }
    Ok(ImageTrainResult {
        params,
        curve,
        epochs_run,
        diverged,
        time_s,
    })
}
