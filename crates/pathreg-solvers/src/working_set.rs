//! Exact and fast: solve (21) on a small working set of triples, check the
//! dual constraints (16)–(17) of *every* triple at the solution, add the most
//! violated ones, and repeat until none is violated. The final dual check over
//! the full set is the certificate of global optimality for that set.
//!
//! # Recovering from a stalled interior-point solve
//!
//! Near the optimum of (21) most groups `z_t` are zero, at the apex of their
//! second-order cones, where the KKT systems of the interior-point method can
//! become ill-conditioned: Clarabel can stall (`InsufficientProgress`,
//! `NumericalError`, `MaxIterations`) or end `AlmostSolved` with a point whose
//! cone constraints `C_t` are violated enough that Proposition 1's network
//! moves away from the convex objective. An *attempt* is one run of the
//! working-set loop with fixed interior-point settings; it is *accepted* when
//! [`CertificationStatus::of`] certifies its certificate and Proposition 1's
//! network reproduces its objective to [`CERTIFICATE_TOLERANCE`]. The first
//! attempt uses the caller's settings, so an accepted first attempt is exactly
//! the plain working-set solve. Otherwise, each further attempt keeps the
//! working set grown so far (its triples were violated at earlier iterates)
//! and changes one more setting ([`Recovery`]): first a stronger static
//! regularization of the KKT systems at the same tolerance, then the data and
//! labels rescaled to unit largest entries (the solution mapped back), then the
//! tolerance relaxed a hundredfold per attempt up to [`RELAXED_TOLERANCE_LIMIT`].
//! When no attempt is accepted the best one is returned, uncertified if its
//! certificate says so, with every attempt's outcome: the one with the
//! narrowest bracket `[D, max(P, N)]` around the optimum, where `D` is the
//! certified dual lower bound, `P` the primal objective (21) and `N` the
//! objective (4) of Proposition 1's network (an upper bound on the optimum over
//! exact arrangements even when the cone constraints are violated).

use std::time::Instant;

use ndarray::{ArrayView1, ArrayView2};
use pathreg_core::convex::{
    Certificate, Coupling, TripleGeometry, certificate_from_ratios, group_weight,
};
use pathreg_core::{ArrangementSet, Loss};
use rayon::prelude::*;

use crate::SolverError;
use crate::certify::{CERTIFICATE_TOLERANCE, CertificationStatus, map_proposition1};
use crate::conic::{ConicSettings, ConicSolve, Scaling, solve_conic};

/// The static regularization constant of [`Recovery::Regularized`] attempts:
/// a hundred times Clarabel's default, small against the unit diagonal of the
/// loss block of (21) and large enough to keep the factorizations stable at
/// the cone apexes.
pub const RECOVERY_STATIC_REGULARIZATION: f64 = 1e-6;

/// [`Recovery::Relaxed`] attempts relax the caller's tolerance a hundredfold
/// at a time, but never beyond this.
pub const RELAXED_TOLERANCE_LIMIT: f64 = 1e-6;

/// Parameters of the working-set scheme.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkingSetSettings {
    /// Triples in the first working set (the most violated at `f = 0`).
    pub initial: usize,
    /// Most-violated triples added per round.
    pub add_per_round: usize,
    /// A dual ratio above `1 + tolerance` counts as violated.
    pub tolerance: f64,
    /// Round limit of each attempt.
    pub max_rounds: usize,
    /// Interior-point settings for each solve of the first attempt.
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

/// What an attempt changes in the interior-point settings of the one before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Recovery {
    /// The caller's settings: the plain working-set solve.
    None,
    /// Static regularization [`RECOVERY_STATIC_REGULARIZATION`].
    Regularized,
    /// The regularized settings on data and labels rescaled to unit largest
    /// entries ([`Scaling::to_unit`]).
    Rescaled,
    /// The rescaled settings at a relaxed gap and feasibility tolerance.
    Relaxed {
        /// The relaxed tolerance.
        tolerance: f64,
    },
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// What the attempt changed.
    pub recovery: Recovery,
    /// Its interior-point settings.
    pub conic: ConicSettings,
    /// Clarabel's status in its last round, e.g. "Solved" or "InsufficientProgress".
    pub solver_status: String,
    /// Working-set rounds (Clarabel solves) of the attempt.
    pub rounds: usize,
    /// Working-set size at its last round.
    pub working_set: usize,
    /// Interior-point iterations of the attempt.
    pub iterations: u32,
    /// The certificate of its last solution over the full set.
    pub certificate: Certificate,
    /// Relative difference between Proposition 1's network and the primal objective.
    pub mapped_relative_difference: f64,
    /// Certified, with Proposition 1's network within [`CERTIFICATE_TOLERANCE`].
    pub accepted: bool,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => write!(f, "as given"),
            Self::Regularized => write!(
                f,
                "static regularization {RECOVERY_STATIC_REGULARIZATION:e}"
            ),
            Self::Rescaled => write!(f, "rescaled to unit data and labels"),
            Self::Relaxed { tolerance } => write!(f, "tolerance relaxed to {tolerance:e}"),
        }
    }
}

impl std::fmt::Display for Attempt {
    /// One line: the recovery, Clarabel's last status, the rounds and the certificate.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} after {} rounds ({} iterations) on {} triples; relative gap {:.3e}, \
             max dual ratio {:.9}, Proposition 1 difference {:.2e}; {}",
            self.recovery,
            self.solver_status,
            self.rounds,
            self.iterations,
            self.working_set,
            self.certificate.relative_gap,
            self.certificate.max_ratio,
            self.mapped_relative_difference,
            if self.accepted {
                "accepted"
            } else {
                "not accepted"
            }
        )
    }
}

/// A solution of (21) over a full arrangement set, with its certificate.
#[derive(Debug, Clone)]
pub struct CertifiedSolve {
    /// The last Clarabel solve of the returned attempt.
    pub last: ConicSolve,
    /// Duality gap and dual feasibility over the *full* set.
    pub certificate: Certificate,
    /// Working-set rounds (Clarabel solves) of the returned attempt.
    pub rounds: usize,
    /// Final working-set size of the returned attempt.
    pub working_set: usize,
    /// Total interior-point iterations over all rounds of all attempts.
    pub total_iterations: u32,
    /// Every attempt in order; the last is accepted unless none was.
    pub attempts: Vec<Attempt>,
    /// Wall time of all attempts, seconds.
    pub time_s: f64,
}

/// The problem data every attempt shares.
struct Problem<'a> {
    x: ArrayView2<'a, f64>,
    y: ArrayView1<'a, f64>,
    set: &'a ArrangementSet,
    geometries: Vec<TripleGeometry>,
    beta: f64,
    m2: usize,
    weight: f64,
}

impl Problem<'_> {
    /// The dual ratios of every triple at `v` (constraints (16)–(17)).
    fn ratios_at(&self, v: ArrayView1<f64>) -> Vec<f64> {
        self.geometries
            .par_iter()
            .map(|g| g.dual_ratio(v, self.weight))
            .collect()
    }
}

/// The working set, carried from one attempt to the next.
struct WorkingSet {
    in_set: Vec<bool>,
    members: Vec<usize>,
}

impl WorkingSet {
    /// The triples outside the set whose dual ratio exceeds `1 + tolerance`,
    /// most violated first.
    fn violated(&self, ratios: &[f64], tolerance: f64) -> Vec<usize> {
        let mut violated: Vec<usize> = (0..ratios.len())
            .filter(|&t| !self.in_set[t] && ratios[t] > 1.0 + tolerance)
            .collect();
        violated.sort_by(|&a, &b| ratios[b].total_cmp(&ratios[a]).then(a.cmp(&b)));
        violated
    }

    /// Adds the first `count` of `triples`, keeping the members sorted.
    fn add(&mut self, triples: &[usize], count: usize) {
        for &t in triples.iter().take(count.max(1)) {
            self.in_set[t] = true;
            self.members.push(t);
        }
        self.members.sort_unstable();
    }
}

/// Solves (21) with squared loss over every triple of `set` and certifies it,
/// recovering from stalled interior-point solves as the module documentation
/// describes. Fails only on invalid input or when Clarabel rejects a problem.
pub fn solve_certified(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    set: &ArrangementSet,
    beta: f64,
    m2: usize,
    settings: &WorkingSetSettings,
) -> Result<CertifiedSolve, SolverError> {
    solve_certified_with_coupling(x, y, set, beta, m2, Coupling::Summed, settings)
}

/// [`solve_certified`] with the second-layer constraints of `coupling`
/// (certified against the same constraints).
pub fn solve_certified_with_coupling(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    set: &ArrangementSet,
    beta: f64,
    m2: usize,
    coupling: Coupling,
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
    let problem = Problem {
        x,
        y,
        set,
        geometries: set
            .triples()
            .par_iter()
            .map(|t| TripleGeometry::with_coupling(x, t, coupling))
            .collect(),
        beta,
        m2,
        weight: group_weight(beta, m2),
    };
    let mut working = WorkingSet {
        in_set: vec![false; set.len()],
        members: Vec::new(),
    };
    let violated = working.violated(&problem.ratios_at(y), settings.tolerance);
    if violated.is_empty() {
        // Even at f = 0 no constraint is violated: zero is optimal; solve on one triple.
        working.add(&[0], 1);
    } else {
        working.add(&violated, settings.initial);
    }
    let (first, recoveries) = ladder(&settings.conic, x, y);
    let (attempt, solve, bracket) = run_attempt(&problem, &mut working, settings, first)?;
    let mut attempts = vec![attempt];
    let mut best = (bracket, 0, solve);
    for rung in recoveries {
        if attempts[best.1].accepted {
            break;
        }
        let (attempt, solve, bracket) = run_attempt(&problem, &mut working, settings, rung)?;
        // A NaN bracket (a solve that broke down) is never preferred.
        if attempt.accepted || bracket < best.0 || best.0.is_nan() {
            best = (bracket, attempts.len(), solve);
        }
        attempts.push(attempt);
    }
    let (_, index, last) = best;
    let chosen = &attempts[index];
    Ok(CertifiedSolve {
        last,
        certificate: chosen.certificate,
        rounds: chosen.rounds,
        working_set: chosen.working_set,
        total_iterations: attempts.iter().map(|a| a.iterations).sum(),
        time_s: start.elapsed().as_secs_f64(),
        attempts,
    })
}

/// One attempt's recovery and interior-point settings.
type Rung = (Recovery, ConicSettings);

/// The attempts in order, each changing one more setting: the caller's
/// settings, stronger static regularization, data and labels rescaled to unit
/// largest entries, then the tolerance relaxed a hundredfold at a time up to
/// [`RELAXED_TOLERANCE_LIMIT`] (none when the caller's is already looser).
fn ladder(given: &ConicSettings, x: ArrayView2<f64>, y: ArrayView1<f64>) -> (Rung, Vec<Rung>) {
    let regularized = ConicSettings {
        static_regularization: given
            .static_regularization
            .max(RECOVERY_STATIC_REGULARIZATION),
        ..*given
    };
    let rescaled = ConicSettings {
        scaling: Scaling::to_unit(x, y),
        ..regularized
    };
    let mut recoveries = vec![
        (Recovery::Regularized, regularized),
        (Recovery::Rescaled, rescaled),
    ];
    let mut tolerance = given.tol_gap.max(given.tol_feas);
    while tolerance < RELAXED_TOLERANCE_LIMIT {
        tolerance = (tolerance * 100.0).min(RELAXED_TOLERANCE_LIMIT);
        recoveries.push((
            Recovery::Relaxed { tolerance },
            ConicSettings {
                tol_gap: tolerance,
                tol_feas: tolerance,
                ..rescaled
            },
        ));
    }
    ((Recovery::None, *given), recoveries)
}

/// One run of the working-set loop with `conic`, starting from (and growing)
/// `working`: solve on the working set, check every triple's dual constraints
/// (16)–(17), add the most violated, until none is violated, Clarabel stalls
/// or the round limit is reached. Returns how it ended, its last solve and the
/// width `max(P, N) − D` of the bracket its certificate and Proposition 1's
/// network put around the optimum.
fn run_attempt(
    problem: &Problem<'_>,
    working: &mut WorkingSet,
    settings: &WorkingSetSettings,
    (recovery, conic): Rung,
) -> Result<(Attempt, ConicSolve, f64), SolverError> {
    let (x, y) = (problem.x, problem.y);
    let mut iterations = 0;
    let mut rounds = 0;
    loop {
        rounds += 1;
        let triples: Vec<_> = working
            .members
            .iter()
            .map(|&t| problem.set.triples()[t].clone())
            .collect();
        let geometries: Vec<&TripleGeometry> = working
            .members
            .iter()
            .map(|&t| &problem.geometries[t])
            .collect();
        let solve = solve_conic(
            x,
            y,
            &triples,
            &geometries,
            problem.beta,
            problem.m2,
            &conic,
        )?;
        iterations += solve.iterations;
        let v = &y - &solve.solution.predict(x);
        let ratios = problem.ratios_at(v.view());
        let violated = working.violated(&ratios, settings.tolerance);
        if solve.converged && !violated.is_empty() && rounds < settings.max_rounds {
            working.add(&violated, settings.add_per_round);
            continue;
        }
        let certificate =
            certificate_from_ratios(x, y, &solve.solution, &ratios, problem.beta, problem.m2);
        let mapped = map_proposition1(
            &solve.solution,
            x,
            y,
            problem.beta,
            problem.m2,
            Loss::Squared,
            certificate.primal,
        )?;
        let accepted = violated.is_empty()
            && CertificationStatus::of(&certificate, problem.set.mode())
                != CertificationStatus::Uncertified
            && mapped.relative_difference <= CERTIFICATE_TOLERANCE;
        let bracket = certificate.primal.max(mapped.objective) - certificate.dual;
        let attempt = Attempt {
            recovery,
            conic,
            solver_status: solve.status.clone(),
            rounds,
            working_set: working.members.len(),
            iterations,
            certificate,
            mapped_relative_difference: mapped.relative_difference,
            accepted,
        };
        return Ok((attempt, solve, bracket));
    }
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    fn recoveries(tolerance: f64) -> Vec<Recovery> {
        let given = ConicSettings {
            tol_gap: tolerance,
            tol_feas: tolerance,
            ..ConicSettings::default()
        };
        let x = array![[2.0, -4.0], [1.0, 0.5]];
        let y = array![0.5, -0.25];
        let (first, rest) = ladder(&given, x.view(), y.view());
        assert_eq!(first, (Recovery::None, given));
        let rescaled = &rest[1].1;
        assert_eq!(
            rescaled.scaling,
            Scaling {
                data: 0.25,
                labels: 2.0
            }
        );
        assert_eq!(
            rescaled.static_regularization,
            RECOVERY_STATIC_REGULARIZATION
        );
        rest.iter().map(|(r, _)| *r).collect()
    }

    #[test]
    fn the_ladder_relaxes_the_tolerance_up_to_the_limit_only() {
        use Recovery::*;
        assert_eq!(
            recoveries(1e-8),
            [Regularized, Rescaled, Relaxed { tolerance: 1e-6 }]
        );
        assert_eq!(
            recoveries(1e-7),
            [Regularized, Rescaled, Relaxed { tolerance: 1e-6 }]
        );
        assert_eq!(recoveries(1e-6), [Regularized, Rescaled]);
        assert_eq!(recoveries(1e-3), [Regularized, Rescaled]);
    }
}
