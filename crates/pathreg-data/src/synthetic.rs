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
}
