//! One Table 3 cell — a (dataset, split seed, optimizer, model) — under the
//! paper's protocol (Appendix A.1): choose the learning rate on a validation
//! split carved from the training set, retrain on the whole training set
//! "long enough to reach training accuracy one" (or the epoch cap), and
//! measure test accuracy. The convex model is (11) over `K` sampled
//! arrangements; after training it is mapped to a network by Proposition 1,
//! whose accuracy and constraint violation are reported too.
//!
//! Labels: two classes are trained as one ±1 problem; `C > 2` classes one
//! versus rest (`C` binary models, each with targets ±1, sharing the
//! arrangements and the learning rate; the predicted class is the argmax of
//! the `C` outputs).

use std::time::Instant;

use ndarray::{Array1, ArrayView2};
use pathreg_core::unconstrained::{self, Objective11, SampledArrangements, SampledVariables};
use pathreg_core::{ParallelNetwork, Regularizer};
use pathreg_data::Dataset;
use pathreg_solvers::{
    ConvexMethod, ConvexTrainSettings, Optimizer, TrainSettings, train, train_convex,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::manifest::{ClassificationExperiment, OptimizerGrid, OptimizerKind};
use crate::PipelineError;
use crate::engine::seeds::derive_seed;

/// Power iterations for `‖X̃‖²` (the unit of the convex SGD rate).
const POWER_ITERATIONS: usize = 10;

/// The non-convex network or its convex counterpart (11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ModelKind {
    /// The parallel network (K, m1, m2) with path regularization.
    Nonconvex,
    /// The unconstrained convex program (11) over sampled arrangements.
    Convex,
}

impl ModelKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            ModelKind::Nonconvex => "nonconvex",
            ModelKind::Convex => "convex",
        }
    }
}

/// One split of one dataset, with class indices.
pub(crate) struct SplitData {
    pub name: String,
    pub split_seed: u64,
    pub train: Dataset,
    pub test: Dataset,
    pub train_classes: Vec<usize>,
    pub test_classes: Vec<usize>,
    pub n_classes: usize,
    /// SHA-256 of the split's rows (train then test): the cells' cache input.
    pub sha256: String,
    /// SHA-256 of the data's content (the SHA-256s of its files, in reading
    /// order, without their names): every seed of a cell derives from it, so
    /// moving or renaming a file leaves every result bit-identical.
    pub content: String,
    pub files: Vec<(String, String)>,
}

/// One learning rate tried on the validation split.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Candidate {
    pub lr: f64,
    pub validation_accuracy: f64,
    /// Mean loss per validation sample (averaged over the binary models).
    pub validation_loss: f64,
    pub epochs: usize,
    pub diverged: bool,
}

/// What Proposition 1's map of the trained convex model does.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConvexCheck {
    pub mapped_train_accuracy: f64,
    pub mapped_test_accuracy: f64,
    /// Fraction of test rows where the mapped network and the convex model
    /// predict the same class.
    pub mapped_test_agreement: f64,
    /// `h(Z) + h(Z')` over `Σ‖Z_k‖ + ‖Z'_k‖` on the training rows (the
    /// largest over the binary models).
    pub violation_relative: f64,
    /// Groups (`Z_k`, `Z'_k`) left non-zero, summed over the binary models.
    pub active_groups: usize,
    /// All groups, summed over the binary models.
    pub total_groups: usize,
}

/// A finished cell (the cached `classification` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CellOutcome {
    /// The learning rate of the final training (in the manifest's units).
    pub lr: f64,
    /// Better-ranked rates whose final training diverged (then not used).
    pub rejected_lrs: Vec<f64>,
    /// The final training's step is `lr / rate_unit` (see [`OptimizerGrid`]).
    pub rate_unit: f64,
    pub candidates: Vec<Candidate>,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Final training objective ((4) or (11)), summed over the binary models.
    pub objective: f64,
    /// Epochs of the final training (the largest over the binary models).
    pub epochs: usize,
    /// Every binary model reached training accuracy 1.
    pub reached_full_accuracy: bool,
    pub diverged: bool,
    /// Final training time, seconds.
    pub time_s: f64,
    /// Learning-rate search time, seconds.
    pub search_time_s: f64,
    pub convex: Option<ConvexCheck>,
}

/// Everything a cell's trainings share.
struct Context<'a> {
    experiment: &'a ClassificationExperiment,
    split: &'a SplitData,
    training_seed: u64,
    optimizer: &'a OptimizerGrid,
    model: ModelKind,
    arrangements: Option<SampledArrangements>,
}

/// One trained binary model.
enum Trained {
    Nonconvex(ParallelNetwork),
    Convex(SampledVariables),
}

struct BinaryFit {
    trained: Trained,
    objective: f64,
    epochs: usize,
    reached: bool,
    diverged: bool,
}

/// Refuses a cell whose arrays (on the training rows: masks or activations,
/// and the weights with their gradients and two optimizer moments) would
/// together exceed the allocation limit, before any of them is allocated.
fn check_cell_memory(
    experiment: &ClassificationExperiment,
    split: &SplitData,
    model: ModelKind,
) -> Result<(), PipelineError> {
    use pathreg_core::limits::{check_allocation, total_bytes};
    let (n, d) = (split.train.n(), split.train.d());
    let m = &experiment.model;
    let bytes = match model {
        ModelKind::Nonconvex => total_bytes(&[
            ParallelNetwork::parameter_bytes(m.k, d, m.m1, m.m2).saturating_mul(4),
            ParallelNetwork::forward_bytes(n, m.k, m.m1, m.m2),
        ]),
        ModelKind::Convex => total_bytes(&[
            SampledArrangements::bytes(m.k, d, m.m1),
            SampledArrangements::masks_bytes(n, m.k, m.m1).saturating_mul(2),
            SampledVariables::bytes(m.k, d, m.m1).saturating_mul(4),
        ]),
    };
    check_allocation(
        || {
            format!(
                "{}: a {} cell with (K, m1, m2) = ({}, {}, {}) on {n} × {d} training rows (model.K, model.m1, model.m2)",
                split.name,
                model.name(),
                m.k,
                m.m1,
                m.m2
            )
        },
        bytes,
    )?;
    Ok(())
}

/// The seed of one random stream (`stream`, refined by `parts`) of the
/// training `training_seed` on `split`: from the manifest seed, the data's
/// content, the split seed and the training seed, never the data's name.
fn stream_seed(
    experiment: &ClassificationExperiment,
    split: &SplitData,
    training_seed: u64,
    stream: &str,
    parts: &[&str],
) -> u64 {
    let (split_seed, training) = (split.split_seed.to_string(), training_seed.to_string());
    let mut all = vec![stream, &split.content, &split_seed, &training];
    all.extend(parts);
    derive_seed(experiment.seed, &all)
}

/// Runs one cell: the learning-rate search, the final training and the test.
pub(crate) fn run_cell(
    experiment: &ClassificationExperiment,
    split: &SplitData,
    training_seed: u64,
    optimizer: &OptimizerGrid,
    model: ModelKind,
) -> Result<CellOutcome, PipelineError> {
    check_cell_memory(experiment, split, model)?;
    let arrangements = match model {
        ModelKind::Nonconvex => None,
        ModelKind::Convex => Some(sample_arrangements(experiment, split, training_seed)?),
    };
    let ctx = Context {
        experiment,
        split,
        training_seed,
        optimizer,
        model,
        arrangements,
    };
    let grid = match model {
        ModelKind::Nonconvex => &optimizer.nonconvex_lr,
        ModelKind::Convex => &optimizer.convex_lr,
    };

    let t = &experiment.training;
    let search_start = Instant::now();
    let (fit_rows, validation_rows) = validation_split(experiment, split, training_seed)?;
    let x_fit = split.train.x.select(ndarray::Axis(0), &fit_rows);
    let classes_fit: Vec<usize> = fit_rows.iter().map(|&i| split.train_classes[i]).collect();
    let x_val = split.train.x.select(ndarray::Axis(0), &validation_rows);
    let classes_val: Vec<usize> = validation_rows
        .iter()
        .map(|&i| split.train_classes[i])
        .collect();
    let unit_fit = ctx.rate_unit(x_fit.view())?;
    let mut candidates = Vec::with_capacity(grid.len());
    for &lr in grid {
        let fits = ctx.fit_all(x_fit.view(), &classes_fit, lr / unit_fit, t.search_epochs)?;
        let scores = ctx.scores(&fits, x_val.view())?;
        let diverged = fits.iter().any(|f| f.diverged) || !all_finite(&scores);
        candidates.push(Candidate {
            lr,
            validation_accuracy: class_accuracy(&scores, &classes_val),
            validation_loss: ctx.mean_loss(&scores, &classes_val),
            epochs: fits.iter().map(|f| f.epochs).max().unwrap_or(0),
            diverged,
        });
    }
    let search_time_s = search_start.elapsed().as_secs_f64();

    // The final training, at the best rate; should it diverge on the whole
    // training set (longer and on more rows than the search), the next-best
    // rate is used instead and the rejected ones are recorded.
    let start = Instant::now();
    let x = split.train.x.view();
    let unit = ctx.rate_unit(x)?;
    let mut rejected_lrs = Vec::new();
    let mut final_fit = None;
    for index in ranking(&candidates) {
        let lr = candidates[index].lr;
        let fits = ctx.fit_all(x, &split.train_classes, lr / unit, t.epochs)?;
        if fits.iter().any(|f| f.diverged) && rejected_lrs.len() + 1 < candidates.len() {
            rejected_lrs.push(lr);
            continue;
        }
        final_fit = Some((lr, fits));
        break;
    }
    let Some((lr, fits)) = final_fit else {
        return Err(PipelineError::EmptyLearningRateGrid);
    };
    let time_s = start.elapsed().as_secs_f64();
    let train_scores = ctx.scores(&fits, x)?;
    let test_scores = ctx.scores(&fits, split.test.x.view())?;
    let convex = match &ctx.arrangements {
        None => None,
        Some(arrangements) => Some(ctx.convex_check(arrangements, &fits, &test_scores)?),
    };
    Ok(CellOutcome {
        lr,
        rejected_lrs,
        rate_unit: unit,
        train_accuracy: class_accuracy(&train_scores, &split.train_classes),
        test_accuracy: class_accuracy(&test_scores, &split.test_classes),
        objective: fits.iter().map(|f| f.objective).sum(),
        epochs: fits.iter().map(|f| f.epochs).max().unwrap_or(0),
        reached_full_accuracy: fits.iter().all(|f| f.reached),
        diverged: fits.iter().any(|f| f.diverged),
        time_s,
        search_time_s,
        convex,
        candidates,
    })
}

/// `(fit, validation)` rows of the training set: a split stratified by class
/// with its own seed, so it never touches the test rows.
fn validation_split(
    experiment: &ClassificationExperiment,
    split: &SplitData,
    training_seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), PipelineError> {
    let seed = stream_seed(experiment, split, training_seed, "validation", &[]);
    let (fit, validation) = pathreg_data::split::stratified_indices(
        &split.train_classes,
        experiment.data.validation_fraction,
        seed,
    )?;
    if fit.is_empty() || validation.is_empty() {
        return Err(PipelineError::Data(pathreg_data::DataError::Invalid(
            format!(
                "{} (split seed {}): {} training rows are too few to hold out a validation set",
                split.name,
                split.split_seed,
                split.train.n()
            ),
        )));
    }
    Ok((fit, validation))
}

/// The candidates from best to worst: highest validation accuracy, then
/// lowest validation loss, then grid order; diverged runs last.
fn ranking(candidates: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&candidates[a], &candidates[b]);
        a.diverged
            .cmp(&b.diverged)
            .then(b.validation_accuracy.total_cmp(&a.validation_accuracy))
            .then(a.validation_loss.total_cmp(&b.validation_loss))
    });
    order
}

impl Context<'_> {
    /// What the manifest's learning rate is divided by on the rows `x` (see
    /// [`OptimizerGrid`]): `n` for non-convex SGD, `‖X̃‖²` for convex SGD,
    /// 1 for Adam.
    fn rate_unit(&self, x: ArrayView2<f64>) -> Result<f64, PipelineError> {
        Ok(match (self.optimizer.kind, &self.arrangements) {
            (OptimizerKind::Adam, _) => 1.0,
            (OptimizerKind::Sgd { .. }, None) => x.nrows() as f64,
            (OptimizerKind::Sgd { .. }, Some(arrangements)) => {
                let masks = arrangements.masks(x)?;
                unconstrained::operator_norm_squared(x, &masks, POWER_ITERATIONS)?
                    .max(f64::MIN_POSITIVE)
            }
        })
    }

    fn targets(&self, classes: &[usize]) -> Vec<Array1<f64>> {
        binary_targets(self.split.n_classes, classes)
    }

    /// Trains every binary model with the optimizer step `step` for at most
    /// `epochs` epochs.
    fn fit_all(
        &self,
        x: ArrayView2<f64>,
        classes: &[usize],
        step: f64,
        epochs: usize,
    ) -> Result<Vec<BinaryFit>, PipelineError> {
        self.targets(classes)
            .iter()
            .enumerate()
            .map(|(binary, y)| self.fit_binary(x, y, step, epochs, binary))
            .collect()
    }

    /// The seed of binary model `binary`'s network initialization: the same
    /// for both optimizers and every learning rate, so they start alike.
    fn init_seed(&self, binary: usize) -> u64 {
        let binary = binary.to_string();
        stream_seed(
            self.experiment,
            self.split,
            self.training_seed,
            "init",
            &[&binary],
        )
    }

    /// The seed of binary model `binary`'s mini-batch order, per optimizer
    /// and model (the same for every learning rate of the grid).
    fn batch_seed(&self, binary: usize) -> u64 {
        let binary = binary.to_string();
        stream_seed(
            self.experiment,
            self.split,
            self.training_seed,
            "batches",
            &[&binary, self.optimizer.kind.name(), self.model.name()],
        )
    }

    fn fit_binary(
        &self,
        x: ArrayView2<f64>,
        y: &Array1<f64>,
        step: f64,
        epochs: usize,
        binary: usize,
    ) -> Result<BinaryFit, PipelineError> {
        let e = self.experiment;
        let m = &e.model;
        let t = &e.training;
        let mut batches = ChaCha8Rng::seed_from_u64(self.batch_seed(binary));
        let optimizer = match self.optimizer.kind {
            OptimizerKind::Sgd { momentum } => Optimizer::Sgd { lr: step, momentum },
            OptimizerKind::Adam => Optimizer::adam(step),
        };
        match &self.arrangements {
            None => {
                let mut init = ChaCha8Rng::seed_from_u64(self.init_seed(binary));
                let network = ParallelNetwork::lecun_normal(&mut init, m.k, x.ncols(), m.m1, m.m2)?;
                let settings = TrainSettings {
                    optimizer,
                    epochs,
                    batch_size: t.batch_size,
                    loss: m.loss,
                    beta: m.beta,
                    regularizer: Regularizer::Path,
                    record_every: epochs,
                    stop_at_full_accuracy: t.stop_at_full_accuracy,
                };
                let run = train(x, y.view(), network, &settings, &mut batches)?;
                Ok(BinaryFit {
                    objective: run.final_objective.objective,
                    epochs: run.epochs_run,
                    reached: run.train_accuracy >= 1.0,
                    diverged: run.diverged,
                    trained: Trained::Nonconvex(run.network),
                })
            }
            Some(arrangements) => {
                let settings = ConvexTrainSettings {
                    method: ConvexMethod::FirstOrder { optimizer },
                    epochs,
                    batch_size: t.batch_size,
                    objective: self.objective11(),
                    record_every: epochs,
                    stop_at_full_accuracy: t.stop_at_full_accuracy,
                };
                let run = train_convex(x, y.view(), arrangements, &settings, &mut batches)?;
                Ok(BinaryFit {
                    objective: run.final_objective.objective,
                    epochs: run.epochs_run,
                    reached: run.train_accuracy >= 1.0,
                    diverged: run.diverged,
                    trained: Trained::Convex(run.variables),
                })
            }
        }
    }

    fn objective11(&self) -> Objective11 {
        let m = &self.experiment.model;
        Objective11 {
            loss: m.loss,
            beta: m.beta,
            m2: m.m2,
            lambda: self.experiment.training.lambda,
        }
    }

    /// Each binary model's outputs on `x` (convex masks recomputed from the gates).
    fn scores(
        &self,
        fits: &[BinaryFit],
        x: ArrayView2<f64>,
    ) -> Result<Vec<Array1<f64>>, PipelineError> {
        let masks = match &self.arrangements {
            Some(a) => Some(a.masks(x)?),
            None => None,
        };
        fits.iter()
            .map(|fit| match (&fit.trained, &masks) {
                (Trained::Nonconvex(net), _) => Ok(net.predict(x)?),
                (Trained::Convex(vars), Some(masks)) => Ok(unconstrained::predict(x, masks, vars)?),
                (Trained::Convex(_), None) => Err(PipelineError::MissingArrangements),
            })
            .collect()
    }

    fn mean_loss(&self, scores: &[Array1<f64>], classes: &[usize]) -> f64 {
        let n = classes.len().max(1) as f64;
        let total: f64 = scores
            .iter()
            .zip(self.targets(classes))
            .map(|(f, y)| self.experiment.model.loss.value(f.view(), y.view()))
            .sum();
        total / n / scores.len().max(1) as f64
    }

    /// Proposition 1's networks of the trained convex models: their accuracy,
    /// agreement with the convex model, the constraint violation and sparsity.
    fn convex_check(
        &self,
        arrangements: &SampledArrangements,
        fits: &[BinaryFit],
        test_scores: &[Array1<f64>],
    ) -> Result<ConvexCheck, PipelineError> {
        let x = self.split.train.x.view();
        let x_test = self.split.test.x.view();
        let masks = arrangements.masks(x)?;
        let mut mapped_train = Vec::new();
        let mut mapped_test = Vec::new();
        let mut violation_relative: f64 = 0.0;
        let mut active_groups = 0;
        let mut total_groups = 0;
        for fit in fits {
            let Trained::Convex(vars) = &fit.trained else {
                continue;
            };
            let network =
                unconstrained::to_network(arrangements, x, vars, self.experiment.model.m2)?;
            mapped_train.push(network.predict(x)?);
            mapped_test.push(network.predict(x_test)?);
            let report = unconstrained::violation_report(x, &masks, vars)?;
            violation_relative = violation_relative.max(report.relative);
            active_groups += vars.active_groups();
            total_groups += 2 * vars.k();
        }
        Ok(ConvexCheck {
            mapped_train_accuracy: class_accuracy(&mapped_train, &self.split.train_classes),
            mapped_test_accuracy: class_accuracy(&mapped_test, &self.split.test_classes),
            mapped_test_agreement: class_agreement(test_scores, &mapped_test),
            violation_relative,
            active_groups,
            total_groups,
        })
    }
}

/// ±1 targets of each binary model: one for two classes, one per class
/// (one versus rest) otherwise.
pub(super) fn binary_targets(n_classes: usize, classes: &[usize]) -> Vec<Array1<f64>> {
    let pm = |hit: bool| if hit { 1.0 } else { -1.0 };
    if n_classes == 2 {
        vec![classes.iter().map(|&c| pm(c == 1)).collect()]
    } else {
        (0..n_classes)
            .map(|k| classes.iter().map(|&c| pm(c == k)).collect())
            .collect()
    }
}

/// The `K` arrangements of the convex models of `split`'s training
/// `training_seed`: (11) and (21) see the same ones.
pub(super) fn sample_arrangements(
    experiment: &ClassificationExperiment,
    split: &SplitData,
    training_seed: u64,
) -> Result<SampledArrangements, PipelineError> {
    let seed = stream_seed(experiment, split, training_seed, "arrangements", &[]);
    let m = &experiment.model;
    Ok(SampledArrangements::sample(
        &mut ChaCha8Rng::seed_from_u64(seed),
        m.k,
        split.train.d(),
        m.m1,
    )?)
}

fn all_finite(scores: &[Array1<f64>]) -> bool {
    scores.iter().all(|s| s.iter().all(|v| v.is_finite()))
}

/// The predicted class of each row: the sign of the single output for two
/// classes (`> 0` is class 1), else the argmax (the first on ties).
pub(super) fn predicted_classes(scores: &[Array1<f64>]) -> Vec<usize> {
    let n = scores.first().map_or(0, |s| s.len());
    (0..n)
        .map(|i| {
            if scores.len() == 1 {
                usize::from(scores[0][i] > 0.0)
            } else {
                let mut best = 0;
                for (k, s) in scores.iter().enumerate() {
                    if s[i] > scores[best][i] {
                        best = k;
                    }
                }
                best
            }
        })
        .collect()
}

/// Fraction of rows whose predicted class is right (0 for no rows).
pub(super) fn class_accuracy(scores: &[Array1<f64>], classes: &[usize]) -> f64 {
    let predicted = predicted_classes(scores);
    if classes.is_empty() {
        return 0.0;
    }
    let hits = predicted
        .iter()
        .zip(classes)
        .filter(|(p, c)| p == c)
        .count();
    hits as f64 / classes.len() as f64
}

/// Fraction of rows predicted as the same class by two sets of scores (a
/// convex model and Proposition 1's network of it; 1 for no rows).
pub(super) fn class_agreement(scores: &[Array1<f64>], other: &[Array1<f64>]) -> f64 {
    let (a, b) = (predicted_classes(scores), predicted_classes(other));
    if a.is_empty() {
        return 1.0;
    }
    a.iter().zip(&b).filter(|(x, y)| x == y).count() as f64 / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicted_classes_sign_and_argmax() {
        let one = vec![Array1::from(vec![0.5, -0.1, 0.0])];
        assert_eq!(predicted_classes(&one), [1, 0, 0]);
        let three = vec![
            Array1::from(vec![0.1, 2.0, 1.0]),
            Array1::from(vec![0.3, -1.0, 1.0]),
            Array1::from(vec![-0.2, 0.0, 0.5]),
        ];
        assert_eq!(predicted_classes(&three), [1, 0, 0]);
        assert_eq!(class_accuracy(&three, &[1, 0, 1]), 2.0 / 3.0);
    }

    #[test]
    fn ranking_prefers_accuracy_then_loss_then_grid_order_and_avoids_divergence() {
        let c = |acc: f64, loss: f64, diverged: bool| Candidate {
            lr: 0.0,
            validation_accuracy: acc,
            validation_loss: loss,
            epochs: 1,
            diverged,
        };
        assert_eq!(ranking(&[c(0.8, 1.0, false), c(0.9, 2.0, false)]), [1, 0]);
        assert_eq!(ranking(&[c(0.9, 1.0, false), c(0.9, 0.5, false)]), [1, 0]);
        assert_eq!(ranking(&[c(0.9, 0.5, false), c(0.9, 0.5, false)]), [0, 1]);
        assert_eq!(ranking(&[c(0.5, 1.0, false), c(1.0, 0.1, true)]), [0, 1]);
        assert_eq!(
            ranking(&[c(0.5, 1.0, true), c(0.4, 0.1, false), c(0.7, 0.3, false)]),
            [2, 1, 0]
        );
    }
}
