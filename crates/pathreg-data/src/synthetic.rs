//! The paper's synthetic data (Section 4).

use ndarray::Array2;
use pathreg_core::ParallelNetwork;
use pathreg_core::limits::{array_bytes, check_allocation, total_bytes};
use pathreg_core::network::standard_normal;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Dataset};

/// Architecture of a teacher network `(K, m1, m2)` (L = 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TeacherShape {
    /// Sub-networks K.
    pub k: usize,
    /// First hidden width.
    pub m1: usize,
    /// Second hidden width.
    pub m2: usize,
}

/// Bytes [`teacher_data`] allocates for `n` samples in `R^d` and `teacher`,
/// saturating at `u64::MAX`: X, the teacher's weights
/// ([`ParallelNetwork::parameter_bytes`]), its forward pass on X
/// ([`ParallelNetwork::forward_bytes`]), the labels and the feature names.
/// [`teacher_data`] refuses beyond
/// [`MAX_ALLOCATION_BYTES`](pathreg_core::limits::MAX_ALLOCATION_BYTES).
pub fn teacher_data_bytes(n: usize, d: usize, teacher: TeacherShape) -> u64 {
    total_bytes(&[array_bytes(F64, &[n, d]), labelling_bytes(n, d, teacher)])
}

/// Bytes [`low_rank_teacher_data`] allocates for `n` samples in `R^d` and
/// `teacher`, saturating at `u64::MAX`: G, its thin SVD (with the solver's
/// copy of G and workspace, `r = min(n, d)`) and the reconstructed X, then
/// what [`teacher_data_bytes`] counts after X. [`low_rank_teacher_data`]
/// refuses beyond
/// [`MAX_ALLOCATION_BYTES`](pathreg_core::limits::MAX_ALLOCATION_BYTES).
pub fn low_rank_teacher_data_bytes(n: usize, d: usize, teacher: TeacherShape) -> u64 {
    let r = n.min(d);
    total_bytes(&[
        array_bytes(4 * F64, &[n, d]),
        array_bytes(3 * F64, &[n.saturating_add(d), r]),
        labelling_bytes(n, d, teacher),
    ])
}

/// The teacher, its forward pass, the labels and the feature names.
fn labelling_bytes(n: usize, d: usize, teacher: TeacherShape) -> u64 {
    let TeacherShape { k, m1, m2 } = teacher;
    total_bytes(&[
        ParallelNetwork::parameter_bytes(k, d, m1, m2),
        ParallelNetwork::forward_bytes(n, k, m1, m2),
        array_bytes(F64, &[n]),
        // A `String` and its buffer per name.
        array_bytes(24 + 32, &[d]),
    ])
}

const F64: usize = std::mem::size_of::<f64>();

/// The Table 2 toy problem: `x_i ~ N(0, I_d)`, labels from a random teacher
/// parallel network with standard normal weights, plus `noise · ε`,
/// `ε ~ N(0, I_n)`. Draw order from `ChaCha8Rng::seed_from_u64(seed)`: X
/// (row-major), then the teacher (W1, W2, w3), then ε. Refuses sizes whose
/// [`teacher_data_bytes`] exceed
/// [`MAX_ALLOCATION_BYTES`](pathreg_core::limits::MAX_ALLOCATION_BYTES).
pub fn teacher_data(
    n: usize,
    d: usize,
    teacher: TeacherShape,
    noise: f64,
    seed: u64,
) -> Result<(Dataset, ParallelNetwork), DataError> {
    check_sizes("teacher data", n, d, teacher)?;
    check_bytes(
        "teacher data",
        n,
        d,
        teacher,
        teacher_data_bytes(n, d, teacher),
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((n, d), || standard_normal(&mut rng));
    label_with_teacher(x, teacher, noise, &mut rng)
}

/// Figure 4's low-rank data (Section 4): draw `G ~ N(0, 1)^{n×d}`, take its SVD
/// `G = U Σ Vᵀ` and set `σ_{r+1} = … = σ_min(n,d) = 1`, keeping the top `rank`;
/// labels from a random teacher with standard normal weights plus `noise · ε`.
/// Draw order from `ChaCha8Rng::seed_from_u64(seed)`: G (row-major), the
/// teacher (W1, W2, w3), then ε. Refuses sizes whose
/// [`low_rank_teacher_data_bytes`] exceed
/// [`MAX_ALLOCATION_BYTES`](pathreg_core::limits::MAX_ALLOCATION_BYTES).
pub fn low_rank_teacher_data(
    n: usize,
    d: usize,
    rank: usize,
    teacher: TeacherShape,
    noise: f64,
    seed: u64,
) -> Result<(Dataset, ParallelNetwork), DataError> {
    check_sizes("low-rank teacher data", n, d, teacher)?;
    let bytes = low_rank_teacher_data_bytes(n, d, teacher);
    check_bytes("low-rank teacher data", n, d, teacher, bytes)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Array2::from_shape_simple_fn((n, d), || standard_normal(&mut rng));
    let mut svd =
        pathreg_core::linalg::thin_svd(g.view()).map_err(|e| DataError::Invalid(e.to_string()))?;
    for (i, sigma) in svd.s.iter_mut().enumerate() {
        if i >= rank {
            *sigma = 1.0;
        }
    }
    let x = svd.reconstruct();
    label_with_teacher(x, teacher, noise, &mut rng)
}

fn check_sizes(what: &str, n: usize, d: usize, teacher: TeacherShape) -> Result<(), DataError> {
    if n == 0 || d == 0 || teacher.k == 0 || teacher.m1 == 0 || teacher.m2 == 0 {
        return Err(DataError::Invalid(format!(
            "{what} needs n, d, K, m1, m2 ≥ 1 (got n = {n}, d = {d}, {teacher:?})"
        )));
    }
    Ok(())
}

fn check_bytes(
    what: &str,
    n: usize,
    d: usize,
    teacher: TeacherShape,
    bytes: u64,
) -> Result<(), DataError> {
    check_allocation(
        || {
            let TeacherShape { k, m1, m2 } = teacher;
            format!(
                "{what} with n = {n}, d = {d} and a teacher with (K, m1, m2) = ({k}, {m1}, {m2})"
            )
        },
        bytes,
    )
    .map_err(|e| DataError::Invalid(e.to_string()))
}

/// Draws a teacher with standard normal weights and labels `x` with it plus
/// `noise · ε`, continuing the caller's random stream.
fn label_with_teacher(
    x: Array2<f64>,
    teacher: TeacherShape,
    noise: f64,
    rng: &mut ChaCha8Rng,
) -> Result<(Dataset, ParallelNetwork), DataError> {
    let d = x.ncols();
    let net = ParallelNetwork::gaussian(rng, teacher.k, d, teacher.m1, teacher.m2, 1.0)
        .map_err(|e| DataError::Invalid(e.to_string()))?;
    let mut y = net
        .predict(x.view())
        .map_err(|e| DataError::Invalid(e.to_string()))?;
    if noise != 0.0 {
        y.mapv_inplace(|v| v + noise * standard_normal(rng));
    }
    let feature_names = (0..d).map(|a| format!("x{a}")).collect();
    Ok((
        Dataset {
            feature_names,
            x,
            y,
        },
        net,
    ))
}

/// The two-arm spiral of Figure 1 (Appendix A.1, after Lang and Witbrock's
/// "two spirals" problem): `n/2` points per class on two interleaved arms of
/// the Archimedean spiral `r = t`, `t ∈ [0.5, 0.5 + 2π·turns]`, the second
/// arm the first turned by π. Point `i` of an arm sits at
/// `t_i = 0.5 + 2π·turns·i/(n/2 − 1)`, at `(t cos t, t sin t)/t_max` (so the
/// outermost point has radius 1), plus `noise · ε` with `ε ~ N(0, I_2)`
/// drawn from `ChaCha8Rng::seed_from_u64(seed)` (none when `noise = 0`).
/// Labels are `+1` on the first arm and `−1` on the second, points of the
/// two arms alternating (first arm's point 0, second arm's point 0, …).
///
/// The features are `(x1, x2, 1)`: the networks of (1) have no biases, and
/// a bias-free ReLU network is positively homogeneous, so its sign is
/// constant on every ray from the origin, along which the arms alternate; the
/// constant feature is the bias.
pub fn spiral(n: usize, turns: f64, noise: f64, seed: u64) -> Result<Dataset, DataError> {
    if n < 4 || !n.is_multiple_of(2) {
        return Err(DataError::Invalid(format!(
            "the spiral needs an even n ≥ 4 (two arms of n/2 points), got {n}"
        )));
    }
    check_allocation(
        || format!("a spiral of {n} points"),
        array_bytes(F64, &[n, 4]),
    )
    .map_err(|e| DataError::Invalid(e.to_string()))?;
    if !(turns.is_finite() && turns > 0.0 && turns <= 100.0) {
        return Err(DataError::Invalid(format!(
            "the spiral needs 0 < turns ≤ 100, got {turns}"
        )));
    }
    if !(noise.is_finite() && noise >= 0.0) {
        return Err(DataError::Invalid(format!(
            "the spiral's noise must be finite and ≥ 0, got {noise}"
        )));
    }
    let per_arm = n / 2;
    let span = 2.0 * std::f64::consts::PI * turns;
    let t_max = 0.5 + span;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::zeros((n, 3));
    let mut y = ndarray::Array1::zeros(n);
    for i in 0..per_arm {
        let t = 0.5 + span * i as f64 / (per_arm - 1) as f64;
        for (arm, label) in [(0usize, 1.0), (1, -1.0)] {
            let row = 2 * i + arm;
            let angle = t + std::f64::consts::PI * arm as f64;
            x[[row, 0]] = t * angle.cos() / t_max;
            x[[row, 1]] = t * angle.sin() / t_max;
            if noise > 0.0 {
                x[[row, 0]] += noise * standard_normal(&mut rng);
                x[[row, 1]] += noise * standard_normal(&mut rng);
            }
            x[[row, 2]] = 1.0;
            y[row] = label;
        }
    }
    Ok(Dataset {
        feature_names: vec!["x1".into(), "x2".into(), "bias".into()],
        x,
        y,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teacher_data_is_reproducible_and_noise_free_labels_match_the_teacher() {
        let shape = TeacherShape { k: 5, m1: 3, m2: 1 };
        let (a, net) = teacher_data(5, 2, shape, 0.0, 42).unwrap();
        let (b, _) = teacher_data(5, 2, shape, 0.0, 42).unwrap();
        assert_eq!(a, b);
        assert_eq!(net.predict(a.x.view()).unwrap(), a.y);
        let (c, _) = teacher_data(5, 2, shape, 0.0, 43).unwrap();
        assert_ne!(a, c);
    }

    #[test]
    fn low_rank_data_has_unit_tail_singular_values() {
        let shape = TeacherShape { k: 5, m1: 1, m2: 1 };
        let (data, _) = low_rank_teacher_data(15, 6, 3, shape, 0.1, 9).unwrap();
        let s = pathreg_core::linalg::thin_svd(data.x.view()).unwrap().s;
        for sigma in s.iter().skip(3) {
            assert!((sigma - 1.0).abs() < 1e-10, "{s:?}");
        }
        assert!(
            s[2] > 1.0,
            "the kept singular values of a 15×6 Gaussian exceed 1: {s:?}"
        );
    }

    #[test]
    fn zero_sizes_are_rejected() {
        let shape = TeacherShape { k: 0, m1: 3, m2: 1 };
        assert!(teacher_data(5, 2, shape, 0.0, 1).is_err());
    }

    #[test]
    fn sizes_beyond_the_allocation_limit_are_errors_not_aborts() {
        let shape = TeacherShape { k: 5, m1: 3, m2: 1 };
        let big = 1_000_000_000;
        for (n, d, teacher) in [
            (big, 2, shape),
            (5, big, shape),
            (5, 2, TeacherShape { k: big, ..shape }),
            (5, 2, TeacherShape { m1: big, ..shape }),
            (5, 2, TeacherShape { m2: big, ..shape }),
            (usize::MAX, usize::MAX, shape),
        ] {
            let err = teacher_data(n, d, teacher, 0.0, 1).unwrap_err().to_string();
            assert!(err.contains("MAX_ALLOCATION_BYTES"), "{err}");
            let err = low_rank_teacher_data(n, d, 1, teacher, 0.0, 1)
                .unwrap_err()
                .to_string();
            assert!(err.contains("MAX_ALLOCATION_BYTES"), "{err}");
        }
        assert!(teacher_data_bytes(5, 2, shape) < 10_000);
        assert!(low_rank_teacher_data_bytes(15, 6, shape) > teacher_data_bytes(15, 6, shape));
    }

    #[test]
    fn the_spiral_has_two_alternating_arms_of_unit_radius() {
        let data = spiral(30, 1.5, 0.0, 1).unwrap();
        assert_eq!((data.n(), data.d()), (30, 3));
        assert_eq!(data, spiral(30, 1.5, 0.0, 2).unwrap(), "no noise, no draws");
        let radius = |i: usize| data.x[[i, 0]].hypot(data.x[[i, 1]]);
        assert!((radius(28) - 1.0).abs() < 1e-12 && (radius(29) - 1.0).abs() < 1e-12);
        for i in 0..15 {
            assert_eq!((data.y[2 * i], data.y[2 * i + 1]), (1.0, -1.0));
            // The second arm is the first turned by π.
            assert!((data.x[[2 * i, 0]] + data.x[[2 * i + 1, 0]]).abs() < 1e-12);
            assert!((data.x[[2 * i, 1]] + data.x[[2 * i + 1, 1]]).abs() < 1e-12);
            assert_eq!(data.x[[2 * i, 2]], 1.0);
        }
        let noisy = spiral(30, 1.5, 0.05, 3).unwrap();
        assert_eq!(noisy, spiral(30, 1.5, 0.05, 3).unwrap());
        assert_ne!(noisy, data);
        for (n, turns, noise) in [
            (3, 1.0, 0.0),
            (2, 1.0, 0.0),
            (30, 0.0, 0.0),
            (30, f64::NAN, 0.0),
            (30, 1.0, -1.0),
            (usize::MAX - 1, 1.0, 0.0),
        ] {
            assert!(spiral(n, turns, noise, 1).is_err(), "{n} {turns} {noise}");
        }
    }
}
