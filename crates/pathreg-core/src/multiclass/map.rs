//! Proposition 1 for the vector-output program: the network that realizes
//! a solution of (11), and how closely it predicts like the convex model.

use ndarray::{Array2, Axis, s};

use super::convex::ConvexModel;
use super::data::{ImageSet, argmax_rows};
use super::masks::Masks;
use super::network::{NetworkModel, NetworkShape};
use crate::CoreError;
use crate::network::Regularizer;

/// The network of Proposition 1 mapped from `(Z, Z')`, and the groups it
/// came from.
#[derive(Debug, Clone)]
pub struct MappedNetwork {
    /// The network (`m2 = 1`, one sub-network per non-zero block).
    pub model: NetworkModel,
    /// Its flat parameters.
    pub params: Vec<f32>,
    /// Its path regularizer `Σ_{s,k,c} ‖Z^s_kc‖_F` (without β).
    pub path_regularizer: f64,
    /// The block `(s, k, c)` of `(Z, Z')` each sub-network realizes, in
    /// sub-network order.
    pub blocks: Vec<(usize, usize, usize)>,
}

/// How the mapped network predicts next to the convex model on a dataset.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MapCheck {
    /// Samples compared.
    pub samples: usize,
    /// `Σ_i h_i`, the constraint violation of `(Z, Z')` on them.
    pub violation: f64,
    /// `Σ_{i,c} |f_net(x_i)_c − f_cvx(x_i)_c|`; at most `violation` (up to
    /// rounding) by Proposition 1.
    pub output_difference: f64,
    /// Samples where every constraint holds (`h_i = 0`).
    pub feasible_samples: usize,
    /// The largest `max_c |f_net − f_cvx|` over the feasible samples (zero
    /// up to float32 rounding).
    pub feasible_max_difference: f64,
    /// Fraction of samples where both predict the same class.
    pub same_prediction: f64,
}

/// Proposition 1 for (11) with `C` outputs. Each block `(s, k, c)` with
/// `Z^s_kc ≠ 0` becomes one sub-network with `m1` neurons and `m2 = 1`:
///
/// ```text
/// w1_j = I_kj z^s_kjc / sqrt(a),   w2_j = I_kj,   w3 = (−1)^s sqrt(a) e_c,   a = ‖Z^s_kc‖_F.
/// ```
///
/// Where the constraints of the block hold on `x_i`,
/// `(x_iᵀ w1_j)+ = D1_kj(i) x_iᵀ w1_j` and the second ReLU passes
/// `D2_k(i) Σ_j D1_kj(i) x_iᵀ z^s_kjc`, so the sub-network adds exactly the
/// convex model's term to output `c`; each violated inequality moves one
/// output by at most its violation. The sub-network's path norm is `a`.
pub fn to_network(convex: &ConvexModel, params: &[f32]) -> Result<MappedNetwork, CoreError> {
    let (d, k, m1, classes) = (convex.d(), convex.k(), convex.m1(), convex.classes());
    let w = convex.variables(params);
    let mut blocks = Vec::new();
    for sign in 0..2 {
        for kk in 0..k {
            for c in 0..classes {
                let col = convex.column(sign, kk, c, 0);
                let block = w.slice(s![.., col..col + m1]);
                let a = block.iter().map(|v| f64::from(v * v)).sum::<f64>().sqrt();
                if a > 0.0 {
                    blocks.push((sign, kk, c, a));
                }
            }
        }
    }
    let subnetworks = blocks.len().max(1);
    let shape = NetworkShape {
        d,
        k: subnetworks,
        m1,
        m2: 1,
        classes,
    };
    let model = NetworkModel::new(shape, Regularizer::Path, 0.0)?;
    let mut w1 = Array2::<f32>::zeros((d, subnetworks * m1));
    let mut w2 = vec![0.0f32; subnetworks * m1];
    let mut w3 = vec![0.0f32; subnetworks * classes];
    let signs = convex.signs();
    for (t, &(sign, kk, c, a)) in blocks.iter().enumerate() {
        let root = a.sqrt() as f32;
        let col = convex.column(sign, kk, c, 0);
        for j in 0..m1 {
            let i_kj = signs[kk * m1 + j];
            w1.column_mut(t * m1 + j)
                .assign(&w.column(col + j).mapv(|v| i_kj * v / root));
            w2[t * m1 + j] = i_kj;
        }
        w3[t * classes + c] = if sign == 0 { root } else { -root };
    }
    let mut flat = w1.into_raw_vec_and_offset().0;
    flat.extend(w2);
    flat.extend(w3);
    Ok(MappedNetwork {
        model,
        params: flat,
        path_regularizer: blocks.iter().map(|b| b.3).sum(),
        blocks: blocks.iter().map(|&(s, kk, c, _)| (s, kk, c)).collect(),
    })
}

/// Compares the mapped network with the convex model on `rows` of `set`
/// (with the convex model's masks on `set`).
pub fn check_map(
    convex: &ConvexModel,
    params: &[f32],
    mapped: &MappedNetwork,
    set: &ImageSet,
    masks: &Masks,
    rows: &[usize],
) -> MapCheck {
    let mut check = MapCheck {
        samples: 0,
        violation: 0.0,
        output_difference: 0.0,
        feasible_samples: 0,
        feasible_max_difference: 0.0,
        same_prediction: 0.0,
    };
    let mut same = 0usize;
    for block in rows.chunks(1000) {
        let (cvx, violations) = convex.outputs_and_violations(params, set, masks, block);
        let net = mapped
            .model
            .predict(&mapped.params, set.gather(block).view());
        let same_class = argmax_rows(net.view())
            .iter()
            .zip(argmax_rows(cvx.view()))
            .filter(|(a, b)| **a == *b)
            .count();
        same += same_class;
        for ((net_row, cvx_row), violation) in net
            .axis_iter(Axis(0))
            .zip(cvx.axis_iter(Axis(0)))
            .zip(violations)
        {
            let diffs: Vec<f64> = net_row
                .iter()
                .zip(cvx_row)
                .map(|(a, b)| f64::from((a - b).abs()))
                .collect();
            check.samples += 1;
            check.violation += violation;
            check.output_difference += diffs.iter().sum::<f64>();
            if violation == 0.0 {
                check.feasible_samples += 1;
                check.feasible_max_difference = diffs
                    .iter()
                    .copied()
                    .fold(check.feasible_max_difference, f64::max);
            }
        }
    }
    check.same_prediction = if check.samples > 0 {
        same as f64 / check.samples as f64
    } else {
        1.0
    };
    check
}
