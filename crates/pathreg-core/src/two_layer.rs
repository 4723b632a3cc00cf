//! The two-layer ReLU network `f(x) = Σ_k (xᵀ u_k)+ α_k` with weight decay,
//! and the map of [29] from the two-layer convex program to it.

use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

use crate::CoreError;
use crate::convex::ConvexSolution;

/// `f(x) = Σ_k (xᵀ u_k)+ α_k`, objective `½‖f(X) − y‖² + (β/2) Σ_k (‖u_k‖² + α_k²)`.
#[derive(Debug, Clone, PartialEq)]
pub struct TwoLayerNetwork {
    /// `u_k`, one row per neuron.
    pub u: Array2<f64>,
    /// `α_k`.
    pub alpha: Array1<f64>,
}

impl TwoLayerNetwork {
    /// The network of a solution of the two-layer program (one-neuron
    /// triples with `I = +1`, see [`crate::gates::GatedArrangements::sample_two_layer`]):
    /// every non-zero `v_i = z_t` becomes `u = v/√‖v‖`, `α = √‖v‖`, and
    /// every non-zero `w_i = z'_t` becomes `u = w/√‖w‖`, `α = −√‖w‖`
    /// (Pilanci & Ergen 2020's map). Where the cone constraints hold,
    /// `(X u)+ α = D X v`, and `½(‖u‖² + α²) = ‖v‖`, so the network's
    /// objective equals the program's.
    pub fn from_convex(solution: &ConvexSolution) -> Result<Self, CoreError> {
        if solution
            .triples()
            .iter()
            .any(|t| t.neurons().len() != 1 || !t.neurons()[0].positive)
        {
            return Err(CoreError::Convex(
                "the two-layer map needs one-neuron triples with I = +1".into(),
            ));
        }
        let mut rows = Vec::new();
        let mut alpha = Vec::new();
        for (block, sign) in [(solution.z(), 1.0), (solution.z_prime(), -1.0)] {
            for v in block.rows() {
                let norm = v.dot(&v).sqrt();
                if norm > 0.0 {
                    let root = norm.sqrt();
                    rows.extend(v.iter().map(|a| a / root));
                    alpha.push(sign * root);
                }
            }
        }
        let d = solution.z().ncols();
        let k = alpha.len();
        Ok(Self {
            u: Array2::from_shape_vec((k, d), rows).map_err(|e| CoreError::Shape(e.to_string()))?,
            alpha: Array1::from(alpha),
        })
    }

    /// Neurons.
    pub fn neurons(&self) -> usize {
        self.alpha.len()
    }

    /// `f(X)`.
    pub fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        x.dot(&self.u.t()).mapv(|v| v.max(0.0)).dot(&self.alpha)
    }

    /// `½‖f(X) − y‖² + (β/2) Σ_k (‖u_k‖² + α_k²)`.
    pub fn objective(&self, x: ArrayView2<f64>, y: ArrayView1<f64>, beta: f64) -> f64 {
        let residual = self.predict(x) - y;
        let decay = self.u.iter().map(|v| v * v).sum::<f64>()
            + self.alpha.iter().map(|v| v * v).sum::<f64>();
        0.5 * residual.dot(&residual) + 0.5 * beta * decay
    }
}
