//! First-order training of the non-convex objective (4) (or its weight-decay
//! variant): mini-batch SGD with momentum and Adam, on hand-written backprop
//! ([`ParallelNetwork::objective_and_gradient`]).

use std::time::Instant;

use ndarray::{Array, Array1, Array2, Array3, ArrayView1, ArrayView2, Axis, Dimension, Zip};
use pathreg_core::{Gradient, Loss, ObjectiveValue, ParallelNetwork, Regularizer};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::SolverError;

/// A first-order optimizer.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Optimizer {
    /// `v ← μ v + g; θ ← θ − η v` (PyTorch's SGD; μ = 0 is plain SGD).
    Sgd {
        /// Learning rate η.
        lr: f64,
        /// Momentum μ.
        momentum: f64,
    },
    /// Adam (Kingma & Ba) with bias correction.
    Adam {
        /// Learning rate.
        lr: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Denominator offset.
        eps: f64,
    },
}

impl Optimizer {
    /// Adam with the usual `(β1, β2, ε) = (0.9, 0.999, 1e-8)`.
    pub fn adam(lr: f64) -> Self {
        Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }

    /// The method's name as written in results ("sgd", "adam").
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
        }
    }

    /// Update number `step` (counted from 1) of the weights `w` by the
    /// gradient `g`. SGD keeps its momentum buffer in `m` and ignores `v`;
    /// Adam keeps its first and second moments in `m` and `v`.
    pub fn update<D: Dimension>(
        &self,
        w: &mut Array<f64, D>,
        g: &Array<f64, D>,
        m: &mut Array<f64, D>,
        v: &mut Array<f64, D>,
        step: i32,
    ) {
        match *self {
            Optimizer::Sgd { lr, momentum } => {
                Zip::from(w).and(g).and(m).for_each(|wi, gi, bi| {
                    *bi = momentum * *bi + gi;
                    *wi -= lr * *bi;
                });
            }
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let c1 = 1.0 - beta1.powi(step);
                let c2 = 1.0 - beta2.powi(step);
                Zip::from(w)
                    .and(g)
                    .and(m)
                    .and(v)
                    .for_each(|wi, gi, mi, vi| {
                        *mi = beta1 * *mi + (1.0 - beta1) * gi;
                        *vi = beta2 * *vi + (1.0 - beta2) * gi * gi;
                        *wi -= lr * (*mi / c1) / ((*vi / c2).sqrt() + eps);
                    });
            }
        }
    }
}

/// What to train and for how long.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainSettings {
    /// The optimizer.
    pub optimizer: Optimizer,
    /// Passes over the data.
    pub epochs: usize,
    /// Mini-batch size (the last batch of an epoch may be smaller).
    pub batch_size: usize,
    /// Loss function.
    pub loss: Loss,
    /// Regularization strength β.
    pub beta: f64,
    /// Path regularizer (objective (4)) or weight decay.
    pub regularizer: Regularizer,
    /// Record the full-data objective every this many epochs (and at the end).
    pub record_every: usize,
    /// Stop after the first epoch whose training accuracy (`sign f = y`,
    /// labels ±1) is 1 — Table 3's "train until training accuracy one". The
    /// exact end-of-epoch accuracy is checked whenever the epoch's running
    /// accuracy (each batch's outputs before its update) is 1.
    pub stop_at_full_accuracy: bool,
}

/// A trained network and its history.
#[derive(Debug, Clone)]
pub struct TrainResult {
    /// Final weights.
    pub network: ParallelNetwork,
    /// Full-data objective at the end.
    pub final_objective: ObjectiveValue,
    /// `(epoch, full-data objective)`; epoch 0 is the initialization.
    pub curve: Vec<(usize, f64)>,
    /// Epochs run (fewer than asked when stopped at full accuracy).
    pub epochs_run: usize,
    /// Training accuracy at the end (labels ±1; meaningful for classification).
    pub train_accuracy: f64,
    /// The run blew up: the outputs or the objective became non-finite
    /// (training stops at the first epoch where that is seen).
    pub diverged: bool,
    /// Wall time, seconds.
    pub time_s: f64,
}

struct OptimizerState {
    m: Gradient,
    v: Gradient,
    step: i32,
}

/// Trains `network` on `(x, y)`; batches are drawn by shuffling with `rng`
/// each epoch, so a seeded `rng` makes the run reproducible.
pub fn train<R: Rng + ?Sized>(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    mut network: ParallelNetwork,
    settings: &TrainSettings,
    rng: &mut R,
) -> Result<TrainResult, SolverError> {
    let start = Instant::now();
    let n = x.nrows();
    crate::check_training_input(n, y.len(), settings.batch_size, settings.record_every)?;
    let objective = |net: &ParallelNetwork| {
        net.objective(x, y, settings.loss, settings.beta, settings.regularizer)
    };
    let mut curve = vec![(0, objective(&network)?.objective)];
    let mut state = OptimizerState {
        m: zeros_like(&network),
        v: zeros_like(&network),
        step: 0,
    };
    let mut order: Vec<usize> = (0..n).collect();
    let full_batch = settings.batch_size >= n;
    let mut epochs_run = settings.epochs;
    for epoch in 1..=settings.epochs {
        if !full_batch {
            order.shuffle(rng);
        }
        // Rows classified right by the outputs each batch saw before its
        // update (the running training accuracy of the epoch).
        let mut running_hits = 0;
        let mut finite = true;
        for batch in order.chunks(settings.batch_size) {
            let (value, grad, outputs) = if full_batch {
                let (value, grad, outputs) = network.objective_gradient_and_outputs(
                    x,
                    y,
                    settings.loss,
                    settings.beta,
                    settings.regularizer,
                    1.0,
                )?;
                running_hits += pathreg_core::unconstrained::hits(outputs.view(), y);
                (value, grad, outputs)
            } else {
                let xb = x.select(Axis(0), batch);
                let yb: Array1<f64> = batch.iter().map(|&i| y[i]).collect();
                let scale = n as f64 / batch.len() as f64;
                let (value, grad, outputs) = network.objective_gradient_and_outputs(
                    xb.view(),
                    yb.view(),
                    settings.loss,
                    settings.beta,
                    settings.regularizer,
                    scale,
                )?;
                running_hits += pathreg_core::unconstrained::hits(outputs.view(), yb.view());
                (value, grad, outputs)
            };
            finite &= value.objective.is_finite() && outputs.iter().all(|v| v.is_finite());
            apply(&mut network, &grad, &mut state, &settings.optimizer);
        }
        // The exact end-of-epoch accuracy is only computed when the running
        // one says every row fits, so stopping costs one pass, not one per epoch.
        let fits = settings.stop_at_full_accuracy
            && running_hits == n
            && pathreg_core::unconstrained::accuracy(network.predict(x)?.view(), y) >= 1.0;
        let due = epoch % settings.record_every == 0 || epoch == settings.epochs;
        if due || fits || !finite {
            let value = objective(&network)?.objective;
            curve.push((epoch, value));
            if fits || !value.is_finite() || !finite {
                epochs_run = epoch;
                break;
            }
        }
    }
    let final_objective = objective(&network)?;
    let f = network.predict(x)?;
    let train_accuracy = pathreg_core::unconstrained::accuracy(f.view(), y);
    let diverged = !final_objective.objective.is_finite() || !f.iter().all(|v| v.is_finite());
    Ok(TrainResult {
        network,
        final_objective,
        curve,
        epochs_run,
        train_accuracy,
        diverged,
        time_s: start.elapsed().as_secs_f64(),
    })
}

fn zeros_like(net: &ParallelNetwork) -> Gradient {
    Gradient {
        w1: Array3::zeros(net.w1().raw_dim()),
        w2: Array3::zeros(net.w2().raw_dim()),
        w3: Array2::zeros(net.w3().raw_dim()),
    }
}

fn apply(
    net: &mut ParallelNetwork,
    grad: &Gradient,
    state: &mut OptimizerState,
    optimizer: &Optimizer,
) {
    state.step += 1;
    let (w1, w2, w3) = net.weights_mut();
    let (m, v) = (&mut state.m, &mut state.v);
    optimizer.update(w1, &grad.w1, &mut m.w1, &mut v.w1, state.step);
    optimizer.update(w2, &grad.w2, &mut m.w2, &mut v.w2, state.step);
    optimizer.update(w3, &grad.w3, &mut m.w3, &mut v.w3, state.step);
}
