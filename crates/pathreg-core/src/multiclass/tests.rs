//! Independent checks of the float32 kernels: gradients against central
//! finite differences, Proposition 1's map against the convex model, and
//! bit-identical results at different thread counts.

use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::*;
use crate::network::{Regularizer, standard_normal};
use crate::unconstrained::SampledArrangements;

fn problem(n: usize, d: usize, classes: usize, seed: u64) -> ImageSet {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_fn((n, d), |_| standard_normal(&mut rng) as f32);
    let labels = (0..n).map(|i| (i * 7 + 3) % classes).collect();
    ImageSet::new(x, labels, classes).unwrap()
}

fn random_params(count: usize, scale: f64, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| (standard_normal(&mut rng) * scale) as f32)
        .collect()
}

/// `J` on `rows` in float64 sums of float32 kernels.
fn objective<M: Model>(
    model: &M,
    params: &[f32],
    set: &ImageSet,
    prepared: &M::Prepared,
    rows: &[usize],
    lambda: f64,
) -> f64 {
    let (_, value) = model.outputs(params, set, prepared, rows);
    (value.loss / set.classes() as f64 + lambda * value.violation) / rows.len() as f64
        + model.regularizer(params)
}

/// Compares the analytic gradient with central differences on `probes`
/// coordinates, skipping coordinates where a ReLU kink lies within the step
/// (the difference quotients on both sides then disagree).
fn check_gradient<M: Model>(
    model: &M,
    params: &[f32],
    set: &ImageSet,
    lambda: f64,
    probes: &[usize],
) {
    let prepared = model.prepare(set).unwrap();
    let rows: Vec<usize> = (0..set.n()).collect();
    let mut grad = vec![0.0f32; params.len()];
    model.data_gradient(params, set, &prepared, &rows, &mut grad);
    model.add_regularizer_gradient(params, &mut grad);
    let h = 1e-2f32;
    let mut compared = 0;
    for &p in probes {
        let at = |delta: f32| {
            let mut moved = params.to_vec();
            moved[p] += delta;
            objective(model, &moved, set, &prepared, &rows, lambda)
        };
        let (minus, centre, plus) = (at(-h), at(0.0), at(h));
        let left = (centre - minus) / f64::from(h);
        let right = (plus - centre) / f64::from(h);
        let curvature_scale = 1e-2 * (1.0 + left.abs().max(right.abs()));
        if (left - right).abs() > curvature_scale {
            continue;
        }
        let numeric = (plus - minus) / (2.0 * f64::from(h));
        let analytic = f64::from(grad[p]);
        assert!(
            (numeric - analytic).abs() <= 2e-2 * (1.0 + numeric.abs()),
            "parameter {p}: finite difference {numeric}, gradient {analytic}"
        );
        compared += 1;
    }
    assert!(
        compared * 4 >= probes.len() * 3,
        "only {compared} of {} probes were smooth",
        probes.len()
    );
}

fn convex_model(
    set: &ImageSet,
    k: usize,
    m1: usize,
    grouping: Grouping,
    lambda: f64,
) -> ConvexModel {
    let arrangements =
        SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(5), k, set.d(), m1).unwrap();
    ConvexModel::new(&arrangements, set.classes(), grouping, 0.05, 1, lambda).unwrap()
}

#[test]
fn convex_gradients_match_finite_differences() {
    let set = problem(24, 5, 3, 1);
    for grouping in [Grouping::Joint, Grouping::OneVsRest] {
        let model = convex_model(&set, 3, 4, grouping, 0.7);
        let params = random_params(model.parameters(), 0.3, 2);
        let probes: Vec<usize> = (0..model.parameters()).step_by(7).collect();
        check_gradient(&model, &params, &set, 0.7, &probes);
    }
}

#[test]
fn network_gradients_match_finite_differences() {
    let set = problem(20, 4, 3, 3);
    for (m2, regularizer) in [
        (1, Regularizer::Path),
        (2, Regularizer::Path),
        (2, Regularizer::WeightDecay),
    ] {
        let shape = NetworkShape {
            d: 4,
            k: 3,
            m1: 5,
            m2,
            classes: 3,
        };
        let model = NetworkModel::new(shape, regularizer, 0.03).unwrap();
        let params = model.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(4));
        let probes: Vec<usize> = (0..model.parameters()).collect();
        check_gradient(&model, &params, &set, 0.0, &probes);
    }
}

#[test]
fn path_regularizer_is_a11s() {
    let shape = NetworkShape {
        d: 2,
        k: 1,
        m1: 2,
        m2: 2,
        classes: 2,
    };
    let model = NetworkModel::new(shape, Regularizer::Path, 1.0).unwrap();
    // W1 = [[1, 0], [0, 2]] (‖w1_1‖² = 1, ‖w1_2‖² = 4), W2 = [[1, 2], [3, 4]], W3 = [[1, 1], [0, 2]].
    let params = [1.0, 0.0, 0.0, 2.0, 1.0, 2.0, 3.0, 4.0, 1.0, 1.0, 0.0, 2.0];
    // Σ ‖w1_j1‖² w2_j1j2² ‖w3_j2‖² = 1·1·2 + 1·4·4 + 4·9·2 + 4·16·4 = 346.
    assert!((model.regularizer(&params) - 346f64.sqrt()).abs() < 1e-5);
}

#[test]
fn proposition1_network_predicts_like_the_convex_model_where_the_constraints_hold() {
    let set = problem(40, 6, 4, 6);
    let model = convex_model(&set, 4, 5, Grouping::Joint, 1.0);
    let masks = model.prepare(&set).unwrap();
    let mut params = random_params(model.parameters(), 0.2, 7);
    // Zero some blocks: the map prunes them.
    params.iter_mut().step_by(3).for_each(|v| *v = 0.0);
    let mapped = to_network(&model, &params).unwrap();
    let rows: Vec<usize> = (0..set.n()).collect();
    let check = check_map(&model, &params, &mapped, &set, &masks, &rows);
    assert_eq!(check.samples, 40);
    assert!(
        check.violation > 0.0,
        "random variables violate the constraints"
    );
    assert!(
        check.output_difference <= check.violation * (1.0 + 1e-4) + 1e-4,
        "{check:?}"
    );

    // At Z = Z' = 0 every constraint holds on every row, and both models output zero.
    let zeros = vec![0.0f32; model.parameters()];
    let mapped_zero = to_network(&model, &zeros).unwrap();
    let at_zero = check_map(&model, &zeros, &mapped_zero, &set, &masks, &rows);
    assert_eq!(at_zero.feasible_samples, 40);
    assert_eq!(at_zero.feasible_max_difference, 0.0);
    assert!(check.feasible_max_difference <= 1e-4, "{check:?}");
    let expected_path: f64 = {
        let w = model.variables(&params);
        let mut total = 0.0;
        for s in 0..2 {
            for kk in 0..4 {
                for c in 0..4 {
                    let col = model.column(s, kk, c, 0);
                    total += w
                        .slice(ndarray::s![.., col..col + 5])
                        .iter()
                        .map(|v| f64::from(v * v))
                        .sum::<f64>()
                        .sqrt();
                }
            }
        }
        total
    };
    assert!((mapped.path_regularizer - expected_path).abs() < 1e-6 * expected_path);
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let set = problem(70, 9, 3, 8);
    let convex = convex_model(&set, 5, 6, Grouping::Joint, 0.5);
    let masks = convex.prepare(&set).unwrap();
    let params = random_params(convex.parameters(), 0.1, 9);
    let network = NetworkModel::new(
        NetworkShape {
            d: 9,
            k: 5,
            m1: 6,
            m2: 1,
            classes: 3,
        },
        Regularizer::Path,
        0.01,
    )
    .unwrap();
    let net_params = network.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(10));
    let rows: Vec<usize> = (0..70).rev().collect();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut g = vec![0.0f32; params.len()];
            let v = convex.data_gradient(&params, &set, &masks, &rows, &mut g);
            convex.add_regularizer_gradient(&params, &mut g);
            let mut h = vec![0.0f32; net_params.len()];
            let w = network.data_gradient(&net_params, &set, &(), &rows, &mut h);
            network.add_regularizer_gradient(&net_params, &mut h);
            (g, v, h, w, convex.masks(set.x()).unwrap())
        })
    };
    let one = run(1);
    let three = run(3);
    assert!(one.0 == three.0 && one.1 == three.1 && one.2 == three.2 && one.3 == three.3);
    assert_eq!(one.4, three.4);
}

fn deep_model(stages: usize) -> DeepNetworkModel {
    DeepNetworkModel::new(
        DeepShape {
            d: 4,
            stages,
            k: 3,
            m1: 4,
            m2: 2,
            classes: 3,
        },
        0.03,
    )
    .unwrap()
}

#[test]
fn deep_network_gradients_match_finite_differences() {
    let set = problem(20, 4, 3, 11);
    for stages in [1, 3] {
        let model = deep_model(stages);
        let params = model.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(12));
        let probes: Vec<usize> = (0..model.parameters()).collect();
        check_gradient(&model, &params, &set, 0.0, &probes);
    }
}

#[test]
fn one_block_deep_network_is_the_parallel_network() {
    let set = problem(30, 4, 3, 13);
    let deep = deep_model(1);
    let network = NetworkModel::new(
        NetworkShape {
            d: 4,
            k: 3,
            m1: 4,
            m2: 2,
            classes: 3,
        },
        Regularizer::WeightDecay,
        0.03,
    )
    .unwrap();
    let params = deep.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(14));
    assert_eq!(
        params,
        network.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(14))
    );
    let rows: Vec<usize> = (0..30).collect();
    let (f_deep, v_deep) = deep.outputs(&params, &set, &(), &rows);
    let (f_net, v_net) = network.outputs(&params, &set, &(), &rows);
    let close = |a: &[f32], b: &[f32]| {
        a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y.abs()))
    };
    assert!(close(f_deep.as_slice().unwrap(), f_net.as_slice().unwrap()));
    assert_eq!(v_deep.correct, v_net.correct);
    let mut g_deep = vec![0.0f32; params.len()];
    let mut g_net = vec![0.0f32; params.len()];
    deep.data_gradient(&params, &set, &(), &rows, &mut g_deep);
    network.data_gradient(&params, &set, &(), &rows, &mut g_net);
    assert!(close(&g_deep, &g_net));
    assert_eq!(deep.regularizer(&params), network.regularizer(&params));
}

#[test]
fn block_outputs_sum_to_the_outputs_and_match_the_mapped_second_layer() {
    let set = problem(200, 6, 4, 15);
    let model = convex_model(&set, 4, 5, Grouping::Joint, 1.0);
    let masks = model.prepare(&set).unwrap();
    let params = random_params(model.parameters(), 0.2, 16);
    let rows: Vec<usize> = (0..set.n()).collect();
    let blocks = model.block_outputs(&params, &set, &masks, &rows);
    let (f, violations) = model.outputs_and_violations(&params, &set, &masks, &rows);
    let (k, classes) = (4, 4);
    for i in 0..set.n() {
        for c in 0..classes {
            let sum: f32 = (0..k)
                .map(|kk| blocks[[i, kk * classes + c]] - blocks[[i, (k + kk) * classes + c]])
                .sum();
            assert!((sum - f[[i, c]]).abs() <= 1e-4 * (1.0 + f[[i, c]].abs()));
        }
    }
    // Where a block's constraints hold on a row, the mapped network's
    // second-layer unit for it is the block's term over √a.
    let mapped = to_network(&model, &params).unwrap();
    let (hidden, _) = mapped
        .model
        .second_layer_and_outputs(&mapped.params, set.x());
    let w = model.variables(&params);
    let (mut d1, mut d2) = (vec![0.0f32; k * 5], vec![0.0f32; k]);
    let mut feasible_pairs = 0;
    for i in 0..set.n() {
        masks.expand(i, &mut d1, &mut d2);
        let x = set.x().row(i).to_owned();
        for (t, &(s, kk, c)) in mapped.blocks.iter().enumerate() {
            let col = model.column(s, kk, c, 0);
            let u: Vec<f32> = (0..5).map(|j| x.dot(&w.column(col + j))).collect();
            let first_holds = (0..5)
                .all(|j| (2.0 * d1[kk * 5 + j] - 1.0) * model.signs()[kk * 5 + j] * u[j] >= 0.0);
            let p2: f32 = (0..5).map(|j| d1[kk * 5 + j] * u[j]).sum();
            if !(first_holds && (2.0 * d2[kk] - 1.0) * p2 >= 0.0) {
                continue;
            }
            feasible_pairs += 1;
            let a = w
                .slice(ndarray::s![.., col..col + 5])
                .iter()
                .map(|v| f64::from(v * v))
                .sum::<f64>()
                .sqrt() as f32;
            let expected = blocks[[i, (s * k + kk) * classes + c]] / a.sqrt();
            assert!(
                (hidden[[i, t]] - expected).abs() <= 1e-4 * (1.0 + expected.abs()),
                "row {i}, block {t}: {} against {expected}",
                hidden[[i, t]]
            );
        }
    }
    assert!(feasible_pairs > 10, "only {feasible_pairs} feasible pairs");
    assert!(violations.iter().any(|v| *v > 0.0));
    let zeros = vec![0.0f32; params.len()];
    let at_zero = model.block_outputs(&zeros, &set, &masks, &rows);
    assert!(at_zero.iter().all(|v| *v == 0.0));
}

#[test]
fn deep_network_results_do_not_depend_on_the_thread_count() {
    let set = problem(50, 4, 3, 17);
    let model = deep_model(3);
    let params = model.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(18));
    let rows: Vec<usize> = (0..50).rev().collect();
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut g = vec![0.0f32; params.len()];
                let v = model.data_gradient(&params, &set, &(), &rows, &mut g);
                model.add_regularizer_gradient(&params, &mut g);
                (g, v, model.predict(&params, set.x()))
            })
    };
    assert!(run(1) == run(3));
}
