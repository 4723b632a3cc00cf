//! The paper's synthetic data (Section 4).

use ndarray::Array2;
use pathreg_core::ParallelNetwork;
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

/// The Table 2 toy problem: `x_i ~ N(0, I_d)`, labels from a random teacher
/// parallel network with standard normal weights, plus `noise · ε`,
/// `ε ~ N(0, I_n)`. Draw order from `ChaCha8Rng::seed_from_u64(seed)`: X
/// (row-major), then the teacher (W1, W2, w3), then ε.
pub fn teacher_data(
    n: usize,
    d: usize,
    teacher: TeacherShape,
    noise: f64,
    seed: u64,
) -> Result<(Dataset, ParallelNetwork), DataError> {
    check_sizes("teacher data", n, d, teacher)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = Array2::from_shape_simple_fn((n, d), || standard_normal(&mut rng));
    label_with_teacher(x, teacher, noise, &mut rng)
}

/// Figure 4's low-rank data (Section 4): draw `G ~ N(0, 1)^{n×d}`, take its SVD
/// `G = U Σ Vᵀ` and set `σ_{r+1} = … = σ_min(n,d) = 1`, keeping the top `rank`;
/// labels from a random teacher with standard normal weights plus `noise · ε`.
/// Draw order from `ChaCha8Rng::seed_from_u64(seed)`: G (row-major), the
/// teacher (W1, W2, w3), then ε.
pub fn low_rank_teacher_data(
    n: usize,
    d: usize,
    rank: usize,
    teacher: TeacherShape,
    noise: f64,
    seed: u64,
) -> Result<(Dataset, ParallelNetwork), DataError> {
    check_sizes("low-rank teacher data", n, d, teacher)?;
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

/// Draws a teacher with standard normal weights and labels `x` with it plus
/// `noise · ε`, continuing the caller's random stream.
fn label_with_teacher(
    x: Array2<f64>,
    teacher: TeacherShape,
    noise: f64,
    rng: &mut ChaCha8Rng,
) -> Result<(Dataset, ParallelNetwork), DataError> {
    let d = x.ncols();
    let net = ParallelNetwork::gaussian(rng, teacher.k, d, teacher.m1, teacher.m2, 1.0);
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
}
