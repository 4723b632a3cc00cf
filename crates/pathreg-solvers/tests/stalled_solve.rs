//! Issue #11 item 7: well-posed problems on which the interior-point method
//! stalls (or ends with a point whose Proposition 1 network misses the convex
//! objective) must still end in a certified or an honestly uncertified
//! solution of (21), never in an error.

use ndarray::{Array1, Array2, array};
use pathreg_core::convex::ConvexSolution;
use pathreg_core::{ArrangementMode, ArrangementSet, Loss};
use pathreg_solvers::{
    CERTIFICATE_TOLERANCE, CertificationStatus, CertifiedSolve, ConicSettings, Recovery, Scaling,
    WorkingSetSettings, check_proposition1, map_proposition1, output_error_bounds, solve_certified,
    solve_conic,
};

const BETA: f64 = 0.002;
/// The optimum of the five-row problem found by an independent solver, to 7 digits.
const FIVE_ROW_OPTIMUM: f64 = 0.0683670;
const FIVE_ROW_ROUNDING: f64 = 5e-8;

/// The five-row CSV of the issue: `x1,x2,y`.
fn five_rows() -> (Array2<f64>, Array1<f64>) {
    (
        array![
            [0.1, 0.2],
            [-0.3, 0.5],
            [0.7, -0.2],
            [-0.4, -0.9],
            [0.3, 0.8]
        ],
        array![1.0, -1.0, 0.5, 0.2, -0.7],
    )
}

fn at_tolerance(tolerance: f64) -> WorkingSetSettings {
    let defaults = WorkingSetSettings::default();
    WorkingSetSettings {
        conic: ConicSettings {
            tol_gap: tolerance,
            tol_feas: tolerance,
            ..defaults.conic
        },
        ..defaults
    }
}

fn report(label: &str, solved: &CertifiedSolve, status: CertificationStatus) {
    let c = solved.certificate;
    eprintln!(
        "{label}: objective {:.10}, dual bound {:.10}, gap {:.3e} (relative {:.3e}), status {}, {:.3} s, {} attempts",
        c.primal,
        c.dual,
        c.gap,
        c.relative_gap,
        status.name(),
        solved.time_s,
        solved.attempts.len()
    );
    for attempt in &solved.attempts {
        eprintln!("  {attempt}");
    }
}

/// Solves the five-row problem and checks what any honest answer must satisfy:
/// the dual bound is below the primal objective, the reference optimum lies
/// within the reported gap, and Proposition 1's network agrees with the
/// objective as far as the solution's accuracy explains.
fn solve_five_rows(
    settings: &WorkingSetSettings,
    label: &str,
) -> (CertifiedSolve, CertificationStatus) {
    let (x, y) = five_rows();
    let set = ArrangementSet::enumerate_exact(x.view(), 3).unwrap();
    assert_eq!(set.len(), 4354);
    let solved = solve_certified(x.view(), y.view(), &set, BETA, 1, settings)
        .unwrap_or_else(|e| panic!("{label}: the solve failed: {e}"));
    let status = CertificationStatus::of(&solved.certificate, set.mode());
    report(label, &solved, status);
    let c = solved.certificate;
    assert!(
        c.primal >= c.dual,
        "{label}: primal {} below the dual bound {}",
        c.primal,
        c.dual
    );
    assert!(
        (c.primal - FIVE_ROW_OPTIMUM).abs() <= c.gap + FIVE_ROW_ROUNDING,
        "{label}: objective {} is not within the gap {:e} of {FIVE_ROW_OPTIMUM}",
        c.primal,
        c.gap
    );
    assert!(c.dual <= FIVE_ROW_OPTIMUM + FIVE_ROW_ROUNDING);
    check_proposition1(
        &solved.last.solution,
        x.view(),
        y.view(),
        BETA,
        1,
        Loss::Squared,
        c.primal,
    )
    .unwrap_or_else(|e| panic!("{label}: {e}"));
    (solved, status)
}

/// Before the recovery: `Clarabel: status InsufficientProgress after 25
/// iterations on 76 triples`. Clarabel's stalled iterate is in fact accurate,
/// and the certificate, which never trusts Clarabel's status, says so.
#[test]
fn the_five_row_problem_is_certified_at_the_default_tolerance() {
    let (solved, status) = solve_five_rows(&WorkingSetSettings::default(), "tolerance 1e-10");
    assert_eq!(status, CertificationStatus::CertifiedGlobalOptimum);
    assert!(solved.certificate.relative_gap <= CERTIFICATE_TOLERANCE);
    assert!(solved.attempts.last().unwrap().accepted);
}

#[test]
fn the_five_row_problem_is_certified_at_a_relaxed_tolerance() {
    let (solved, status) = solve_five_rows(&at_tolerance(1e-8), "tolerance 1e-8");
    assert_eq!(status, CertificationStatus::CertifiedGlobalOptimum);
    assert!(solved.attempts.last().unwrap().accepted);
}

/// When every attempt runs out of iterations the best one is returned,
/// uncertified, after the whole recovery ladder, with a bracket that still
/// contains the optimum.
#[test]
fn a_solve_that_never_converges_is_returned_uncertified_with_its_gap() {
    let settings = WorkingSetSettings {
        conic: ConicSettings {
            max_iter: 6,
            ..ConicSettings::default()
        },
        ..WorkingSetSettings::default()
    };
    let (solved, status) = solve_five_rows(&settings, "max_iter 6");
    assert_eq!(status, CertificationStatus::Uncertified);
    let recoveries: Vec<Recovery> = solved.attempts.iter().map(|a| a.recovery).collect();
    assert_eq!(
        recoveries,
        [
            Recovery::None,
            Recovery::Regularized,
            Recovery::Rescaled,
            Recovery::Relaxed { tolerance: 1e-8 },
            Recovery::Relaxed { tolerance: 1e-6 },
        ]
    );
    assert!(solved.attempts.iter().all(|a| !a.accepted));
    assert!(solved.certificate.relative_gap > CERTIFICATE_TOLERANCE);
    assert_eq!(
        solved.total_iterations,
        solved.attempts.iter().map(|a| a.iterations).sum::<u32>()
    );
}

/// A well-scaled problem whose first attempt is certified by its duality gap
/// (relative 7.3e-7) but whose Proposition 1 network misses the objective by
/// 4.3e-6: before the recovery the pipeline failed on it. The regularized
/// attempt is accurate to 1e-11.
#[test]
fn a_first_attempt_whose_network_misses_the_objective_is_retried() {
    let x = Array2::from_shape_vec(
        (5, 2),
        vec![
            0.21937809470393768,
            -0.5642109822066195,
            -0.2096331525364184,
            -0.263171010870795,
            0.17720444871335897,
            0.6643454167656758,
            -0.7925790106189053,
            -0.21990947770156785,
            -0.22680450022917317,
            -0.5405142776966037,
        ],
    )
    .unwrap();
    let y = array![
        1.4770705497974705,
        1.5994524810715978,
        -0.36888788241788123,
        1.0192493394799587,
        0.4976622308672449
    ];
    let set = ArrangementSet::enumerate_exact(x.view(), 3).unwrap();
    let solved = solve_certified(
        x.view(),
        y.view(),
        &set,
        BETA,
        1,
        &WorkingSetSettings::default(),
    )
    .unwrap();
    let status = CertificationStatus::of(&solved.certificate, set.mode());
    report("network mismatch", &solved, status);
    assert_eq!(status, CertificationStatus::CertifiedGlobalOptimum);
    let first = &solved.attempts[0];
    assert!(!first.accepted && first.mapped_relative_difference > CERTIFICATE_TOLERANCE);
    assert_eq!(
        solved.attempts.last().unwrap().recovery,
        Recovery::Regularized
    );
    let mapped = check_proposition1(
        &solved.last.solution,
        x.view(),
        y.view(),
        BETA,
        1,
        Loss::Squared,
        solved.certificate.primal,
    )
    .unwrap();
    assert!(mapped.relative_difference <= CERTIFICATE_TOLERANCE);
    assert_eq!(mapped.tolerance, CERTIFICATE_TOLERANCE);
}

/// Rescaling the data and labels changes the numbers Clarabel sees, never
/// the solution it maps back to.
#[test]
fn a_rescaled_solve_maps_back_to_the_same_solution() {
    let (x, y) = five_rows();
    let set = ArrangementSet::enumerate_exact(x.view(), 1).unwrap();
    let geometries: Vec<_> = set
        .triples()
        .iter()
        .map(|t| pathreg_core::convex::TripleGeometry::new(x.view(), t))
        .collect();
    let refs: Vec<_> = geometries.iter().collect();
    let solve = |scaling: Scaling| {
        let settings = ConicSettings {
            scaling,
            ..ConicSettings::default()
        };
        solve_conic(x.view(), y.view(), set.triples(), &refs, 0.05, 1, &settings).unwrap()
    };
    let plain = solve(Scaling::IDENTITY);
    let scaled = solve(Scaling {
        data: 3.0,
        labels: 0.25,
    });
    assert!(plain.converged && scaled.converged);
    let objective = |s: &pathreg_solvers::ConicSolve| {
        s.solution.objective(x.view(), y.view(), 0.05, 1).objective
    };
    let (a, b) = (objective(&plain), objective(&scaled));
    assert!((a - b).abs() <= 1e-8 * a, "{a} vs {b}");
    assert!((scaled.primal_objective - a).abs() <= 1e-8 * a);
    let (fa, fb) = (
        plain.solution.predict(x.view()),
        scaled.solution.predict(x.view()),
    );
    assert!(fa.iter().zip(&fb).all(|(p, q)| (p - q).abs() <= 1e-6));
    assert_eq!(
        Scaling::to_unit(x.view(), y.view()),
        Scaling {
            data: 1.0 / 0.9,
            labels: 1.0
        }
    );
}

/// The Proposition 1 tolerance widens exactly as far as the solution's cone
/// violations explain, and no further: a network compared with a wrong
/// optimum still fails.
#[test]
fn the_proposition_1_tolerance_follows_the_constraint_violations() {
    let (x, y) = five_rows();
    let set = ArrangementSet::enumerate_exact(x.view(), 3).unwrap();
    let solved = solve_certified(
        x.view(),
        y.view(),
        &set,
        BETA,
        1,
        &WorkingSetSettings::default(),
    )
    .unwrap();
    let solution = &solved.last.solution;
    let exact = map_proposition1(
        solution,
        x.view(),
        y.view(),
        BETA,
        1,
        Loss::Squared,
        solved.certificate.primal,
    )
    .unwrap();
    assert_eq!(exact.tolerance, CERTIFICATE_TOLERANCE);

    // Push the active groups off their cones: z ← z + 1e-5 · (a fixed pattern).
    let bump = |z: &Array2<f64>| {
        Array2::from_shape_fn(z.dim(), |(t, c)| {
            let active = z.row(t).iter().any(|v| v.abs() > 1e-6);
            let pattern = ((t * 7 + c * 3) % 5) as f64 - 2.0;
            z[[t, c]] + if active { 1e-5 * pattern } else { 0.0 }
        })
    };
    let perturbed = ConvexSolution::new(
        solution.triples().to_vec(),
        2,
        bump(solution.z()),
        bump(solution.z_prime()),
    )
    .unwrap();
    // The bound on each output holds sample by sample.
    let bounds = output_error_bounds(&perturbed, x.view());
    let network = perturbed
        .to_network(1, 0.0)
        .unwrap()
        .predict(x.view())
        .unwrap();
    for ((g, f), e) in network
        .iter()
        .zip(&perturbed.predict(x.view()))
        .zip(&bounds)
    {
        assert!((g - f).abs() <= e + 1e-15, "|{g} − {f}| > {e}");
    }
    assert!(bounds.iter().any(|e| *e > 0.0));
    let optimum = perturbed.objective(x.view(), y.view(), BETA, 1).objective;
    let mapped = check_proposition1(
        &perturbed,
        x.view(),
        y.view(),
        BETA,
        1,
        Loss::Squared,
        optimum,
    )
    .unwrap();
    eprintln!(
        "perturbed: relative difference {:e}, tolerance {:e}",
        mapped.relative_difference, mapped.tolerance
    );
    assert!(mapped.relative_difference > CERTIFICATE_TOLERANCE);
    assert!(mapped.tolerance >= mapped.relative_difference);
    let wrong = optimum * (1.0 + 2.0 * mapped.tolerance);
    assert!(
        check_proposition1(
            &perturbed,
            x.view(),
            y.view(),
            BETA,
            1,
            Loss::Squared,
            wrong
        )
        .is_err()
    );
    assert_eq!(set.mode(), ArrangementMode::Exact);
}
