//! Sampled arrangements that keep their gates: the random weights whose
//! ReLU patterns on the training rows made each triple. An arrangement is a
//! property of its gate vectors, so the convex model's masks at new points
//! (Figure 1's grid) come from the same hyperplanes, and the model's own
//! decision boundary can be drawn rather than interpolated.
//!
//! The unconstrained program's [`crate::unconstrained::SampledArrangements`]
//! keeps gates too, one arrangement per draw (duplicates kept) with the
//! neurons in draw order. Program (21) is solved over distinct canonical
//! triples, whose neurons are sorted by pattern; here each triple keeps the
//! gates of its first draw, reordered as its neurons are, so a solution's
//! blocks `z_tj` meet the gate `w1_j` that made their mask.

use std::collections::BTreeMap;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::CoreError;
use crate::arrangement::{ArrangementMode, ArrangementSet, Mask, NeuronPattern, Triple};
use crate::convex::ConvexSolution;
use crate::limits::{array_bytes, check_allocation};

/// The gate weights of one triple: `D1_j = 1[X w1_j > 0]`,
/// `I_j = sign(w2_j)` and `D2 = 1[Σ_j w2_j (X w1_j)+ > 0]`, with the neurons
/// in the triple's (canonical) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Gates {
    /// `W1`, `d × m1`.
    pub w1: Array2<f64>,
    /// `w2`, `m1`.
    pub w2: Vec<f64>,
}

impl Gates {
    /// `(D1_j(x) for every j, D2(x))` at one point.
    pub fn masks_at(&self, point: ArrayView1<f64>) -> (Vec<bool>, bool) {
        let pre1 = point.dot(&self.w1);
        let pre2: f64 = pre1.iter().zip(&self.w2).map(|(p, w)| w * p.max(0.0)).sum();
        (pre1.iter().map(|p| *p > 0.0).collect(), pre2 > 0.0)
    }

    /// The triple these gates make on `x` ([`Triple::from_gates`]), and the
    /// gates with their neurons in the triple's canonical order (a stable
    /// sort by pattern, so neurons with equal patterns keep the draw order).
    fn triple(w1: Array2<f64>, w2: Vec<f64>, x: ArrayView2<f64>) -> (Triple, Gates) {
        let triple = Triple::from_gates(x, w1.view(), &w2);
        let n = x.nrows();
        let pre1 = x.dot(&w1);
        let mut order: Vec<(NeuronPattern, usize)> = (0..w2.len())
            .map(|j| {
                let d1 = Mask::from_bools(pre1.column(j).iter().map(|v| *v > 0.0), n);
                (
                    NeuronPattern {
                        d1,
                        positive: w2[j] > 0.0,
                    },
                    j,
                )
            })
            .collect();
        order.sort_by(|a, b| a.0.cmp(&b.0));
        let gates = Gates {
            w1: Array2::from_shape_fn((w1.nrows(), w2.len()), |(r, c)| w1[[r, order[c].1]]),
            w2: order.iter().map(|(_, j)| w2[*j]).collect(),
        };
        (triple, gates)
    }
}

/// A sampled arrangement set and the gates of each triple (the first draw
/// that made it).
#[derive(Debug, Clone)]
pub struct GatedArrangements {
    set: ArrangementSet,
    gates: Vec<Gates>,
}

impl GatedArrangements {
    /// `P1 · P2` draws on `x` with `m1` neurons, as Figure 1 samples them:
    /// `P1` first layers `W1 ∈ R^{d×m1}` with i.i.d. standard normal entries
    /// (each fixing the masks `D1_j`), and for each `P2` second layers
    /// `w2 ∈ R^{m1}` (each fixing the signs `I` and the mask `D2`). Duplicate
    /// triples are kept once, with their first draw's gates.
    pub fn sample_nested<R: Rng + ?Sized>(
        x: ArrayView2<f64>,
        m1: usize,
        p1: usize,
        p2: usize,
        rng: &mut R,
    ) -> Result<Self, CoreError> {
        let (n, d) = x.dim();
        check_sizes(x, m1, p1.saturating_mul(p2))?;
        let mut draws = Vec::with_capacity(p1 * p2);
        for _ in 0..p1 {
            let w1 = Array2::from_shape_simple_fn((d, m1), || StandardNormal.sample(&mut *rng));
            for _ in 0..p2 {
                let w2: Vec<f64> = (0..m1).map(|_| StandardNormal.sample(&mut *rng)).collect();
                draws.push(Gates::triple(w1.clone(), w2, x));
            }
        }
        Self::from_draws(n, m1, draws)
    }

    /// The two-layer arrangements of [29] as triples: `p` gates
    /// `u ~ N(0, I_d)`, each one neuron with `D = 1[X u > 0]`, `w2 = 1`
    /// (so `I = +1` and `D2 = D`). Program (21) over these triples is the
    /// two-layer convex program of [29]: the output `D X z`, the cone
    /// `(2D − I) X z ≥ 0` (the second-layer constraint `D X z ≥ 0` follows
    /// from it) and the group norm `‖z‖₂`.
    pub fn sample_two_layer<R: Rng + ?Sized>(
        x: ArrayView2<f64>,
        p: usize,
        rng: &mut R,
    ) -> Result<Self, CoreError> {
        let (n, d) = x.dim();
        check_sizes(x, 1, p)?;
        let draws = (0..p)
            .map(|_| {
                let u = Array2::from_shape_simple_fn((d, 1), || StandardNormal.sample(&mut *rng));
                Gates::triple(u, vec![1.0], x)
            })
            .collect();
        Self::from_draws(n, 1, draws)
    }

    fn from_draws(n: usize, m1: usize, draws: Vec<(Triple, Gates)>) -> Result<Self, CoreError> {
        let mut first: BTreeMap<Triple, Gates> = BTreeMap::new();
        for (triple, gates) in draws {
            first.entry(triple).or_insert(gates);
        }
        let (triples, gates): (Vec<Triple>, Vec<Gates>) = first.into_iter().unzip();
        let set = ArrangementSet::from_triples(n, m1, ArrangementMode::Sampled, triples)?;
        Ok(Self { set, gates })
    }

    /// The triples.
    pub fn set(&self) -> &ArrangementSet {
        &self.set
    }

    /// The gates of `triple`, if it is one of the set's.
    pub fn gates_of(&self, triple: &Triple) -> Option<&Gates> {
        self.set
            .triples()
            .binary_search(triple)
            .ok()
            .map(|t| &self.gates[t])
    }

    /// The convex model's own output at new points: every triple's masks at
    /// each point from its gates, then `Σ_t D2_t Σ_j D1_tj xᵀ (z_tj − z'_tj)`
    /// (on the training rows this is [`ConvexSolution::predict`]).
    pub fn predict(
        &self,
        solution: &ConvexSolution,
        points: ArrayView2<f64>,
    ) -> Result<Array1<f64>, CoreError> {
        let d = points.ncols();
        let mut f = Array1::zeros(points.nrows());
        for (t, triple) in solution.triples().iter().enumerate() {
            let diff = &solution.z().row(t) - &solution.z_prime().row(t);
            if diff.iter().all(|v| *v == 0.0) {
                continue;
            }
            let gates = self.gates_of(triple).ok_or_else(|| {
                CoreError::Convex("a solution triple is not one of the sampled set's".into())
            })?;
            if gates.w1.nrows() != d || diff.len() != d * gates.w2.len() {
                return Err(CoreError::Shape(format!(
                    "points with d = {d} for gates in R^{} and {} variables",
                    gates.w1.nrows(),
                    diff.len()
                )));
            }
            for (i, point) in points.rows().into_iter().enumerate() {
                let (d1, d2) = gates.masks_at(point);
                if !d2 {
                    continue;
                }
                for (j, on) in d1.iter().enumerate() {
                    if *on {
                        f[i] += point.dot(&diff.slice(ndarray::s![j * d..(j + 1) * d]));
                    }
                }
            }
        }
        Ok(f)
    }
}

fn check_sizes(x: ArrayView2<f64>, m1: usize, draws: usize) -> Result<(), CoreError> {
    let (n, d) = x.dim();
    if m1 == 0 || draws == 0 || n == 0 || d == 0 {
        return Err(CoreError::Arrangement(format!(
            "sampling needs m1, draws, n, d ≥ 1, got m1 = {m1}, {draws} draws on {n} × {d} data"
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::Arrangement("data must be finite".into()));
    }
    check_allocation(
        || format!("{draws} gated draws of {m1} neurons on {n} × {d} data"),
        array_bytes(8, &[draws, d.saturating_add(n).saturating_add(1), m1]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convex::TripleGeometry;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn data() -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        Array2::from_shape_simple_fn((12, 3), || StandardNormal.sample(&mut rng))
    }

    #[test]
    fn gates_reproduce_their_triples_masks_on_the_training_rows() {
        let x = data();
        let sampled =
            GatedArrangements::sample_nested(x.view(), 4, 5, 3, &mut ChaCha8Rng::seed_from_u64(1))
                .unwrap();
        assert!(sampled.set().len() > 1 && sampled.set().len() <= 15);
        for triple in sampled.set().triples() {
            let gates = sampled.gates_of(triple).unwrap();
            for (i, row) in x.rows().into_iter().enumerate() {
                let (d1, d2) = gates.masks_at(row);
                for (p, on) in triple.neurons().iter().zip(&d1) {
                    assert_eq!(p.d1.contains(i), *on);
                }
                if !triple.is_dead_row(i) {
                    assert_eq!(triple.d2().contains(i), d2);
                }
            }
            for (p, w) in triple.neurons().iter().zip(&gates.w2) {
                assert_eq!(p.positive, *w > 0.0);
            }
        }
    }

    #[test]
    fn the_gated_prediction_is_the_models_output_on_the_training_rows() {
        let x = data();
        let sampled =
            GatedArrangements::sample_nested(x.view(), 3, 4, 2, &mut ChaCha8Rng::seed_from_u64(2))
                .unwrap();
        let triples = sampled.set().triples().to_vec();
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let dim = 3 * 3;
        let z =
            Array2::from_shape_simple_fn((triples.len(), dim), || StandardNormal.sample(&mut rng));
        let z_prime =
            Array2::from_shape_simple_fn((triples.len(), dim), || StandardNormal.sample(&mut rng));
        let solution = ConvexSolution::new(triples, 3, z, z_prime).unwrap();
        let gated = sampled.predict(&solution, x.view()).unwrap();
        let direct = solution.predict(x.view());
        for (a, b) in gated.iter().zip(&direct) {
            assert!((a - b).abs() < 1e-12, "{a} {b}");
        }
        // The geometry's block is the same output, term by term.
        let t = &solution.triples()[0];
        assert_eq!(TripleGeometry::new(x.view(), t).block.nrows(), 12);
    }

    #[test]
    fn two_layer_triples_have_one_positive_neuron_and_d2_equal_to_d1() {
        let x = data();
        let sampled =
            GatedArrangements::sample_two_layer(x.view(), 20, &mut ChaCha8Rng::seed_from_u64(5))
                .unwrap();
        for triple in sampled.set().triples() {
            assert_eq!(triple.neurons().len(), 1);
            assert!(triple.neurons()[0].positive);
            assert_eq!(triple.d2(), &triple.neurons()[0].d1);
        }
        assert!(
            GatedArrangements::sample_two_layer(x.view(), 0, &mut ChaCha8Rng::seed_from_u64(5))
                .is_err()
        );
    }
}
