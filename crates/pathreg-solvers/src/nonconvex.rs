//! First-order training of the non-convex objective (4) (or its weight-decay
//! variant): mini-batch SGD with momentum and Adam, on hand-written backprop
//! ([`ParallelNetwork::objective_and_gradient`]).

use std::time::Instant;

use ndarray::{Array, Array1, Array2, Array3, ArrayView1, ArrayView2, Axis, Dimension, Zip};
use num_traits::Float;
use pathreg_core::{Gradient, Loss, ObjectiveValue, ParallelNetwork, Regularizer};
use rand::Rng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

use crate::SolverError;

/// A first-order optimizer, with PyTorch's update rules (`torch.optim`).
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
    /// Adagrad (Duchi et al.): `s ← s + g²; θ ← θ − η g / (√s + ε)`
    /// (PyTorch's, without learning-rate decay).
    Adagrad {
        /// Learning rate η.
        lr: f64,
        /// Denominator offset ε.
        eps: f64,
    },
    /// Adadelta (Zeiler): `a ← ρ a + (1 − ρ) g²;
    /// δ = √(b + ε) / √(a + ε) · g; b ← ρ b + (1 − ρ) δ²; θ ← θ − η δ`.
    Adadelta {
        /// Learning rate η (PyTorch scales the step by it; 1 is the
        /// original method).
        lr: f64,
        /// Decay ρ of both running averages.
        rho: f64,
        /// Offset ε.
        eps: f64,
    },
}

/// An optimizer's per-step constants, in the parameters' float type.
#[derive(Clone, Copy)]
struct StepRule<A> {
    optimizer: Optimizer,
    lr: A,
    momentum: A,
    decay1: A,
    decay2: A,
    eps: A,
    correction1: A,
    correction2: A,
}

impl<A: Float> StepRule<A> {
    fn new(optimizer: Optimizer, step: i32) -> Self {
        let cast = |v: f64| A::from(v).unwrap_or_else(A::nan);
        let zero = A::zero();
        let (lr, momentum, decay1, decay2, eps) = match optimizer {
            Optimizer::Sgd { lr, momentum } => (lr, momentum, 0.0, 0.0, 0.0),
            Optimizer::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => (lr, 0.0, beta1, beta2, eps),
            Optimizer::Adagrad { lr, eps } => (lr, 0.0, 0.0, 0.0, eps),
            Optimizer::Adadelta { lr, rho, eps } => (lr, 0.0, rho, rho, eps),
        };
        let (correction1, correction2) = match optimizer {
            Optimizer::Adam { beta1, beta2, .. } => {
                (cast(1.0 - beta1.powi(step)), cast(1.0 - beta2.powi(step)))
            }
            _ => (zero, zero),
        };
        Self {
            optimizer,
            lr: cast(lr),
            momentum: cast(momentum),
            decay1: cast(decay1),
            decay2: cast(decay2),
            eps: cast(eps),
            correction1,
            correction2,
        }
    }

    /// One weight's update; `m` and `v` are its two state slots.
    #[inline]
    fn apply(&self, w: &mut A, g: A, m: &mut A, v: &mut A) {
        let one = A::one();
        match self.optimizer {
            Optimizer::Sgd { .. } => {
                *m = self.momentum * *m + g;
                *w = *w - self.lr * *m;
            }
            Optimizer::Adam { .. } => {
                *m = self.decay1 * *m + (one - self.decay1) * g;
                *v = self.decay2 * *v + (one - self.decay2) * g * g;
                *w = *w
                    - self.lr * (*m / self.correction1)
                        / ((*v / self.correction2).sqrt() + self.eps);
            }
            Optimizer::Adagrad { .. } => {
                *v = *v + g * g;
                *w = *w - self.lr * g / (v.sqrt() + self.eps);
            }
            Optimizer::Adadelta { .. } => {
                *v = self.decay2 * *v + (one - self.decay2) * g * g;
                let delta = (*m + self.eps).sqrt() / (*v + self.eps).sqrt() * g;
                *m = self.decay1 * *m + (one - self.decay1) * delta * delta;
                *w = *w - self.lr * delta;
            }
        }
    }
}

/// Elements one task of [`Optimizer::update_slice`] updates.
const UPDATE_CHUNK: usize = 1 << 16;

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

    /// Adagrad with PyTorch's `ε = 1e-10`.
    pub fn adagrad(lr: f64) -> Self {
        Optimizer::Adagrad { lr, eps: 1e-10 }
    }

    /// Adadelta with PyTorch's `(ρ, ε) = (0.9, 1e-6)`.
    pub fn adadelta(lr: f64) -> Self {
        Optimizer::Adadelta {
            lr,
            rho: 0.9,
            eps: 1e-6,
        }
    }

    /// The method's name as written in results ("sgd", "adam", "adagrad",
    /// "adadelta").
    pub fn name(&self) -> &'static str {
        match self {
            Optimizer::Sgd { .. } => "sgd",
            Optimizer::Adam { .. } => "adam",
            Optimizer::Adagrad { .. } => "adagrad",
            Optimizer::Adadelta { .. } => "adadelta",
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match *self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::Adagrad { lr, .. }
            | Optimizer::Adadelta { lr, .. } => lr,
        }
    }

    /// The same optimizer with learning rate `lr`.
    pub fn with_lr(mut self, new: f64) -> Self {
        match &mut self {
            Optimizer::Sgd { lr, .. }
            | Optimizer::Adam { lr, .. }
            | Optimizer::Adagrad { lr, .. }
            | Optimizer::Adadelta { lr, .. } => *lr = new,
        }
        self
    }

    /// Update number `step` (counted from 1) of the weights `w` by the
    /// gradient `g`, with the two state slots `m` and `v` (zero before the
    /// first step): SGD's momentum buffer is `m`; Adam's first and second
    /// moments are `m` and `v`; Adagrad's sum of squares is `v`; Adadelta's
    /// running averages of squared steps and squared gradients are `m` and
    /// `v`.
    pub fn update<D: Dimension>(
        &self,
        w: &mut Array<f64, D>,
        g: &Array<f64, D>,
        m: &mut Array<f64, D>,
        v: &mut Array<f64, D>,
        step: i32,
    ) {
        let rule = StepRule::new(*self, step);
        Zip::from(w)
            .and(g)
            .and(m)
            .and(v)
            .for_each(|wi, gi, mi, vi| rule.apply(wi, *gi, mi, vi));
    }

    /// [`Self::update`] on flat slices of any float type, in parallel
    /// chunks (elementwise, so the result does not depend on the thread
    /// count).
    pub fn update_slice<A: Float + Send + Sync>(
        &self,
        w: &mut [A],
        g: &[A],
        m: &mut [A],
        v: &mut [A],
        step: i32,
    ) {
        let rule = StepRule::<A>::new(*self, step);
        w.par_chunks_mut(UPDATE_CHUNK)
            .zip(g.par_chunks(UPDATE_CHUNK))
            .zip(m.par_chunks_mut(UPDATE_CHUNK))
            .zip(v.par_chunks_mut(UPDATE_CHUNK))
            .for_each(|(((w, g), m), v)| {
                for (((wi, gi), mi), vi) in w.iter_mut().zip(g).zip(m).zip(v) {
                    rule.apply(wi, *gi, mi, vi);
                }
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Two steps of `optimizer` from `w = 1` with gradient `0.5`, on an f64
    /// array and on an f32 slice; returns the f64 weights after each step.
    fn two_steps(optimizer: Optimizer) -> (f64, f64) {
        let mut w = array![1.0];
        let (mut m, mut v) = (array![0.0], array![0.0]);
        let g = array![0.5];
        optimizer.update(&mut w, &g, &mut m, &mut v, 1);
        let first = w[0];
        optimizer.update(&mut w, &g, &mut m, &mut v, 2);
        let mut w32 = [1.0f32];
        let (mut m32, mut v32) = ([0.0f32], [0.0f32]);
        for step in 1..=2 {
            optimizer.update_slice(&mut w32, &[0.5], &mut m32, &mut v32, step);
        }
        assert!(
            (f64::from(w32[0]) - w[0]).abs() < 1e-5,
            "{optimizer:?}: f32 {} vs f64 {}",
            w32[0],
            w[0]
        );
        (first, w[0])
    }

    #[test]
    fn one_step_of_each_optimizer_matches_the_hand_computed_update() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        // SGD: v = 0.5, w = 1 − 0.1·0.5; then v = 0.9·0.5 + 0.5 = 0.95, w = 0.95 − 0.095.
        let (a, b) = two_steps(Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        });
        assert!(close(a, 0.95) && close(b, 0.855), "sgd {a} {b}");
        // Adam: both bias-corrected moments equal g and g², so the step is lr·g/(|g| + ε).
        let (a, _) = two_steps(Optimizer::adam(0.1));
        assert!(close(a, 1.0 - 0.1 * 0.5 / (0.5 + 1e-8)), "adam {a}");
        // Adagrad: s = 0.25, w = 1 − 0.1·0.5/(0.5 + ε); then s = 0.5, w −= 0.1·0.5/√0.5.
        let (a, b) = two_steps(Optimizer::adagrad(0.1));
        assert!(
            close(a, 1.0 - 0.1 * 0.5 / (0.5 + 1e-10)) && (b - 0.8292893218813453).abs() < 1e-9,
            "adagrad {a} {b}"
        );
        // Adadelta: a = 0.1·0.25, δ = √(0 + 1e-6)/√(0.025 + 1e-6)·0.5, w = 1 − δ.
        let (a, _) = two_steps(Optimizer::adadelta(1.0));
        assert!(close(a, 0.9968377855834876), "adadelta {a}");
        let mut w = array![1.0];
        let (mut m, mut v) = (array![0.0], array![0.0]);
        Optimizer::adadelta(1.0).update(&mut w, &array![0.5], &mut m, &mut v, 1);
        assert!(
            (m[0] - 9.99960001599936e-07).abs() < 1e-18,
            "adadelta's squared-step average {}",
            m[0]
        );
    }

    #[test]
    fn learning_rates_are_read_and_replaced_for_every_optimizer() {
        for optimizer in [
            Optimizer::Sgd {
                lr: 0.3,
                momentum: 0.9,
            },
            Optimizer::adam(0.3),
            Optimizer::adagrad(0.3),
            Optimizer::adadelta(0.3),
        ] {
            assert_eq!(optimizer.lr(), 0.3);
            let changed = optimizer.with_lr(2.0);
            assert_eq!((changed.lr(), changed.name()), (2.0, optimizer.name()));
        }
    }
}
