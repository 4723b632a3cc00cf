//! ADMM on program (21) with several outputs (Appendix A.11) against
//! Clarabel on scalar programs it must reduce to: one-vs-rest groups
//! separate it into one scalar program per class, and with every class's
//! target the same the joint program is the scalar one at `β/√C`, scaled by
//! `C`. Each returned point is feasible, its certificate brackets the
//! reference, zeros are exact, and results do not depend on the thread count.

use ndarray::{Array1, Array2, ArrayView1, Axis};
use pathreg_core::convex::TripleGeometry;
use pathreg_core::multiclass::Grouping;
use pathreg_core::unconstrained::SampledArrangements;
use pathreg_data::synthetic::{TeacherShape, teacher_data};
use pathreg_solvers::{
    AdmmSettings, AdmmSolve, ConicSettings, Precision, Scaling, SolverError, solve_admm_outputs,
    solve_conic,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const CLASSES: usize = 3;

struct Case {
    x: Array2<f64>,
    /// `n × C`: one teacher's labels per class.
    y: Array2<f64>,
    arrangements: SampledArrangements,
}

fn case(n: usize, d: usize, k: usize, m1: usize) -> Case {
    let columns: Vec<(Array2<f64>, Array1<f64>)> = (0..CLASSES as u64)
        .map(|seed| {
            let (data, _) =
                teacher_data(n, d, TeacherShape { k: 3, m1: 2, m2: 1 }, 0.1, 5 + seed).unwrap();
            (data.x, data.y)
        })
        .collect();
    // The same inputs (the first teacher's) for every class.
    let x = columns[0].0.clone();
    let mut y = Array2::zeros((n, CLASSES));
    for (c, (_, labels)) in columns.iter().enumerate() {
        y.column_mut(c).assign(labels);
    }
    let arrangements =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(1), k, d, m1).unwrap();
    Case { x, y, arrangements }
}

fn clarabel_optimum(c: &Case, y: ArrayView1<f64>, beta: f64) -> f64 {
    let triples = c.arrangements.triples(c.x.view()).unwrap();
    let geometries: Vec<TripleGeometry> = triples
        .iter()
        .map(|t| TripleGeometry::new(c.x.view(), t))
        .collect();
    let refs: Vec<&TripleGeometry> = geometries.iter().collect();
    let settings = ConicSettings {
        scaling: Scaling::to_unit(c.x.view(), y),
        ..ConicSettings::default()
    };
    let solve = solve_conic(c.x.view(), y, &triples, &refs, beta, 1, &settings).unwrap();
    assert!(solve.converged, "{}", solve.status);
    solve.primal_objective
}

fn admm(c: &Case, y: &Array2<f64>, grouping: Grouping, beta: f64) -> AdmmSolve<Array2<f64>> {
    solve_admm_outputs(
        c.x.view(),
        (y.view(), grouping),
        &c.arrangements,
        beta,
        1,
        &AdmmSettings::default(),
        None,
    )
    .unwrap()
}

/// The certificate holds at every check, and the converged, feasible point
/// lies within the gap tolerance above the reference.
fn assert_brackets(solve: &AdmmSolve<Array2<f64>>, reference: f64) {
    assert!(solve.converged, "{:?}", solve.last);
    assert!(solve.last.violation <= 1e-12, "{:?}", solve.last);
    for p in &solve.history {
        assert!(
            p.lower_bound <= reference * (1.0 + 1e-9),
            "{p:?} vs {reference}"
        );
    }
    let relative = (solve.last.objective - reference) / reference;
    assert!((-1e-9..=1e-4).contains(&relative), "{relative:e}");
}

#[test]
fn one_vs_rest_groups_solve_one_scalar_program_per_class() {
    let (c, beta) = (case(40, 4, 8, 3), 0.01);
    let reference: f64 = (0..CLASSES)
        .map(|class| clarabel_optimum(&c, c.y.column(class), beta))
        .sum();
    let solve = admm(&c, &c.y, Grouping::OneVsRest, beta);
    assert_brackets(&solve, reference);
    // The joint program's optimum is never above the one-vs-rest one (its
    // regularizer is smaller), so neither is its certified bound.
    let joint = admm(&c, &c.y, Grouping::Joint, beta);
    assert!(joint.converged, "{:?}", joint.last);
    assert!(joint.last.violation <= 1e-12);
    assert!(joint.last.lower_bound <= reference * (1.0 + 1e-9));
    assert!(joint.last.objective <= solve.last.objective * (1.0 + 1e-4));
}

#[test]
fn identical_targets_make_the_joint_program_the_scalar_one_at_a_smaller_beta() {
    // With y_c = y for every class, the same Z_k for every class is optimal
    // (by symmetry and convexity), and there the objective is
    // C·½‖f − y‖² + β' √C Σ‖Z_k‖ = C·[½‖f − y‖² + (β'/√C) Σ‖Z_k‖].
    let (c, beta) = (case(40, 4, 8, 3), 0.02);
    let y = c.y.column(0).insert_axis(Axis(1));
    let repeated = ndarray::concatenate(Axis(1), &[y; CLASSES]).unwrap();
    let scalar = clarabel_optimum(&c, c.y.column(0), beta / (CLASSES as f64).sqrt());
    let solve = admm(&c, &repeated, Grouping::Joint, beta);
    assert_brackets(&solve, CLASSES as f64 * scalar);
}

#[test]
fn float32_products_reach_the_same_certified_optimum_with_vector_outputs() {
    // The identical-targets case, with float32 products until the hand-over.
    let (c, beta) = (case(40, 4, 8, 3), 0.02);
    let y = c.y.column(0).insert_axis(Axis(1));
    let repeated = ndarray::concatenate(Axis(1), &[y; CLASSES]).unwrap();
    let scalar = clarabel_optimum(&c, c.y.column(0), beta / (CLASSES as f64).sqrt());
    let settings = AdmmSettings {
        precision: Precision::Float32,
        ..AdmmSettings::default()
    };
    let solve = solve_admm_outputs(
        c.x.view(),
        (repeated.view(), Grouping::Joint),
        &c.arrangements,
        beta,
        1,
        &settings,
        None,
    )
    .unwrap();
    assert!(solve.float32_iterations > 0, "{:?}", solve.last);
    assert_brackets(&solve, CLASSES as f64 * scalar);
}

#[test]
fn joint_groups_are_zero_across_all_classes() {
    let (c, beta) = (case(60, 6, 12, 5), 0.5);
    let solve = admm(&c, &c.y, Grouping::Joint, beta);
    let w = &solve.variables;
    let width = 5 * CLASSES;
    let norms: Vec<f64> = w
        .axis_chunks_iter(Axis(1), width)
        .map(|g| g.iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let zeros = norms.iter().filter(|n| **n == 0.0).count();
    assert!(zeros > 0 && zeros < norms.len(), "{norms:?}");
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let c = case(60, 6, 12, 5);
    let settings = AdmmSettings {
        max_iterations: 300,
        ..AdmmSettings::default()
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            solve_admm_outputs(
                c.x.view(),
                (c.y.view(), Grouping::Joint),
                &c.arrangements,
                0.05,
                1,
                &settings,
                None,
            )
            .unwrap()
        })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.variables, two.variables);
    let without_time = |s: &AdmmSolve<Array2<f64>>| {
        s.history
            .iter()
            .map(|p| (p.iteration, p.objective, p.lower_bound, p.violation, p.rho))
            .collect::<Vec<_>>()
    };
    assert_eq!(without_time(&one), without_time(&two));
}

#[test]
fn the_polish_with_joint_groups_and_misshapen_targets_are_refused() {
    let c = case(20, 3, 4, 2);
    let polish = AdmmSettings {
        polish_from: 100,
        ..AdmmSettings::default()
    };
    let short = c.y.slice(ndarray::s![..10, ..]).to_owned();
    for (y, settings, needle) in [
        (&c.y, polish, "polish"),
        (&short, AdmmSettings::default(), "targets"),
    ] {
        let err = solve_admm_outputs(
            c.x.view(),
            (y.view(), Grouping::Joint),
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
