//! Convex losses `L(f, y)` of objective (2).

use ndarray::{Array1, ArrayView1};

/// A convex loss on the network output. Values are sums over samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// `½ ‖f − y‖²`.
    Squared,
    /// `Σ_i max(0, 1 − y_i f_i)` for labels `±1`.
    Hinge,
    /// `Σ_i log(1 + exp(−y_i f_i))` for labels `±1`.
    Logistic,
}

impl Loss {
    /// `L(f, y)`.
    pub fn value(self, f: ArrayView1<f64>, y: ArrayView1<f64>) -> f64 {
        match self {
            Loss::Squared => 0.5 * f.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>(),
            Loss::Hinge => f.iter().zip(y).map(|(a, b)| (1.0 - a * b).max(0.0)).sum(),
            Loss::Logistic => f.iter().zip(y).map(|(a, b)| softplus(-a * b)).sum(),
        }
    }

    /// `∂L/∂f` (a subgradient for the hinge loss).
    pub fn derivative(self, f: ArrayView1<f64>, y: ArrayView1<f64>) -> Array1<f64> {
        match self {
            Loss::Squared => &f - &y,
            Loss::Hinge => Array1::from_iter(
                f.iter()
                    .zip(y)
                    .map(|(a, b)| if a * b < 1.0 { -b } else { 0.0 }),
            ),
            Loss::Logistic => Array1::from_iter(f.iter().zip(y).map(|(a, b)| -b * sigmoid(-a * b))),
        }
    }
}

/// `log(1 + e^t)`, computed without overflow.
fn softplus(t: f64) -> f64 {
    if t > 0.0 {
        t + (-t).exp().ln_1p()
    } else {
        t.exp().ln_1p()
    }
}

fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn squared_loss_value_and_derivative() {
        let f = array![1.0, 2.0];
        let y = array![0.0, 4.0];
        assert_eq!(Loss::Squared.value(f.view(), y.view()), 2.5);
        assert_eq!(
            Loss::Squared.derivative(f.view(), y.view()),
            array![1.0, -2.0]
        );
    }

    #[test]
    fn logistic_is_stable_for_large_margins() {
        let f = array![1000.0, -1000.0];
        let y = array![1.0, 1.0];
        let v = Loss::Logistic.value(f.view(), y.view());
        assert!((v - 1000.0).abs() < 1e-9);
        assert!(v.is_finite());
    }
}
