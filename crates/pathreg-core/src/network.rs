//! Three-layer parallel ReLU networks (eq. (1) with L = 3), the ℓ2 path
//! regularizer of Section 2.2, and the training objectives (4) and weight decay.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, Axis, s};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::CoreError;
use crate::limits::{array_bytes, check_allocation, total_bytes};
use crate::loss::Loss;

const F64: usize = std::mem::size_of::<f64>();

/// A parallel network of `K` three-layer ReLU sub-networks,
/// `f(X) = Σ_k ((X W1k)+ W2k)+ w3k` (eq. (1), L = 3).
///
/// Shapes: `w1` is `K × d × m1`, `w2` is `K × m1 × m2`, `w3` is `K × m2`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelNetwork {
    w1: Array3<f64>,
    w2: Array3<f64>,
    w3: Array2<f64>,
}

/// Which regularizer multiplies β in the training objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Regularizer {
    /// The ℓ2 path regularizer R(θ) of Section 2.2 (objective (4)).
    Path,
    /// Weight decay, `½ Σ_l ‖W_l‖_F²` over all layers (the paper's WD baseline).
    WeightDecay,
}

/// The value of a training objective split into its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectiveValue {
    /// `L(f(X), y)`.
    pub loss: f64,
    /// `R(θ)` (without β).
    pub regularizer: f64,
    /// `loss + β · regularizer`.
    pub objective: f64,
}

/// Gradients of an objective with respect to the three weight tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Gradient {
    /// ∂/∂W1, `K × d × m1`.
    pub w1: Array3<f64>,
    /// ∂/∂W2, `K × m1 × m2`.
    pub w2: Array3<f64>,
    /// ∂/∂w3, `K × m2`.
    pub w3: Array2<f64>,
}

/// Hidden activations kept by the forward pass for backpropagation.
struct ForwardCache {
    /// `(X W1k)+` for each k: `K` arrays of `n × m1`.
    hidden1: Vec<Array2<f64>>,
    /// `((X W1k)+ W2k)+` for each k: `K` arrays of `n × m2`.
    hidden2: Vec<Array2<f64>>,
    output: Array1<f64>,
}

impl ParallelNetwork {
    /// Builds a network from its weight tensors, checking that the shapes agree.
    pub fn new(w1: Array3<f64>, w2: Array3<f64>, w3: Array2<f64>) -> Result<Self, CoreError> {
        let (k, _, m1) = w1.dim();
        let (k2, m1b, m2) = w2.dim();
        let (k3, m2b) = w3.dim();
        if k != k2 || k != k3 || m1 != m1b || m2 != m2b {
            return Err(CoreError::Shape(format!(
                "parallel network weights disagree: W1 {:?}, W2 {:?}, w3 {:?}",
                w1.dim(),
                w2.dim(),
                w3.dim()
            )));
        }
        Ok(Self { w1, w2, w3 })
    }

    /// Bytes of the weights of a network with `K` sub-networks of widths
    /// `(d, m1, m2)`: `8 (K·d·m1 + K·m1·m2 + K·m2)`, saturating at `u64::MAX`.
    /// The constructors refuse beyond [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn parameter_bytes(k: usize, d: usize, m1: usize, m2: usize) -> u64 {
        total_bytes(&[
            array_bytes(F64, &[k, d, m1]),
            array_bytes(F64, &[k, m1, m2]),
            array_bytes(F64, &[k, m2]),
        ])
    }

    /// Bytes one forward pass on `n` samples keeps for backpropagation (the
    /// hidden activations, `8 K·n·(m1 + m2)`, and the `n` outputs), saturating.
    /// [`Self::predict`] and the objectives refuse beyond
    /// [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn forward_bytes(n: usize, k: usize, m1: usize, m2: usize) -> u64 {
        total_bytes(&[
            array_bytes(F64, &[k, n, m1]),
            array_bytes(F64, &[k, n, m2]),
            array_bytes(F64, &[n]),
        ])
    }

    /// A network with i.i.d. `N(0, scale²)` weights in every layer, refusing with [`CoreError::TooLarge`] when the
    /// weights ([`Self::parameter_bytes`]) would exceed [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn gaussian<R: Rng + ?Sized>(
        rng: &mut R,
        k: usize,
        d: usize,
        m1: usize,
        m2: usize,
        scale: f64,
    ) -> Result<Self, CoreError> {
        Self::gaussian_per_layer(rng, (k, d, m1, m2), [scale; 3])
    }

    /// LeCun-normal initialization (layer weights `N(0, 1/fan_in)`), refusing with [`CoreError::TooLarge`] when the
    /// weights ([`Self::parameter_bytes`]) would exceed [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn lecun_normal<R: Rng + ?Sized>(
        rng: &mut R,
        k: usize,
        d: usize,
        m1: usize,
        m2: usize,
    ) -> Result<Self, CoreError> {
        let scale = |fan_in: usize| 1.0 / (fan_in.max(1) as f64).sqrt();
        Self::gaussian_per_layer(rng, (k, d, m1, m2), [scale(d), scale(m1), scale(m2)])
    }

    /// Gaussian weights with one standard deviation per layer, drawn in the
    /// order W1, W2, w3 (row-major), so a seed fixes the network; refusing with [`CoreError::TooLarge`] when
    /// the weights ([`Self::parameter_bytes`]) would exceed
    /// [`MAX_ALLOCATION_BYTES`](crate::limits::MAX_ALLOCATION_BYTES).
    pub fn gaussian_per_layer<R: Rng + ?Sized>(
        rng: &mut R,
        (k, d, m1, m2): (usize, usize, usize, usize),
        scales: [f64; 3],
    ) -> Result<Self, CoreError> {
        check_allocation(
            || format!("a parallel network with (K, d, m1, m2) = ({k}, {d}, {m1}, {m2})"),
            Self::parameter_bytes(k, d, m1, m2),
        )?;
        let mut draw = |scale: f64| scale * standard_normal(rng);
        let w1 = Array3::from_shape_simple_fn((k, d, m1), || draw(scales[0]));
        let w2 = Array3::from_shape_simple_fn((k, m1, m2), || draw(scales[1]));
        let w3 = Array2::from_shape_simple_fn((k, m2), || draw(scales[2]));
        Ok(Self { w1, w2, w3 })
    }

    /// Number of sub-networks K.
    pub fn num_subnetworks(&self) -> usize {
        self.w1.dim().0
    }
    /// Input dimension d.
    pub fn input_dim(&self) -> usize {
        self.w1.dim().1
    }
    /// First hidden width m1.
    pub fn m1(&self) -> usize {
        self.w1.dim().2
    }
    /// Second hidden width m2.
    pub fn m2(&self) -> usize {
        self.w2.dim().2
    }
    /// First-layer weights, `K × d × m1`.
    pub fn w1(&self) -> &Array3<f64> {
        &self.w1
    }
    /// Second-layer weights, `K × m1 × m2`.
    pub fn w2(&self) -> &Array3<f64> {
        &self.w2
    }
    /// Output weights, `K × m2`.
    pub fn w3(&self) -> &Array2<f64> {
        &self.w3
    }

    /// Mutable access to all three tensors, for optimizers.
    pub fn weights_mut(&mut self) -> (&mut Array3<f64>, &mut Array3<f64>, &mut Array2<f64>) {
        (&mut self.w1, &mut self.w2, &mut self.w3)
    }

    fn check_input(&self, x: ArrayView2<f64>) -> Result<(), CoreError> {
        if x.ncols() != self.input_dim() {
            return Err(CoreError::Shape(format!(
                "data has {} features but the network expects {}",
                x.ncols(),
                self.input_dim()
            )));
        }
        let (k, m1, m2) = (self.num_subnetworks(), self.m1(), self.m2());
        check_allocation(
            || {
                format!(
                    "the forward pass of a (K, m1, m2) = ({k}, {m1}, {m2}) network on {} samples",
                    x.nrows()
                )
            },
            Self::forward_bytes(x.nrows(), k, m1, m2),
        )
    }

    fn forward_cached(&self, x: ArrayView2<f64>) -> ForwardCache {
        let k = self.num_subnetworks();
        let mut output = Array1::zeros(x.nrows());
        let mut hidden1 = Vec::with_capacity(k);
        let mut hidden2 = Vec::with_capacity(k);
        for kk in 0..k {
            let h1 = x.dot(&self.w1.index_axis(Axis(0), kk)).mapv(relu);
            let h2 = h1.dot(&self.w2.index_axis(Axis(0), kk)).mapv(relu);
            output += &h2.dot(&self.w3.row(kk));
            hidden1.push(h1);
            hidden2.push(h2);
        }
        ForwardCache {
            hidden1,
            hidden2,
            output,
        }
    }

    /// The network output `f(X)` of eq. (1).
    pub fn predict(&self, x: ArrayView2<f64>) -> Result<Array1<f64>, CoreError> {
        self.check_input(x)?;
        Ok(self.forward_cached(x).output)
    }

    /// Path norm of each sub-network,
    /// `R_k = sqrt(Σ_{j1,j2} ‖w1kj1‖² w2kj1j2² w3kj2²)` (Section 2.2, eq. (4)).
    pub fn path_norms(&self) -> Array1<f64> {
        let k = self.num_subnetworks();
        Array1::from_iter((0..k).map(|kk| self.path_norm_squared(kk).sqrt()))
    }

    fn path_norm_squared(&self, kk: usize) -> f64 {
        let w1 = self.w1.index_axis(Axis(0), kk);
        let w2 = self.w2.index_axis(Axis(0), kk);
        let w3 = self.w3.row(kk);
        let col_norms: Vec<f64> = w1.columns().into_iter().map(|c| c.dot(&c)).collect();
        let mut total = 0.0;
        for (j1, c) in col_norms.iter().enumerate() {
            for (j2, w3j) in w3.iter().enumerate() {
                let w = w2[[j1, j2]] * w3j;
                total += c * w * w;
            }
        }
        total
    }

    /// The ℓ2 path regularizer `R(θ) = Σ_k R_k` (Section 2.2).
    pub fn path_regularizer(&self) -> f64 {
        self.path_norms().sum()
    }

    /// The weight-decay regularizer `½ (‖W1‖² + ‖W2‖² + ‖w3‖²)`.
    pub fn weight_decay(&self) -> f64 {
        0.5 * (self.w1.iter().map(|v| v * v).sum::<f64>()
            + self.w2.iter().map(|v| v * v).sum::<f64>()
            + self.w3.iter().map(|v| v * v).sum::<f64>())
    }

    /// The regularizer selected by `kind`.
    pub fn regularizer(&self, kind: Regularizer) -> f64 {
        match kind {
            Regularizer::Path => self.path_regularizer(),
            Regularizer::WeightDecay => self.weight_decay(),
        }
    }

    /// The training objective `L(f(X), y) + β R(θ)`: objective (4) when `kind` is
    /// [`Regularizer::Path`].
    pub fn objective(
        &self,
        x: ArrayView2<f64>,
        y: ArrayView1<f64>,
        loss: Loss,
        beta: f64,
        kind: Regularizer,
    ) -> Result<ObjectiveValue, CoreError> {
        let f = self.predict(x)?;
        check_labels(&f, y)?;
        let loss_value = loss.value(f.view(), y);
        let reg = self.regularizer(kind);
        Ok(ObjectiveValue {
            loss: loss_value,
            regularizer: reg,
            objective: loss_value + beta * reg,
        })
    }

    /// Objective and its gradient by backpropagation. `loss_scale` multiplies the
    /// loss term (mini-batch SGD passes `n / batch` so that the stochastic gradient
    /// is unbiased for the full objective); the regularizer is not scaled.
    ///
    /// The path regularizer is not differentiable where a sub-network's path norm is
    /// zero; there the zero subgradient is used.
    pub fn objective_and_gradient(
        &self,
        x: ArrayView2<f64>,
        y: ArrayView1<f64>,
        loss: Loss,
        beta: f64,
        kind: Regularizer,
        loss_scale: f64,
    ) -> Result<(ObjectiveValue, Gradient), CoreError> {
        let (value, grad, _) =
            self.objective_gradient_and_outputs(x, y, loss, beta, kind, loss_scale)?;
        Ok((value, grad))
    }

    /// [`Self::objective_and_gradient`] and the outputs `f(x)` it computed on
    /// the way (e.g. for a running training accuracy).
    pub fn objective_gradient_and_outputs(
        &self,
        x: ArrayView2<f64>,
        y: ArrayView1<f64>,
        loss: Loss,
        beta: f64,
        kind: Regularizer,
        loss_scale: f64,
    ) -> Result<(ObjectiveValue, Gradient, Array1<f64>), CoreError> {
        self.check_input(x)?;
        let cache = self.forward_cached(x);
        check_labels(&cache.output, y)?;
        let loss_value = loss.value(cache.output.view(), y);
        let dloss = loss.derivative(cache.output.view(), y) * loss_scale;
        let mut grad = Gradient {
            w1: Array3::zeros(self.w1.raw_dim()),
            w2: Array3::zeros(self.w2.raw_dim()),
            w3: Array2::zeros(self.w3.raw_dim()),
        };
        for kk in 0..self.num_subnetworks() {
            let h1 = &cache.hidden1[kk];
            let h2 = &cache.hidden2[kk];
            let w2 = self.w2.index_axis(Axis(0), kk);
            let w3 = self.w3.row(kk);
            grad.w3.row_mut(kk).assign(&h2.t().dot(&dloss));
            // δ2 = (dloss w3ᵀ) ⊙ 1[h2 > 0]
            let mut delta2 = outer(dloss.view(), w3);
            delta2.zip_mut_with(h2, |g, h| *g = if *h > 0.0 { *g } else { 0.0 });
            grad.w2
                .index_axis_mut(Axis(0), kk)
                .assign(&h1.t().dot(&delta2));
            let mut delta1 = delta2.dot(&w2.t());
            delta1.zip_mut_with(h1, |g, h| *g = if *h > 0.0 { *g } else { 0.0 });
            grad.w1
                .index_axis_mut(Axis(0), kk)
                .assign(&x.t().dot(&delta1));
        }
        let reg = match kind {
            Regularizer::Path => self.add_path_gradient(&mut grad, beta),
            Regularizer::WeightDecay => {
                grad.w1.scaled_add(beta, &self.w1);
                grad.w2.scaled_add(beta, &self.w2);
                grad.w3.scaled_add(beta, &self.w3);
                self.weight_decay()
            }
        };
        Ok((
            ObjectiveValue {
                loss: loss_value,
                regularizer: reg,
                objective: loss_value + beta * reg,
            },
            grad,
            cache.output,
        ))
    }

    /// Adds `β ∇R(θ)` to `grad` and returns `R(θ)`.
    fn add_path_gradient(&self, grad: &mut Gradient, beta: f64) -> f64 {
        let mut total = 0.0;
        for kk in 0..self.num_subnetworks() {
            let norm = self.path_norm_squared(kk).sqrt();
            total += norm;
            if norm == 0.0 {
                continue;
            }
            let w1 = self.w1.index_axis(Axis(0), kk);
            let w2 = self.w2.index_axis(Axis(0), kk);
            let w3 = self.w3.row(kk);
            let scale = beta / norm;
            // R_k² = Σ_{j1} ‖w1j1‖² a_j1, with a_j1 = Σ_j2 w2j1j2² w3j2².
            let a: Vec<f64> = (0..self.m1())
                .map(|j1| {
                    w2.row(j1)
                        .iter()
                        .zip(w3.iter())
                        .map(|(u, v)| u * u * v * v)
                        .sum()
                })
                .collect();
            let c: Vec<f64> = w1.columns().into_iter().map(|col| col.dot(&col)).collect();
            let mut g1 = grad.w1.index_axis_mut(Axis(0), kk);
            for (j1, aj) in a.iter().enumerate() {
                g1.column_mut(j1).scaled_add(scale * aj, &w1.column(j1));
            }
            let mut g2 = grad.w2.index_axis_mut(Axis(0), kk);
            for j1 in 0..self.m1() {
                for j2 in 0..self.m2() {
                    g2[[j1, j2]] += scale * c[j1] * w2[[j1, j2]] * w3[j2] * w3[j2];
                }
            }
            let mut g3 = grad.w3.row_mut(kk);
            for j2 in 0..self.m2() {
                let b: f64 = (0..self.m1())
                    .map(|j1| c[j1] * w2[[j1, j2]] * w2[[j1, j2]])
                    .sum();
                g3[j2] += scale * b * w3[j2];
            }
        }
        total
    }

    /// Keeps only the sub-networks selected by `keep` (in order).
    pub fn select_subnetworks(&self, keep: &[usize]) -> Self {
        let w1 = self.w1.select(Axis(0), keep);
        let w2 = self.w2.select(Axis(0), keep);
        let w3 = self.w3.select(Axis(0), keep);
        Self { w1, w2, w3 }
    }

    /// Sub-network `kk`'s weights as `(W1k, W2k, w3k)` views.
    pub fn subnetwork(
        &self,
        kk: usize,
    ) -> (
        ndarray::ArrayView2<'_, f64>,
        ndarray::ArrayView2<'_, f64>,
        ndarray::ArrayView1<'_, f64>,
    ) {
        (
            self.w1.slice(s![kk, .., ..]),
            self.w2.slice(s![kk, .., ..]),
            self.w3.row(kk),
        )
    }
}

fn check_labels(f: &Array1<f64>, y: ArrayView1<f64>) -> Result<(), CoreError> {
    if f.len() != y.len() {
        return Err(CoreError::Shape(format!(
            "{} samples but {} labels",
            f.len(),
            y.len()
        )));
    }
    Ok(())
}

/// One draw of `N(0, 1)`.
pub fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

fn relu(v: f64) -> f64 {
    v.max(0.0)
}

fn outer(a: ArrayView1<f64>, b: ArrayView1<f64>) -> Array2<f64> {
    Array2::from_shape_fn((a.len(), b.len()), |(i, j)| a[i] * b[j])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn random_problem(seed: u64) -> (ParallelNetwork, Array2<f64>, Array1<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let net = ParallelNetwork::gaussian(&mut rng, 4, 3, 5, 2, 1.0).unwrap();
        let x = Array2::from_shape_fn((7, 3), |_| standard_normal(&mut rng));
        let y = Array1::from_shape_fn(7, |_| standard_normal(&mut rng));
        (net, x, y)
    }

    #[test]
    fn forward_matches_explicit_sum_over_neurons() {
        let (net, x, _) = random_problem(1);
        let f = net.predict(x.view()).unwrap();
        for i in 0..x.nrows() {
            let mut expected = 0.0;
            for k in 0..4 {
                for j2 in 0..2 {
                    let mut pre2 = 0.0;
                    for j1 in 0..5 {
                        let pre1: f64 = (0..3).map(|t| x[[i, t]] * net.w1[[k, t, j1]]).sum();
                        pre2 += pre1.max(0.0) * net.w2[[k, j1, j2]];
                    }
                    expected += pre2.max(0.0) * net.w3[[k, j2]];
                }
            }
            assert!((f[i] - expected).abs() < 1e-12, "{} vs {}", f[i], expected);
        }
    }

    #[test]
    fn path_regularizer_sums_over_all_paths() {
        let (net, _, _) = random_problem(2);
        let mut expected = 0.0;
        for k in 0..4 {
            let mut s = 0.0;
            for j1 in 0..5 {
                let c: f64 = (0..3).map(|t| net.w1[[k, t, j1]].powi(2)).sum();
                for j2 in 0..2 {
                    s += c * net.w2[[k, j1, j2]].powi(2) * net.w3[[k, j2]].powi(2);
                }
            }
            expected += s.sqrt();
        }
        assert!((net.path_regularizer() - expected).abs() < 1e-12);
    }

    fn finite_difference_check(kind: Regularizer, loss: Loss) {
        let (net, x, y) = random_problem(3);
        let y = match loss {
            Loss::Squared => y,
            _ => y.mapv(|v| if v >= 0.0 { 1.0 } else { -1.0 }),
        };
        let beta = 0.3;
        let (_, grad) = net
            .objective_and_gradient(x.view(), y.view(), loss, beta, kind, 1.0)
            .unwrap();
        let h = 1e-6;
        let eval = |n: &ParallelNetwork| {
            n.objective(x.view(), y.view(), loss, beta, kind)
                .unwrap()
                .objective
        };
        let mut worst: f64 = 0.0;
        // Central differences over every weight of layer `layer` (0, 1, 2).
        for layer in 0..3 {
            let analytic: Vec<f64> = match layer {
                0 => grad.w1.iter().copied().collect(),
                1 => grad.w2.iter().copied().collect(),
                _ => grad.w3.iter().copied().collect(),
            };
            for (i, g) in analytic.into_iter().enumerate() {
                let shifted = |delta: f64| {
                    let mut n = net.clone();
                    let (w1, w2, w3) = n.weights_mut();
                    let slot = match layer {
                        0 => w1.iter_mut().nth(i),
                        1 => w2.iter_mut().nth(i),
                        _ => w3.iter_mut().nth(i),
                    };
                    if let Some(v) = slot {
                        *v += delta;
                    }
                    eval(&n)
                };
                let fd = (shifted(h) - shifted(-h)) / (2.0 * h);
                worst = worst.max((fd - g).abs() / (1.0 + g.abs()));
            }
        }
        assert!(worst < 1e-6, "worst relative gradient error {worst}");
    }

    #[test]
    fn path_gradient_matches_finite_differences() {
        finite_difference_check(Regularizer::Path, Loss::Squared);
    }

    #[test]
    fn weight_decay_gradient_matches_finite_differences() {
        finite_difference_check(Regularizer::WeightDecay, Loss::Squared);
    }

    #[test]
    fn logistic_gradient_matches_finite_differences() {
        finite_difference_check(Regularizer::Path, Loss::Logistic);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let (net, _, _) = random_problem(4);
        let x = Array2::zeros((3, 2));
        assert!(net.predict(x.view()).is_err());
        let w1 = Array3::zeros((2, 3, 4));
        let w2 = Array3::zeros((2, 5, 1));
        let w3 = Array2::zeros((2, 1));
        assert!(ParallelNetwork::new(w1, w2, w3).is_err());
    }

    #[test]
    fn sizes_beyond_the_allocation_limit_are_errors_not_aborts() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for (k, d, m1, m2) in [
            (1_000_000_000, 2, 3, 1),
            (5, 1_000_000_000, 3, 1),
            (5, 2, 1_000_000_000, 1),
            (5, 2, 3, 1_000_000_000),
            (usize::MAX, usize::MAX, usize::MAX, usize::MAX),
        ] {
            let err = ParallelNetwork::lecun_normal(&mut rng, k, d, m1, m2).unwrap_err();
            assert!(matches!(err, CoreError::TooLarge(_)), "{err}");
            assert!(err.to_string().contains("MAX_ALLOCATION_BYTES"), "{err}");
            assert!(ParallelNetwork::gaussian(&mut rng, k, d, m1, m2, 1.0).is_err());
        }
        assert_eq!(
            ParallelNetwork::parameter_bytes(4, 3, 5, 2),
            8 * (60 + 40 + 8)
        );
        assert_eq!(
            ParallelNetwork::forward_bytes(10, 4, 5, 2),
            8 * (200 + 80 + 10)
        );
        let net = ParallelNetwork::lecun_normal(&mut rng, 4, 3, 5, 2).unwrap();
        assert_eq!(net.m1(), 5);
        // A seed fixes the network.
        let a = ParallelNetwork::lecun_normal(&mut ChaCha8Rng::seed_from_u64(2), 4, 3, 5, 2);
        let b = ParallelNetwork::lecun_normal(&mut ChaCha8Rng::seed_from_u64(2), 4, 3, 5, 2);
        assert_eq!(a.unwrap(), b.unwrap());
    }

    #[test]
    fn a_forward_pass_beyond_the_allocation_limit_is_an_error() {
        let (net, _, _) = random_problem(5);
        // 10⁹ samples (one row repeated by a zero stride): 224 GB of activations.
        let row = Array2::<f64>::zeros((1, 3));
        let x = row.broadcast((1_000_000_000, 3)).unwrap();
        let err = net.predict(x).unwrap_err();
        assert!(matches!(err, CoreError::TooLarge(_)), "{err}");
        let label = Array1::<f64>::zeros(1);
        let y = label.broadcast(1_000_000_000).unwrap();
        assert!(
            net.objective(x, y, Loss::Squared, 0.1, Regularizer::Path)
                .is_err()
        );
        assert!(
            net.objective_and_gradient(x, y, Loss::Squared, 0.1, Regularizer::Path, 1.0)
                .is_err()
        );
    }
}
