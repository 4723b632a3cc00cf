//! ADMM on program (21) over sampled arrangements against Clarabel on the
//! same triples: the certificate brackets Clarabel's optimum, the returned
//! point is feasible, zeros are exact, results do not depend on the thread
//! count, and a warm start at the solution stops at once.

use ndarray::{Array1, Array2};
use pathreg_core::convex::TripleGeometry;
use pathreg_core::unconstrained::SampledArrangements;
use pathreg_data::synthetic::{TeacherShape, teacher_data};
use pathreg_solvers::{
    AdmmSettings, AdmmSolve, ConicSettings, Precision, Scaling, SolverError, solve_admm,
    solve_conic,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

struct Case {
    x: Array2<f64>,
    y: Array1<f64>,
    arrangements: SampledArrangements,
    beta: f64,
}

fn case(n: usize, d: usize, k: usize, m1: usize, beta: f64) -> Case {
    let (data, _) = teacher_data(n, d, TeacherShape { k: 3, m1: 2, m2: 1 }, 0.1, 5).unwrap();
    let arrangements =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(1), k, d, m1).unwrap();
    Case {
        x: data.x,
        y: data.y,
        arrangements,
        beta,
    }
}

fn clarabel_optimum(c: &Case) -> f64 {
    let triples = c.arrangements.triples(c.x.view()).unwrap();
    let geometries: Vec<TripleGeometry> = triples
        .iter()
        .map(|t| TripleGeometry::new(c.x.view(), t))
        .collect();
    let refs: Vec<&TripleGeometry> = geometries.iter().collect();
    let settings = ConicSettings {
        scaling: Scaling::to_unit(c.x.view(), c.y.view()),
        ..ConicSettings::default()
    };
    let solve = solve_conic(
        c.x.view(),
        c.y.view(),
        &triples,
        &refs,
        c.beta,
        1,
        &settings,
    )
    .unwrap();
    assert!(solve.converged, "{}", solve.status);
    solve.primal_objective
}

fn admm(c: &Case, settings: &AdmmSettings) -> AdmmSolve {
    solve_admm(
        c.x.view(),
        c.y.view(),
        &c.arrangements,
        c.beta,
        1,
        settings,
        None,
    )
    .unwrap()
}

#[test]
fn the_certificate_brackets_clarabels_optimum_at_a_feasible_point() {
    let settings = AdmmSettings {
        max_iterations: 3000,
        ..AdmmSettings::default()
    };
    for c in [case(40, 4, 8, 3, 0.01), case(60, 6, 12, 5, 0.05)] {
        let reference = clarabel_optimum(&c);
        let solve = admm(&c, &settings);
        let last = solve.last;
        // Feasible (restored along the gate points), so never below the optimum.
        assert!(last.violation <= 1e-12, "{last:?}");
        assert!(
            last.objective >= reference * (1.0 - 1e-9),
            "{last:?} vs {reference}"
        );
        // The dual bound holds at every check, converged or not.
        for p in &solve.history {
            assert!(
                p.lower_bound <= reference * (1.0 + 1e-9),
                "{p:?} vs {reference}"
            );
        }
    }
}

#[test]
fn admm_converges_to_clarabels_optimum() {
    let c = case(40, 4, 8, 3, 0.01);
    let reference = clarabel_optimum(&c);
    let solve = admm(&c, &AdmmSettings::default());
    assert!(solve.converged, "{:?}", solve.last);
    assert!(solve.last.relative_gap <= 1e-4);
    let relative = (solve.last.objective - reference) / reference;
    assert!((0.0..=1e-4).contains(&relative), "{relative:e}");
}

#[test]
fn float32_products_hand_over_to_float64_and_reach_clarabels_optimum() {
    let c = case(40, 4, 8, 3, 0.01);
    let reference = clarabel_optimum(&c);
    let solve = admm(
        &c,
        &AdmmSettings {
            precision: Precision::Float32,
            ..AdmmSettings::default()
        },
    );
    assert!(solve.converged, "{:?}", solve.last);
    // Float32 carried the early iterations, float64 the last ones.
    assert!(
        solve.float32_iterations > 0 && solve.float32_iterations < solve.last.iteration,
        "{} of {}",
        solve.float32_iterations,
        solve.last.iteration
    );
    let relative = (solve.last.objective - reference) / reference;
    assert!((0.0..=1e-4).contains(&relative), "{relative:e}");
    assert_eq!(admm(&c, &AdmmSettings::default()).float32_iterations, 0);
}

#[test]
fn whole_blocks_are_exactly_zero() {
    let c = case(60, 6, 12, 5, 0.5);
    let solve = admm(&c, &AdmmSettings::default());
    let norms = solve.variables.group_norms();
    let zeros = norms.iter().filter(|n| **n == 0.0).count();
    assert!(zeros > 0 && zeros < norms.len(), "{norms:?}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let c = case(60, 6, 12, 5, 0.05);
    // Plain, with the Newton polish at 100 and 200 iterations, and with
    // float32 products.
    for (polish_from, precision) in [
        (0, Precision::Float64),
        (100, Precision::Float64),
        (0, Precision::Float32),
    ] {
        let settings = AdmmSettings {
            max_iterations: 300,
            polish_from,
            precision,
            ..AdmmSettings::default()
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| admm(&c, &settings))
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(one.variables, two.variables);
        let without_time = |s: &AdmmSolve| {
            s.history
                .iter()
                .map(|p| (p.iteration, p.objective, p.lower_bound, p.violation, p.rho))
                .collect::<Vec<_>>()
        };
        assert_eq!(without_time(&one), without_time(&two));
    }
}

#[test]
fn a_warm_start_at_the_solution_stops_at_the_first_check() {
    let c = case(40, 4, 8, 3, 0.01);
    let settings = AdmmSettings::default();
    let cold = admm(&c, &settings);
    assert!(cold.converged);
    let warm = solve_admm(
        c.x.view(),
        c.y.view(),
        &c.arrangements,
        c.beta,
        1,
        &settings,
        Some(&cold.variables),
    )
    .unwrap();
    assert!(warm.last.iteration < cold.last.iteration, "{:?}", warm.last);
}

#[test]
fn bad_settings_are_refused() {
    let c = case(20, 3, 4, 2, 0.1);
    for (settings, needle) in [
        (
            AdmmSettings {
                relaxation: 2.0,
                ..AdmmSettings::default()
            },
            "relaxation",
        ),
        (
            AdmmSettings {
                tol_gap: 0.0,
                ..AdmmSettings::default()
            },
            "tolerances",
        ),
        (
            AdmmSettings {
                check_every: 0,
                ..AdmmSettings::default()
            },
            "check_every",
        ),
        (
            AdmmSettings {
                polish_from: 15,
                ..AdmmSettings::default()
            },
            "polish_from",
        ),
    ] {
        let err = solve_admm(
            c.x.view(),
            c.y.view(),
            &c.arrangements,
            0.1,
            1,
            &settings,
            None,
        )
        .unwrap_err();
        assert!(matches!(err, SolverError::Invalid(_)));
        assert!(err.to_string().contains(needle), "{err}");
    }
}
