//! One `[constrained]` cell: the constrained convex program (21) over the
//! convex model's `K` sampled arrangements (the same draw as the (11) cell of
//! that split and training seed), solved by ADMM on the whole training set
//! for every binary model, then tested. (21) has no learning rate, so there
//! is no validation search; its objective, duality gap and constraint
//! violation are certified by the solver and reported as they are, converged
//! or not.

use std::time::Instant;

use pathreg_core::limits::{array_bytes, check_allocation, total_bytes};
use pathreg_core::unconstrained::{self, SampledArrangements, SampledVariables};
use pathreg_solvers::solve_admm;
use serde::{Deserialize, Serialize};

use super::manifest::{ClassificationExperiment, ConstrainedSpec};
use super::protocol::{
    SplitData, binary_targets, class_accuracy, class_agreement, sample_arrangements,
};
use crate::PipelineError;

/// A finished `[constrained]` cell (the cached `classification` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConstrainedOutcome {
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Objective (21) at the returned feasible point, summed over the binary models.
    pub objective: f64,
    /// The certified lower bound, summed over the binary models.
    pub lower_bound: f64,
    /// The largest relative duality gap over the binary models.
    pub relative_gap: f64,
    /// The largest relative constraint violation `h/Σ‖Z‖` over the binary models.
    pub violation_relative: f64,
    /// ADMM iterations (the largest over the binary models).
    pub iterations: usize,
    /// Every binary model met both tolerances.
    pub converged: bool,
    /// Groups left non-zero, summed over the binary models.
    pub active_groups: usize,
    /// All groups, summed over the binary models.
    pub total_groups: usize,
    /// Proposition 1's network of the solution: test accuracy and agreement
    /// with the convex model on the test rows.
    pub mapped_test_accuracy: f64,
    pub mapped_test_agreement: f64,
    /// Solve time, seconds.
    pub time_s: f64,
}

/// Refuses a cell whose ADMM iterates (three `n × 2Km1` and three
/// `d × 2Km1` arrays, the `n × n` factor) would exceed the allocation limit.
fn check_memory(
    experiment: &ClassificationExperiment,
    split: &SplitData,
) -> Result<(), PipelineError> {
    let (n, d) = (split.train.n(), split.train.d());
    let m = &experiment.model;
    let columns = 2 * m.k * m.m1;
    let f64_bytes = std::mem::size_of::<f64>();
    let bytes = total_bytes(&[
        array_bytes(4 * f64_bytes, &[n, columns]),
        array_bytes(4 * f64_bytes, &[d, columns]),
        array_bytes(2 * f64_bytes, &[n, n]),
        SampledArrangements::masks_bytes(n, m.k, m.m1),
    ]);
    check_allocation(
        || {
            format!(
                "{}: ADMM for (21) with (K, m1) = ({}, {}) on {n} × {d} training rows (model.K, model.m1)",
                split.name, m.k, m.m1
            )
        },
        bytes,
    )?;
    Ok(())
}

/// Solves (21) for every binary model of `split` and tests the solutions.
pub(crate) fn run_constrained_cell(
    experiment: &ClassificationExperiment,
    split: &SplitData,
    training_seed: u64,
    spec: &ConstrainedSpec,
) -> Result<ConstrainedOutcome, PipelineError> {
    check_memory(experiment, split)?;
    let m = &experiment.model;
    let arrangements = sample_arrangements(experiment, split, training_seed)?;
    let (x, x_test) = (split.train.x.view(), split.test.x.view());
    let masks = arrangements.masks(x)?;
    let test_masks = arrangements.masks(x_test)?;
    let start = Instant::now();
    let mut solutions: Vec<SampledVariables> = Vec::new();
    let mut outcome = ConstrainedOutcome {
        train_accuracy: 0.0,
        test_accuracy: 0.0,
        objective: 0.0,
        lower_bound: 0.0,
        relative_gap: 0.0,
        violation_relative: 0.0,
        iterations: 0,
        converged: true,
        active_groups: 0,
        total_groups: 0,
        mapped_test_accuracy: 0.0,
        mapped_test_agreement: 0.0,
        time_s: 0.0,
    };
    for y in binary_targets(split.n_classes, &split.train_classes) {
        let solve = solve_admm(
            x,
            y.view(),
            &arrangements,
            m.beta,
            m.m2,
            &spec.settings,
            None,
        )?;
        outcome.objective += solve.last.objective;
        outcome.lower_bound += solve.last.lower_bound;
        outcome.relative_gap = outcome.relative_gap.max(solve.last.relative_gap);
        outcome.violation_relative = outcome.violation_relative.max(solve.last.violation);
        outcome.iterations = outcome.iterations.max(solve.last.iteration);
        outcome.converged &= solve.converged;
        outcome.active_groups += solve.variables.active_groups();
        outcome.total_groups += 2 * solve.variables.k();
        solutions.push(solve.variables);
    }
    outcome.time_s = start.elapsed().as_secs_f64();
    let mut train_scores = Vec::new();
    let mut test_scores = Vec::new();
    let mut mapped_test = Vec::new();
    for vars in &solutions {
        train_scores.push(unconstrained::predict(x, &masks, vars)?);
        test_scores.push(unconstrained::predict(x_test, &test_masks, vars)?);
        let network = unconstrained::to_network(&arrangements, x, vars, m.m2)?;
        mapped_test.push(network.predict(x_test)?);
    }
    outcome.train_accuracy = class_accuracy(&train_scores, &split.train_classes);
    outcome.test_accuracy = class_accuracy(&test_scores, &split.test_classes);
    outcome.mapped_test_accuracy = class_accuracy(&mapped_test, &split.test_classes);
    outcome.mapped_test_agreement = class_agreement(&test_scores, &mapped_test);
    Ok(outcome)
}
