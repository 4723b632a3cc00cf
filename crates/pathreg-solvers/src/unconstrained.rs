//! First-order training of the unconstrained convex program (11) (Appendix
//! A.1) over sampled arrangements, as the paper does for Table 3 and Figure 5.
//! The program itself (gates, variables, the objective (11) and Proposition
//! 1's map) is [`pathreg_core::unconstrained`].
//!
//! Three methods, all starting from `Z = Z' = 0`:
//!
//! - **SGD** with momentum and **Adam** ([`Optimizer`], the same update rules
//!   as the non-convex baselines) on mini-batches, using the subgradient of
//!   the whole objective (11): the data term `L + λh` scaled by `n / batch`
//!   (unbiased) and `β' Σ‖Z_k‖_F` with the zero subgradient at zero groups;
//! - **FISTA** (accelerated proximal gradient, full batch): the group norms
//!   are handled *exactly* by their prox (block soft-thresholding, which
//!   produces the exact zeros Proposition 1 prunes), the smooth part is
//!   `L + λ h_μ` where `h_μ` replaces each `(t)+` by its Huber smoothing with
//!   parameter `μ` ([`Penalty::Huber`]). The smoothing is needed because `h` is
//!   piecewise linear: with its subgradient the sufficient-decrease test of
//!   the backtracking line search fails at every kink and the step collapses.
//!   `h_μ ≤ h ≤ h_μ + μ/2` per term, and all reported objectives use the exact
//!   `h`. The step is `1/L` with `L` from a power iteration on the masked
//!   operator (`‖X̃‖²` times the loss curvature), then backtracking
//!   (doubling `L` until `F(x⁺) ≤ F(y) + ⟨∇F(y), x⁺ − y⟩ + L/2 ‖x⁺ − y‖²`)
//!   and a mild decrease of `L` after each accepted step. Momentum is
//!   restarted whenever the (smoothed) objective increases (O'Donoghue &
//!   Candès's function-value restart).
//!
//! One FISTA iteration counts as one epoch. Curves record the exact objective
//! (11) against the optimizer's own wall time (evaluation excluded).

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use pathreg_core::Loss;
use pathreg_core::unconstrained::{
    self, Masks, Objective11, Objective11Value, Penalty, SampledArrangements, SampledVariables,
};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::SolverError;
use crate::nonconvex::Optimizer;

/// Power iterations for FISTA's initial Lipschitz estimate.
const POWER_ITERATIONS: usize = 8;

/// How to minimize (11).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConvexMethod {
    /// Mini-batch SGD (with momentum) or Adam on the subgradient of (11).
    FirstOrder {
        /// The update rule.
        optimizer: Optimizer,
    },
    /// Full-batch FISTA with the exact group-lasso prox, Huber-smoothed `h`,
    /// backtracking and adaptive restart.
    Fista {
        /// The Huber parameter `μ` of the smoothed constraint penalty, in the
        /// units of the pre-activations `x_iᵀ z_kj`.
        smoothing: f64,
    },
}

impl ConvexMethod {
    /// SGD with momentum 0.9 (the paper's choice).
    pub fn sgd(lr: f64) -> Self {
        ConvexMethod::FirstOrder {
            optimizer: Optimizer::Sgd { lr, momentum: 0.9 },
        }
    }
    /// Adam with the usual `(0.9, 0.999, 1e-8)`.
    pub fn adam(lr: f64) -> Self {
        ConvexMethod::FirstOrder {
            optimizer: Optimizer::adam(lr),
        }
    }
    /// FISTA with Huber parameter `μ = 1e-4`.
    pub fn fista() -> Self {
        ConvexMethod::Fista { smoothing: 1e-4 }
    }
    /// "sgd", "adam" or "fista".
    pub fn name(&self) -> &'static str {
        match self {
            ConvexMethod::FirstOrder { optimizer } => optimizer.name(),
            ConvexMethod::Fista { .. } => "fista",
        }
    }
}

/// Settings of [`train_convex`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConvexTrainSettings {
    /// The method.
    pub method: ConvexMethod,
    /// Passes over the data (FISTA: iterations).
    pub epochs: usize,
    /// Mini-batch size for SGD/Adam (ignored by FISTA, which is full batch).
    pub batch_size: usize,
    /// Objective (11): loss, β, m2, λ.
    pub objective: Objective11,
    /// Record the objective every this many epochs (and at the end).
    pub record_every: usize,
    /// Stop after the first epoch whose training accuracy (`sign f = y`,
    /// labels ±1) is 1. For SGD/Adam the exact end-of-epoch accuracy is
    /// checked whenever the epoch's running accuracy (each batch's outputs
    /// before its update) is 1; FISTA checks every iteration.
    pub stop_at_full_accuracy: bool,
}

impl ConvexTrainSettings {
    /// Table 3's model `(β, m2) = (0.5, 1)`, squared loss, `λ = 1`, batch 32,
    /// with the given method and epochs.
    pub fn table3(method: ConvexMethod, epochs: usize) -> Self {
        ConvexTrainSettings {
            method,
            epochs,
            batch_size: 32,
            objective: Objective11 {
                loss: Loss::Squared,
                beta: 0.5,
                m2: 1,
                lambda: 1.0,
            },
            record_every: 1,
            stop_at_full_accuracy: false,
        }
    }
}

/// One recorded point of a run.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct CurvePoint {
    /// Epochs done (0 = initialization).
    pub epoch: usize,
    /// Optimizer wall time so far, seconds (evaluations excluded).
    pub time_s: f64,
    /// Exact objective (11) on the training data.
    pub objective: f64,
    /// Training accuracy (labels ±1).
    pub accuracy: f64,
}

/// A trained convex model and its history.
#[derive(Debug, Clone)]
pub struct ConvexTrainResult {
    /// `(Z, Z')`.
    pub variables: SampledVariables,
    /// Objective (11) at the end.
    pub final_objective: Objective11Value,
    /// Training accuracy at the end.
    pub train_accuracy: f64,
    /// The recorded curve.
    pub curve: Vec<CurvePoint>,
    /// Epochs run (fewer than asked when stopped at full accuracy or on
    /// divergence).
    pub epochs_run: usize,
    /// The run blew up: the objective became non-finite (training stops at
    /// the first recorded epoch where that is seen).
    pub diverged: bool,
    /// Optimizer wall time, seconds (evaluations excluded).
    pub time_s: f64,
}

/// Trains (11) on `(x, y)` over `arrangements`. `rng` only shuffles
/// mini-batches, so a seeded `rng` makes the run bit-reproducible.
pub fn train_convex<R: Rng + ?Sized>(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    arrangements: &SampledArrangements,
    settings: &ConvexTrainSettings,
    rng: &mut R,
) -> Result<ConvexTrainResult, SolverError> {
    let n = x.nrows();
    crate::check_training_input(n, y.len(), settings.batch_size, settings.record_every)?;
    let obj = settings.objective;
    if !(obj.beta >= 0.0 && obj.lambda >= 0.0 && obj.m2 >= 1) {
        return Err(SolverError::Invalid(format!(
            "need β ≥ 0, λ ≥ 0 and m2 ≥ 1, got β = {}, λ = {}, m2 = {}",
            obj.beta, obj.lambda, obj.m2
        )));
    }
    if let ConvexMethod::Fista { smoothing } = settings.method
        && !(smoothing > 0.0 && smoothing.is_finite())
    {
        return Err(SolverError::Invalid(format!(
            "the Huber parameter must be positive, got {smoothing}"
        )));
    }
    let masks = arrangements.masks(x)?;
    let vars = SampledVariables::zeros(arrangements.k(), arrangements.d(), arrangements.m1())?;
    let mut run = Run {
        x,
        y,
        masks: &masks,
        settings,
        curve: Vec::new(),
        timer: 0.0,
    };
    run.record(0, &vars)?;
    let (vars, epochs_run) = match settings.method {
        ConvexMethod::FirstOrder { optimizer } => run.first_order(vars, &optimizer, rng)?,
        ConvexMethod::Fista { smoothing } => run.fista(vars, smoothing)?,
    };
    let (final_objective, f) = unconstrained::evaluate(x, y, &masks, &vars, &obj)?;
    Ok(ConvexTrainResult {
        train_accuracy: unconstrained::accuracy(f.view(), y),
        diverged: !final_objective.objective.is_finite(),
        final_objective,
        curve: run.curve,
        epochs_run,
        time_s: run.timer,
        variables: vars,
    })
}

struct Run<'a> {
    x: ArrayView2<'a, f64>,
    y: ArrayView1<'a, f64>,
    masks: &'a Masks,
    settings: &'a ConvexTrainSettings,
    curve: Vec<CurvePoint>,
    timer: f64,
}

impl Run<'_> {
    /// Records epoch `epoch` when due; returns whether to stop (full
    /// accuracy, or a non-finite objective). The exact training accuracy is
    /// only computed for stopping when `may_fit` (the epoch's running
    /// accuracy was 1) or `blown_up` says so, which saves a full pass per epoch.
    fn after_epoch(
        &mut self,
        epoch: usize,
        vars: &SampledVariables,
        may_fit: bool,
        blown_up: bool,
    ) -> Result<bool, SolverError> {
        let due = epoch.is_multiple_of(self.settings.record_every) || epoch == self.settings.epochs;
        if due || (self.settings.stop_at_full_accuracy && may_fit) || blown_up {
            let point = self.record(epoch, vars)?;
            return Ok(!point.objective.is_finite()
                || (self.settings.stop_at_full_accuracy && point.accuracy >= 1.0));
        }
        Ok(false)
    }

    fn record(&mut self, epoch: usize, vars: &SampledVariables) -> Result<CurvePoint, SolverError> {
        let (value, f) =
            unconstrained::evaluate(self.x, self.y, self.masks, vars, &self.settings.objective)?;
        let point = CurvePoint {
            epoch,
            time_s: self.timer,
            objective: value.objective,
            accuracy: unconstrained::accuracy(f.view(), self.y),
        };
        self.curve.push(point);
        Ok(point)
    }

    fn first_order<R: Rng + ?Sized>(
        &mut self,
        mut vars: SampledVariables,
        optimizer: &Optimizer,
        rng: &mut R,
    ) -> Result<(SampledVariables, usize), SolverError> {
        let n = self.x.nrows();
        let obj = self.settings.objective;
        let full_batch = self.settings.batch_size >= n;
        let mut order: Vec<usize> = (0..n).collect();
        let shape = vars.packed().raw_dim();
        let mut m = Array2::<f64>::zeros(shape);
        let mut v = Array2::<f64>::zeros(shape);
        let mut step = 0i32;
        for epoch in 1..=self.settings.epochs {
            let start = Instant::now();
            if !full_batch {
                order.shuffle(rng);
            }
            // The running training accuracy: rows classified right by the
            // outputs each batch saw before its update.
            let mut running_hits = 0;
            let mut finite = true;
            for batch in order.chunks(self.settings.batch_size) {
                let (term, mut grad) = if full_batch {
                    unconstrained::data_term_and_gradient(
                        self.x,
                        self.y,
                        self.masks,
                        &vars,
                        &obj,
                        1.0,
                        Penalty::Exact,
                    )?
                } else {
                    let xb = self.x.select(Axis(0), batch);
                    let yb: Array1<f64> = batch.iter().map(|&i| self.y[i]).collect();
                    let mb = self.masks.select(batch);
                    let scale = n as f64 / batch.len() as f64;
                    unconstrained::data_term_and_gradient(
                        xb.view(),
                        yb.view(),
                        &mb,
                        &vars,
                        &obj,
                        scale,
                        Penalty::Exact,
                    )?
                };
                vars.add_group_lasso_subgradient(obj.group_weight(), &mut grad);
                running_hits += term.hits;
                finite &= term.loss.is_finite() && term.violation.is_finite();
                step += 1;
                optimizer.update(vars.packed_mut(), &grad, &mut m, &mut v, step);
            }
            self.timer += start.elapsed().as_secs_f64();
            if self.after_epoch(epoch, &vars, running_hits == n && finite, !finite)? {
                return Ok((vars, epoch));
            }
        }
        Ok((vars, self.settings.epochs))
    }

    /// Smoothed data term `L + λ h_μ` and its gradient.
    fn smooth(&self, vars: &SampledVariables, mu: f64) -> Result<(f64, Array2<f64>), SolverError> {
        let obj = &self.settings.objective;
        let (t, g) = unconstrained::data_term_and_gradient(
            self.x,
            self.y,
            self.masks,
            vars,
            obj,
            1.0,
            Penalty::Huber(mu),
        )?;
        Ok((t.loss + obj.lambda * t.violation, g))
    }

    fn smooth_value(&self, vars: &SampledVariables, mu: f64) -> Result<f64, SolverError> {
        let obj = &self.settings.objective;
        let t = unconstrained::data_term(
            self.x,
            self.y,
            self.masks,
            vars,
            obj.loss,
            Penalty::Huber(mu),
        )?;
        Ok(t.loss + obj.lambda * t.violation)
    }

    fn fista(
        &mut self,
        vars: SampledVariables,
        mu: f64,
    ) -> Result<(SampledVariables, usize), SolverError> {
        let start = Instant::now();
        let obj = self.settings.objective;
        let weight = obj.group_weight();
        let mut lipschitz = self.lipschitz_estimate()?;
        let mut x_prev = vars.clone();
        let mut yk = vars;
        let mut t = 1.0f64;
        let mut f_prev = f64::INFINITY;
        self.timer += start.elapsed().as_secs_f64();
        for epoch in 1..=self.settings.epochs {
            let start = Instant::now();
            let (fy, gy) = self.smooth(&yk, mu)?;
            let (x_next, f_next) = loop {
                let mut cand = yk.clone();
                cand.packed_mut().scaled_add(-1.0 / lipschitz, &gy);
                cand.prox_group_lasso(weight / lipschitz);
                let diff = cand.packed() - yk.packed();
                let f_cand = self.smooth_value(&cand, mu)?;
                let model = fy + (&diff * &gy).sum() + 0.5 * lipschitz * (&diff * &diff).sum();
                if f_cand <= model + 1e-12 * fy.abs().max(1.0) || !lipschitz.is_finite() {
                    break (cand, f_cand);
                }
                lipschitz *= 2.0;
            };
            let total = f_next + weight * x_next.group_norms().iter().sum::<f64>();
            let mut next_y = x_next.clone();
            if total > f_prev {
                // Adaptive restart: drop the momentum.
                t = 1.0;
            } else {
                let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
                let beta = (t - 1.0) / t_next;
                let mut momentum = x_next.packed() - x_prev.packed();
                momentum *= beta;
                *next_y.packed_mut() += &momentum;
                t = t_next;
            }
            f_prev = total;
            x_prev = x_next;
            yk = next_y;
            lipschitz *= 0.95;
            self.timer += start.elapsed().as_secs_f64();
            if self.after_epoch(epoch, &x_prev, true, false)? {
                return Ok((x_prev, epoch));
            }
        }
        Ok((x_prev, self.settings.epochs))
    }

    /// `c_L ‖X̃‖²` by [`POWER_ITERATIONS`] power iterations on the masked operator, where `c_L`
    /// bounds the loss curvature (1 squared, ¼ logistic; the hinge loss is not
    /// smooth and gets 1), the starting point of backtracking. The smoothed
    /// penalty's curvature (up to λ/μ ‖X‖² where every term sits in its
    /// quadratic zone) is left to backtracking: bounding it a priori gives
    /// uselessly short steps.
    fn lipschitz_estimate(&self) -> Result<f64, SolverError> {
        let sigma2 = unconstrained::operator_norm_squared(self.x, self.masks, POWER_ITERATIONS)?;
        let curvature = match self.settings.objective.loss {
            Loss::Logistic => 0.25,
            Loss::Squared | Loss::Hinge => 1.0,
        };
        Ok((curvature * sigma2).max(f64::MIN_POSITIVE))
    }
}
