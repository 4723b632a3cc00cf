//! The sampled arrangements of (11): gate vectors and their masks on data.

use ndarray::{Array1, Array2, Array3, ArrayView2, Axis, s};
use rand::Rng;

use crate::CoreError;
use crate::arrangement::{Mask, NeuronPattern, Triple};
use crate::limits::{array_bytes, check_allocation, total_bytes};
use crate::network::standard_normal;

/// `K` sampled arrangements, stored as the gate vectors that define them.
#[derive(Debug, Clone, PartialEq)]
pub struct SampledArrangements {
    /// `K × d × m1`.
    w1: Array3<f64>,
    /// `I_kj = sign(w2_kj)`, `K × m1` (`true` for +1).
    pub(super) signs: Array2<bool>,
    /// `|w2_kj|`, `K × m1`.
    w2_abs: Array2<f64>,
    /// The gates packed as `d × Km1` (column `k·m1 + j` is `w1_kj`).
    gates: Array2<f64>,
}

const F64: usize = std::mem::size_of::<f64>();

impl SampledArrangements {
    /// Bytes [`Self::sample`] allocates for `K` arrangements of `m1` gates in
    /// `R^d` (the gates `W1` twice, as drawn and packed, and `w2` as drawn, its
    /// magnitudes and its signs), saturating at `u64::MAX`. [`Self::sample`]
    /// and [`Self::new`] refuse beyond [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn bytes(k: usize, d: usize, m1: usize) -> u64 {
        total_bytes(&[
            array_bytes(2 * F64, &[k, d, m1]),
            array_bytes(2 * F64 + 1, &[k, m1]),
        ])
    }

    /// Bytes [`Self::masks`] allocates on `n` samples for `K` arrangements of
    /// `m1` gates (the pre-activations and `D1`, both `n × K·m1`, `D2`,
    /// `n × K`, and the signs), saturating at `u64::MAX`. [`Self::masks`]
    /// refuses beyond [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn masks_bytes(n: usize, k: usize, m1: usize) -> u64 {
        total_bytes(&[
            array_bytes(2 * F64, &[n, k, m1]),
            array_bytes(F64, &[n, k]),
            array_bytes(F64, &[k, m1]),
        ])
    }

    /// Arrangements from gate weights `w1` (`K × d × m1`), sign pattern
    /// `signs` (`K × m1`) and magnitudes `w2_abs ≥ 0` (`K × m1`).
    pub fn new(
        w1: Array3<f64>,
        signs: Array2<bool>,
        w2_abs: Array2<f64>,
    ) -> Result<Self, CoreError> {
        let (k, d, m1) = w1.dim();
        if k == 0 || d == 0 || m1 == 0 {
            return Err(CoreError::Shape(format!(
                "sampled arrangements need K, d, m1 ≥ 1, got {:?}",
                w1.dim()
            )));
        }
        if signs.dim() != (k, m1) || w2_abs.dim() != (k, m1) {
            return Err(CoreError::Shape(format!(
                "gates W1 {:?} but signs {:?} and |w2| {:?} (expected {:?})",
                w1.dim(),
                signs.dim(),
                w2_abs.dim(),
                (k, m1)
            )));
        }
        check_allocation(
            || format!("{k} sampled arrangements of {m1} gates in R^{d}"),
            Self::bytes(k, d, m1),
        )?;
        if w1.iter().any(|v| !v.is_finite()) || w2_abs.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(CoreError::Arrangement(
                "gate weights must be finite and |w2| non-negative".into(),
            ));
        }
        let mut gates = Array2::zeros((d, k * m1));
        for kk in 0..k {
            gates
                .slice_mut(s![.., kk * m1..(kk + 1) * m1])
                .assign(&w1.index_axis(Axis(0), kk));
        }
        Ok(Self {
            w1,
            signs,
            w2_abs,
            gates,
        })
    }

    /// Arrangements read off the first two layers of gate networks:
    /// `w1` is `K × d × m1`, `w2` (signed) is `K × m1`.
    pub fn from_gates(w1: Array3<f64>, w2: Array2<f64>) -> Result<Self, CoreError> {
        let signs = w2.mapv(|v| v > 0.0);
        let w2_abs = w2.mapv(f64::abs);
        Self::new(w1, signs, w2_abs)
    }

    /// `K` arrangements of i.i.d. standard normal networks, drawn per
    /// arrangement in the order of [`crate::ArrangementSet::sample`] (`W1`
    /// row-major `d × m1`, then `w2`), so both read the same triples off the
    /// same seeded generator.
    pub fn sample<R: Rng + ?Sized>(
        rng: &mut R,
        k: usize,
        d: usize,
        m1: usize,
    ) -> Result<Self, CoreError> {
        check_allocation(
            || format!("{k} sampled arrangements of {m1} gates in R^{d}"),
            Self::bytes(k, d, m1),
        )?;
        let mut w1 = Array3::zeros((k, d, m1));
        let mut w2 = Array2::zeros((k, m1));
        for kk in 0..k {
            for v in w1.index_axis_mut(Axis(0), kk).iter_mut() {
                *v = standard_normal(rng);
            }
            for v in w2.row_mut(kk).iter_mut() {
                *v = standard_normal(rng);
            }
        }
        Self::from_gates(w1, w2)
    }

    /// Number of arrangements K.
    pub fn k(&self) -> usize {
        self.w1.dim().0
    }
    /// Input dimension d.
    pub fn d(&self) -> usize {
        self.w1.dim().1
    }
    /// First hidden width m1.
    pub fn m1(&self) -> usize {
        self.w1.dim().2
    }
    /// Gate weights, `K × d × m1`.
    pub fn w1(&self) -> &Array3<f64> {
        &self.w1
    }
    /// Sign pattern `I_kj > 0`, `K × m1`.
    pub fn signs(&self) -> &Array2<bool> {
        &self.signs
    }
    /// `|w2_kj|`, `K × m1`.
    pub fn w2_abs(&self) -> &Array2<f64> {
        &self.w2_abs
    }

    /// The masks `D1_kj`, `D2_k` on data `x` (see the
    /// [module documentation](super)).
    pub fn masks(&self, x: ArrayView2<f64>) -> Result<Masks, CoreError> {
        let (n, d) = x.dim();
        if d != self.d() {
            return Err(CoreError::Shape(format!(
                "data has {d} features but the arrangements expect {}",
                self.d()
            )));
        }
        let (k, m1) = (self.k(), self.m1());
        check_allocation(
            || format!("the masks of {k} sampled arrangements of {m1} gates on {n} samples"),
            Self::masks_bytes(n, k, m1),
        )?;
        let pre1 = x.dot(&self.gates);
        let d1 = pre1.mapv(|v| if v > 0.0 { 1.0 } else { 0.0 });
        let mut d2 = Array2::zeros((n, k));
        for (i, row) in pre1.rows().into_iter().enumerate() {
            let row = row.to_slice().unwrap_or(&[]);
            for kk in 0..k {
                let mut pre2 = 0.0;
                for j in 0..m1 {
                    let w2 = if self.signs[[kk, j]] {
                        self.w2_abs[[kk, j]]
                    } else {
                        -self.w2_abs[[kk, j]]
                    };
                    pre2 += w2 * row[kk * m1 + j].max(0.0);
                }
                d2[[i, kk]] = if pre2 > 0.0 { 1.0 } else { 0.0 };
            }
        }
        let signs = Array1::from_iter(self.signs.iter().map(|p| if *p { 1.0 } else { -1.0 }));
        Ok(Masks {
            d1,
            d2,
            signs,
            k,
            m1,
        })
    }

    /// The canonical triples (one per arrangement, duplicates kept) on `x`.
    pub fn triples(&self, x: ArrayView2<f64>) -> Result<Vec<Triple>, CoreError> {
        let masks = self.masks(x)?;
        Ok((0..self.k())
            .map(|kk| masks.triple(kk, &self.signs).0)
            .collect())
    }
}

/// The masks of [`SampledArrangements`] on one data matrix, as 0/1 values.
#[derive(Debug, Clone, PartialEq)]
pub struct Masks {
    /// `n × Km1`: column `k·m1 + j` is `diag(D1_kj)`.
    pub(super) d1: Array2<f64>,
    /// `n × K`: column `k` is `diag(D2_k)`.
    pub(super) d2: Array2<f64>,
    /// `I_kj` as ±1, length `Km1`.
    pub(super) signs: Array1<f64>,
    pub(super) k: usize,
    pub(super) m1: usize,
}

impl Masks {
    /// Number of samples n.
    pub fn n(&self) -> usize {
        self.d1.nrows()
    }
    /// `D1` as 0/1, `n × Km1`.
    pub fn d1(&self) -> &Array2<f64> {
        &self.d1
    }
    /// `D2` as 0/1, `n × K`.
    pub fn d2(&self) -> &Array2<f64> {
        &self.d2
    }
    /// The masks of the samples `rows` (a mini-batch).
    pub fn select(&self, rows: &[usize]) -> Masks {
        Masks {
            d1: self.d1.select(Axis(0), rows),
            d2: self.d2.select(Axis(0), rows),
            signs: self.signs.clone(),
            k: self.k,
            m1: self.m1,
        }
    }

    /// Arrangement `kk` as a canonical [`Triple`] and the permutation that
    /// sorts its neurons (`order[p]` is the original neuron at position `p`).
    pub(super) fn triple(&self, kk: usize, signs: &Array2<bool>) -> (Triple, Vec<usize>) {
        let n = self.n();
        let m1 = self.m1;
        let neurons: Vec<NeuronPattern> = (0..m1)
            .map(|j| NeuronPattern {
                d1: Mask::from_bools(self.d1.column(kk * m1 + j).iter().map(|v| *v > 0.0), n),
                positive: signs[[kk, j]],
            })
            .collect();
        let mut order: Vec<usize> = (0..m1).collect();
        order.sort_by(|a, b| neurons[*a].cmp(&neurons[*b]));
        let d2 = Mask::from_bools(self.d2.column(kk).iter().map(|v| *v > 0.0), n);
        (Triple::new(neurons, d2, n), order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arrangement::ArrangementSet;
    use crate::unconstrained::test_support::problem;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn sampling_reads_the_same_triples_as_arrangement_set() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x = Array2::from_shape_fn((8, 3), |_| standard_normal(&mut rng));
        let arr = SampledArrangements::sample(&mut ChaCha8Rng::seed_from_u64(9), 6, 3, 2).unwrap();
        let set =
            ArrangementSet::sample(x.view(), 2, 6, &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
        let mut ours = arr.triples(x.view()).unwrap();
        ours.sort();
        ours.dedup();
        assert_eq!(ours, set.triples());
    }

    #[test]
    fn masks_reject_wrong_dimension() {
        let (arr, _, _, _) = problem(12, 3, 3, 2, 2);
        assert!(arr.masks(Array2::zeros((3, 4)).view()).is_err());
        assert!(
            SampledArrangements::new(
                Array3::zeros((2, 3, 2)),
                Array2::from_elem((2, 3), true),
                Array2::zeros((2, 2))
            )
            .is_err()
        );
    }

    #[test]
    fn sizes_beyond_the_allocation_limit_are_errors_not_aborts() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (k, d, m1) in [
            (1_000_000_000, 10, 100),
            (40, 1_000_000_000, 100),
            (40, 10, 1_000_000_000),
            (usize::MAX, usize::MAX, usize::MAX),
        ] {
            let err = SampledArrangements::sample(&mut rng, k, d, m1).unwrap_err();
            assert!(matches!(err, CoreError::TooLarge(_)), "{err}");
        }
        assert_eq!(SampledArrangements::bytes(2, 3, 4), 16 * 24 + 17 * 8);
        // The masks of 10⁹ samples (one row repeated by a zero stride).
        let (arr, _, _, _) = problem(12, 3, 3, 2, 2);
        let row = Array2::<f64>::zeros((1, 3));
        let err = arr
            .masks(row.broadcast((1_000_000_000, 3)).unwrap())
            .unwrap_err();
        assert!(matches!(err, CoreError::TooLarge(_)), "{err}");
        assert_eq!(
            SampledArrangements::masks_bytes(10, 3, 2),
            8 * (120 + 30 + 6)
        );
    }
}
