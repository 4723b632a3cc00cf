//! The unconstrained convex program (11) over sampled arrangements on small
//! UCI datasets from the read-only mirror `../shared/datasets` (skipped with a
//! note when it is absent): descent of every solver, Proposition 1's map,
//! accuracy and determinism. Timings and the solver comparison are in
//! `cargo xtask bench`.

mod common;

use common::uci;
use pathreg_core::unconstrained::{self, SampledArrangements};
use pathreg_solvers::{ConvexMethod, ConvexTrainSettings, train_convex};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

fn settings(method: ConvexMethod, epochs: usize, lambda: f64) -> ConvexTrainSettings {
    let mut s = ConvexTrainSettings::table3(method, epochs);
    s.objective.lambda = lambda;
    s
}

fn methods() -> [ConvexMethod; 3] {
    [
        ConvexMethod::sgd(1e-7),
        ConvexMethod::adam(1e-5),
        ConvexMethod::fista(),
    ]
}

#[test]
fn objective_11_decreases_under_each_solver() {
    let Some((train_set, _)) = uci("ionosphere") else {
        return;
    };
    let (x, y) = (train_set.x.view(), train_set.y.view());
    let arr =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(1), 10, x.ncols(), 20).unwrap();
    for method in methods() {
        let s = settings(method, 15, 1.0);
        let run = train_convex(x, y, &arr, &s, &mut ChaCha8Rng::seed_from_u64(2)).unwrap();
        let first = run.curve[0].objective;
        let last = run.final_objective.objective;
        eprintln!(
            "{}: {first:.3} -> {last:.3} in {:.3} s",
            method.name(),
            run.time_s
        );
        assert!(last < first, "{}: {first} -> {last}", method.name());
        assert_eq!(run.curve.last().map(|p| p.objective), Some(last));
    }
}

#[test]
fn mapped_network_predicts_like_the_convex_model_up_to_the_violation() {
    let Some((train_set, test_set)) = uci("ionosphere") else {
        return;
    };
    let (x, y) = (train_set.x.view(), train_set.y.view());
    let arr =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(3), 8, x.ncols(), 10).unwrap();
    let s = settings(ConvexMethod::fista(), 30, 1.0);
    let run = train_convex(x, y, &arr, &s, &mut ChaCha8Rng::seed_from_u64(4)).unwrap();
    let vars = &run.variables;
    for data in [&train_set, &test_set] {
        let masks = arr.masks(data.x.view()).unwrap();
        let report = unconstrained::violation_report(data.x.view(), &masks, vars).unwrap();
        let net = unconstrained::to_network(&arr, data.x.view(), vars, 1).unwrap();
        let f_convex = unconstrained::predict(data.x.view(), &masks, vars).unwrap();
        let f_net = net.predict(data.x.view()).unwrap();
        let l1: f64 = f_convex
            .iter()
            .zip(&f_net)
            .map(|(a, b)| (a - b).abs())
            .sum();
        eprintln!(
            "n = {}: Σ|Δf| = {l1:.3e} ≤ h = {:.3e} (relative {:.3e}, max {:.3e}); {} sub-networks",
            data.x.nrows(),
            report.total,
            report.relative,
            report.max,
            net.num_subnetworks()
        );
        assert!(l1 <= report.total * (1.0 + 1e-9) + 1e-12);
        assert!(net.num_subnetworks() <= 2 * arr.k());
        // Path norm of the mapped network = Σ‖Z‖ (m2 = 1).
        let norms: f64 = vars.group_norms().iter().sum();
        assert!((net.path_regularizer() - norms).abs() <= 1e-9 * norms.max(1.0));
        let acc_convex =
            unconstrained::model_accuracy(&arr, vars, data.x.view(), data.y.view()).unwrap();
        let acc_net = unconstrained::network_accuracy(&net, data.x.view(), data.y.view()).unwrap();
        eprintln!("accuracy: convex {acc_convex:.3}, network {acc_net:.3}");
    }
}

#[test]
fn training_accuracy_reaches_one_on_acute_inflammation() {
    let Some((train_set, test_set)) = uci("acute-inflammation") else {
        return;
    };
    let (x, y) = (train_set.x.view(), train_set.y.view());
    let arr =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(5), 40, x.ncols(), 100).unwrap();
    for method in methods() {
        let mut s = settings(method, 200, 1.0);
        s.stop_at_full_accuracy = true;
        let run = train_convex(x, y, &arr, &s, &mut ChaCha8Rng::seed_from_u64(6)).unwrap();
        let test_acc = unconstrained::model_accuracy(
            &arr,
            &run.variables,
            test_set.x.view(),
            test_set.y.view(),
        )
        .unwrap();
        eprintln!(
            "{}: train accuracy 1 after {} epochs ({:.3} s); test {test_acc:.3}",
            method.name(),
            run.epochs_run,
            run.time_s
        );
        assert_eq!(run.train_accuracy, 1.0, "{}", method.name());
    }
}

#[test]
fn ionosphere_test_accuracy_is_sane_with_table3_sizes() {
    let Some((train_set, test_set)) = uci("ionosphere") else {
        return;
    };
    let (x, y) = (train_set.x.view(), train_set.y.view());
    let arr =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(7), 40, x.ncols(), 100).unwrap();
    let mut s = settings(ConvexMethod::sgd(1e-7), 100, 1.0);
    s.stop_at_full_accuracy = true;
    let run = train_convex(x, y, &arr, &s, &mut ChaCha8Rng::seed_from_u64(8)).unwrap();
    let test_acc =
        unconstrained::model_accuracy(&arr, &run.variables, test_set.x.view(), test_set.y.view())
            .unwrap();
    eprintln!(
        "ionosphere: train {:.3} after {} epochs ({:.2} s), test {test_acc:.3}",
        run.train_accuracy, run.epochs_run, run.time_s
    );
    assert!(test_acc > 0.6, "test accuracy {test_acc}");
}

#[test]
fn same_seed_gives_bit_identical_runs() {
    let Some((train_set, _)) = uci("balloons") else {
        return;
    };
    let (x, y) = (train_set.x.view(), train_set.y.view());
    let run = |seed: u64| {
        let arr =
            SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(seed), 5, x.ncols(), 7)
                .unwrap();
        let mut s = settings(ConvexMethod::sgd(1e-3), 5, 1.0);
        s.batch_size = 4;
        train_convex(x, y, &arr, &s, &mut ChaCha8Rng::seed_from_u64(seed))
            .unwrap()
            .variables
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn rejects_bad_settings() {
    let x = ndarray::Array2::<f64>::zeros((4, 2));
    let y = ndarray::Array1::<f64>::ones(4);
    let arr = SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(1), 2, 2, 2).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut s = settings(ConvexMethod::Fista { smoothing: 0.0 }, 2, 1.0);
    assert!(train_convex(x.view(), y.view(), &arr, &s, &mut rng).is_err());
    s.method = ConvexMethod::sgd(1e-3);
    s.batch_size = 0;
    assert!(train_convex(x.view(), y.view(), &arr, &s, &mut rng).is_err());
    s.batch_size = 2;
    assert!(train_convex(x.view(), y.slice(ndarray::s![..3]), &arr, &s, &mut rng).is_err());
    let wrong_d = SampledArrangements::sample(&mut rng, 2, 3, 2).unwrap();
    assert!(train_convex(x.view(), y.view(), &wrong_d, &s, &mut rng).is_err());
}
