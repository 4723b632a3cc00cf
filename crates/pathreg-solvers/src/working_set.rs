//! Exact and fast: solve (21) on a small working set of triples, check the
//! dual constraints (16)–(17) of *every* triple at the solution, add the most
//! violated ones, and repeat until none is violated. The final dual check over
//! the full set is the certificate of global optimality for that set.

use std::time::Instant;

use ndarray::{ArrayView1, ArrayView2};
use pathreg_core::ArrangementSet;
use pathreg_core::convex::{Certificate, TripleGeometry, certificate_from_ratios, group_weight};
use rayon::prelude::*;

use crate::SolverError;
use crate::conic::{ConicSettings, ConicSolve, solve_conic};

/// Parameters of the working-set scheme.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkingSetSettings {
    /// Triples in the first working set (the most violated at `f = 0`).
    pub initial: usize,
    /// Most-violated triples added per round.
    pub add_per_round: usize,
    /// A dual ratio above `1 + tolerance` counts as violated.
    pub tolerance: f64,
    /// Round limit.
    pub max_rounds: usize,
    /// Interior-point settings for each solve.
    pub conic: ConicSettings,
}

impl Default for WorkingSetSettings {
    fn default() -> Self {
        Self {
            initial: 32,
            add_per_round: 32,
            tolerance: crate::CERTIFICATE_TOLERANCE,
            max_rounds: 200,
            conic: ConicSettings::default(),
        }
    }
}

/// A solution of (21) over a full arrangement set, with its certificate.
#[derive(Debug, Clone)]
pub struct CertifiedSolve {
    /// The last Clarabel solve (over the final working set).
    pub last: ConicSolve,
    /// Duality gap and dual feasibility over the *full* set.
    pub certificate: Certificate,
    /// Working-set rounds (Clarabel solves).
    pub rounds: usize,
    /// Final working-set size.
    pub working_set: usize,
    /// Total interior-point iterations over all rounds.
    pub total_iterations: u32,
    /// Wall time, seconds.
    pub time_s: f64,
}

/// Solves (21) with squared loss over every triple of `set` and certifies it.
pub fn solve_certified(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    set: &ArrangementSet,
    beta: f64,
    m2: usize,
    settings: &WorkingSetSettings,
) -> Result<CertifiedSolve, SolverError> {
    let start = Instant::now();
    if set.is_empty() {
        return Err(SolverError::Invalid("the arrangement set is empty".into()));
    }
    if set.n() != x.nrows() {
        return Err(SolverError::Invalid(format!(
            "arrangements are for n = {} samples but the data has {}",
            set.n(),
            x.nrows()
        )));
    }
    let weight = group_weight(beta, m2);
    let geometries: Vec<TripleGeometry> = set
        .triples()
        .par_iter()
        .map(|t| TripleGeometry::new(x, t))
        .collect();
    let ratios_at = |v: ArrayView1<f64>| -> Vec<f64> {
        geometries
            .par_iter()
            .map(|g| g.dual_ratio(v, weight))
            .collect()
    };
    let mut in_set = vec![false; set.len()];
    let mut working: Vec<usize> = Vec::new();
    let mut ratios = ratios_at(y);
    let mut add = settings.initial.max(1);
    let mut total_iterations = 0;
    for round in 1..=settings.max_rounds {
        let mut candidates: Vec<usize> = (0..set.len())
            .filter(|&t| !in_set[t] && ratios[t] > 1.0 + settings.tolerance)
            .collect();
        candidates.sort_by(|&a, &b| ratios[b].total_cmp(&ratios[a]).then(a.cmp(&b)));
        for &t in candidates.iter().take(add) {
            in_set[t] = true;
            working.push(t);
        }
        if candidates.is_empty() {
            // Even at f = 0 no constraint is violated: zero is optimal; solve on one triple.
            in_set[0] = true;
            working.push(0);
        }
        working.sort_unstable();
        add = settings.add_per_round.max(1);
        let triples: Vec<_> = working.iter().map(|&t| set.triples()[t].clone()).collect();
        let geoms: Vec<&TripleGeometry> = working.iter().map(|&t| &geometries[t]).collect();
        let solve = solve_conic(x, y, &triples, &geoms, beta, m2, &settings.conic)?;
        total_iterations += solve.iterations;
        if !solve.converged {
            return Err(SolverError::Clarabel(format!(
                "status {} after {} iterations on {} triples",
                solve.status,
                solve.iterations,
                working.len()
            )));
        }
        let v = &y - &solve.solution.predict(x);
        ratios = ratios_at(v.view());
        let violated = (0..set.len()).any(|t| !in_set[t] && ratios[t] > 1.0 + settings.tolerance);
        if !violated {
            let certificate = certificate_from_ratios(x, y, &solve.solution, &ratios, beta, m2);
            return Ok(CertifiedSolve {
                last: solve,
                certificate,
                rounds: round,
                working_set: working.len(),
                total_iterations,
                time_s: start.elapsed().as_secs_f64(),
            });
        }
    }
    Err(SolverError::Invalid(format!(
        "working set did not close within {} rounds",
        settings.max_rounds
    )))
}
