//! End-to-end checks of the convex training on the Table 2 toy problem
//! (n = 5, d = 2, teacher (3, 5, 3, 1), β = 0.002, m1 = 3, m2 = 1).

use ndarray::{Array1, Array2};
use pathreg_core::{ArrangementSet, Loss, ParallelNetwork, Regularizer};
use pathreg_data::synthetic::{TeacherShape, teacher_data};
use pathreg_solvers::{Optimizer, TrainSettings, WorkingSetSettings, solve_certified, train};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const BETA: f64 = 0.002;

fn toy(seed: u64) -> (Array2<f64>, Array1<f64>) {
    let (data, _) = teacher_data(5, 2, TeacherShape { k: 5, m1: 3, m2: 1 }, 0.0, seed).unwrap();
    (data.x, data.y)
}

#[test]
fn certified_optimum_maps_to_a_network_with_the_same_objective() {
    let (x, y) = toy(2021);
    let set = ArrangementSet::enumerate_exact(x.view(), 3).unwrap();
    eprintln!("exact triples: {}", set.len());
    assert!(set.len() > 1000);
    let solved = solve_certified(
        x.view(),
        y.view(),
        &set,
        BETA,
        1,
        &WorkingSetSettings::default(),
    )
    .unwrap();
    let cert = solved.certificate;
    eprintln!(
        "{cert:?} rounds {} ws {} time {:.3}",
        solved.rounds, solved.working_set, solved.time_s
    );
    assert!(
        cert.max_ratio <= 1.0 + 1e-6,
        "dual infeasible: {}",
        cert.max_ratio
    );
    assert!(cert.relative_gap < 1e-6, "gap {}", cert.relative_gap);

    let solution = &solved.last.solution;
    let convex = solution.objective(x.view(), y.view(), BETA, 1);
    let net = solution.to_network(1, 0.0).unwrap();
    let mapped = net
        .objective(x.view(), y.view(), Loss::Squared, BETA, Regularizer::Path)
        .unwrap();
    let rel = (mapped.objective - convex.objective).abs() / convex.objective;
    eprintln!(
        "convex {convex:?} mapped {mapped:?} rel {rel:e} K* {}",
        solution.active_groups(1e-6)
    );
    assert!(rel < 1e-6, "Prop. 1 map changes the objective by {rel:e}");
    let f_net = net.predict(x.view()).unwrap();
    let f_cvx = solution.predict(x.view());
    for (a, b) in f_net.iter().zip(&f_cvx) {
        assert!((a - b).abs() < 1e-7 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

#[test]
fn convex_optimum_is_below_every_sgd_run() {
    for seed in [1u64, 2] {
        let (x, y) = toy(seed);
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
        let optimum = solved.certificate.primal;
        for k in [5, 20] {
            for run in 0..3u64 {
                let mut rng = ChaCha8Rng::seed_from_u64(100 * seed + run);
                let init = ParallelNetwork::lecun_normal(&mut rng, k, 2, 3, 1).unwrap();
                let settings = TrainSettings {
                    optimizer: Optimizer::Sgd {
                        lr: 0.01,
                        momentum: 0.9,
                    },
                    epochs: 5000,
                    batch_size: 5,
                    loss: Loss::Squared,
                    beta: BETA,
                    regularizer: Regularizer::Path,
                    record_every: 1000,
                    stop_at_full_accuracy: false,
                };
                let result = train(x.view(), y.view(), init, &settings, &mut rng).unwrap();
                let sgd = result.final_objective.objective;
                eprintln!("seed {seed} K {k} run {run}: sgd {sgd:.6} convex {optimum:.6}");
                assert!(
                    optimum <= sgd * (1.0 + 1e-6),
                    "convex {optimum} above SGD {sgd}"
                );
            }
        }
    }
}

#[test]
fn proposition_1_holds_with_several_second_layer_neurons() {
    let (x, y) = toy(7);
    let set = ArrangementSet::enumerate_exact(x.view(), 2).unwrap();
    for m2 in [2, 3] {
        let solved = solve_certified(
            x.view(),
            y.view(),
            &set,
            0.01,
            m2,
            &WorkingSetSettings::default(),
        )
        .unwrap();
        let solution = &solved.last.solution;
        let convex = solution.objective(x.view(), y.view(), 0.01, m2);
        let net = solution.to_network(m2, 0.0).unwrap();
        assert_eq!(net.m2(), m2);
        let mapped = net
            .objective(x.view(), y.view(), Loss::Squared, 0.01, Regularizer::Path)
            .unwrap();
        let rel = (mapped.objective - convex.objective).abs() / convex.objective;
        assert!(rel < 1e-6, "m2 = {m2}: relative difference {rel:e}");
        assert!(solved.certificate.relative_gap < 1e-6);
    }
}

#[test]
fn a_sampled_subset_gives_an_optimum_no_lower_than_the_exact_set() {
    let (x, y) = toy(2021);
    let exact = ArrangementSet::enumerate_exact(x.view(), 3).unwrap();
    let sampled =
        ArrangementSet::sample(x.view(), 3, 2000, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
    assert!(sampled.len() < exact.len());
    let settings = WorkingSetSettings::default();
    let p_exact = solve_certified(x.view(), y.view(), &exact, BETA, 1, &settings)
        .unwrap()
        .certificate;
    let p_sampled = solve_certified(x.view(), y.view(), &sampled, BETA, 1, &settings)
        .unwrap()
        .certificate;
    // The sampled optimum is certified for its own set only: it can only be higher.
    assert!(p_sampled.primal >= p_exact.primal * (1.0 - 1e-6));
    // Checked against the full set, its dual point is infeasible or it is optimal too.
    let full = pathreg_core::convex::squared_loss_certificate(
        x.view(),
        y.view(),
        &solve_certified(x.view(), y.view(), &sampled, BETA, 1, &settings)
            .unwrap()
            .last
            .solution,
        exact.triples(),
        BETA,
        1,
    );
    assert!(
        full.dual <= p_exact.primal * (1.0 + 1e-9),
        "weak duality violated"
    );
    eprintln!(
        "exact {} sampled {} (P = {} of {})",
        p_exact.primal,
        p_sampled.primal,
        sampled.len(),
        exact.len()
    );
}
