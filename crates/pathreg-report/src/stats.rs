//! Paired comparisons for result tables: the mean difference with a
//! Student-t 95 % confidence interval, and the exact two-sided Wilcoxon
//! signed-rank test (zeros dropped, ties given their average rank, the null
//! distribution of the rank sum counted exactly).

/// The two-sided 97.5 % quantiles of Student's t for 1 to 30 degrees of
/// freedom (standard tables, to 3 decimals).
const T_975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// `t_{0.975, ν}`: the table up to 30, beyond it the Cornish–Fisher
/// expansion around the normal quantile (error below 1e-4 there).
pub fn t_quantile_975(degrees: usize) -> f64 {
    if degrees == 0 {
        return f64::INFINITY;
    }
    if degrees <= T_975.len() {
        return T_975[degrees - 1];
    }
    let z = 1.959_963_984_540_054_f64;
    let nu = degrees as f64;
    z + (z.powi(3) + z) / (4.0 * nu)
        + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * nu * nu)
}

/// The paired differences' summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Paired {
    /// Pairs.
    pub n: usize,
    /// Mean difference.
    pub mean: f64,
    /// Standard error of the mean, `s/√n` (infinite for one pair).
    pub standard_error: f64,
    /// The Student-t 95 % confidence interval of the mean (infinite for one pair).
    pub interval: (f64, f64),
    /// The two-sided Wilcoxon signed-rank p-value (1 when every difference is zero).
    pub p_value: f64,
}

/// The Student-t summary and the Wilcoxon test of `differences`.
pub fn paired(differences: &[f64]) -> Paired {
    let n = differences.len();
    let mean = differences.iter().sum::<f64>() / n.max(1) as f64;
    let (standard_error, half) = if n > 1 {
        let var = differences
            .iter()
            .map(|d| (d - mean) * (d - mean))
            .sum::<f64>()
            / (n - 1) as f64;
        let standard_error = (var / n as f64).sqrt();
        (standard_error, t_quantile_975(n - 1) * standard_error)
    } else {
        (f64::INFINITY, f64::INFINITY)
    };
    Paired {
        n,
        mean,
        standard_error,
        interval: (mean - half, mean + half),
        p_value: wilcoxon_signed_rank(differences),
    }
}

/// The exact two-sided p-value of the Wilcoxon signed-rank test.
pub fn wilcoxon_signed_rank(differences: &[f64]) -> f64 {
    let mut nonzero: Vec<f64> = differences
        .iter()
        .copied()
        .filter(|d| *d != 0.0 && d.is_finite())
        .collect();
    if nonzero.is_empty() {
        return 1.0;
    }
    nonzero.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    // Twice the (average) ranks, so ties stay integers.
    let m = nonzero.len();
    let mut doubled = vec![0usize; m];
    let mut i = 0;
    while i < m {
        let mut j = i;
        while j + 1 < m && nonzero[j + 1].abs() == nonzero[i].abs() {
            j += 1;
        }
        // Ranks i+1 ..= j+1, average (i + j + 2)/2, doubled: i + j + 2.
        for r in &mut doubled[i..=j] {
            *r = i + j + 2;
        }
        i = j + 1;
    }
    let observed: usize = nonzero
        .iter()
        .zip(&doubled)
        .filter(|(d, _)| **d > 0.0)
        .map(|(_, r)| r)
        .sum();
    // counts[s] = sign patterns whose positive doubled ranks sum to s.
    let total: usize = doubled.iter().sum();
    let mut counts = vec![0f64; total + 1];
    counts[0] = 1.0;
    for &r in &doubled {
        for s in (r..=total).rev() {
            counts[s] += counts[s - r];
        }
    }
    let all = 2f64.powi(m as i32);
    let below: f64 = counts[..=observed].iter().sum::<f64>() / all;
    let above: f64 = counts[observed..].iter().sum::<f64>() / all;
    (2.0 * below.min(above)).min(1.0)
}

/// Holm's step-down adjustment of `p_values` (same order).
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|a, b| p_values[*a].total_cmp(&p_values[*b]));
    let mut adjusted = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p_values[i]).min(1.0));
        adjusted[i] = running;
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hand_computed_example() {
        // d = (0.1, 0.2, -0.05, 0.3, 0.15): |d| ranks 2, 4, 1, 5, 3; W+ = 14 of 15.
        // Of the 32 sign patterns, W+ ≥ 14 for W+ ∈ {14, 15}: 1 + 1 = 2, so p = 2·2/32 = 0.125.
        let d = [0.1, 0.2, -0.05, 0.3, 0.15];
        assert!((wilcoxon_signed_rank(&d) - 0.125).abs() < 1e-12);
        let s = paired(&d);
        // mean 0.14, variance 0.067/4 = 0.01675, half = 2.776·sqrt(0.01675/5) = 0.160673.
        assert!((s.mean - 0.14).abs() < 1e-12);
        assert!((s.interval.0 - (0.14 - 0.160673)).abs() < 1e-5, "{s:?}");
        assert!((s.interval.1 - (0.14 + 0.160673)).abs() < 1e-5);
        // Three pairs can never reach p < 0.05: all positive gives 2/8.
        assert_eq!(wilcoxon_signed_rank(&[0.1, 0.2, 0.3]), 0.25);
        assert_eq!(wilcoxon_signed_rank(&[0.0, 0.0]), 1.0);
    }

    #[test]
    fn ties_share_their_average_rank() {
        // |d| all equal: ranks 2, 2, 2 (doubled 4, 4, 4); two positive: W+ (doubled) = 8;
        // patterns with doubled sum ≥ 8: 3 (two positive) + 1 (three) = 4 of 8, ≤ 8: 7 of 8.
        assert!((wilcoxon_signed_rank(&[0.1, 0.1, -0.1]) - 1.0).abs() < 1e-12);
    }

    #[test]
    fn a_truly_better_model_is_detected() {
        // 20 pairs, every one in the same direction by a varying margin.
        let d: Vec<f64> = (0..20).map(|i| 0.01 + 0.002 * f64::from(i % 7)).collect();
        let s = paired(&d);
        assert!(s.p_value < 1e-5 && s.interval.0 > 0.0, "{s:?}");
        // And no difference in sign-balanced noise.
        let noise: Vec<f64> = (0..20)
            .map(|i| if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        assert!(paired(&noise).p_value > 0.5);
    }

    #[test]
    fn holm_steps_down() {
        let adjusted = holm(&[0.01, 0.04, 0.03]);
        assert_eq!(adjusted, vec![0.03, 0.06, 0.06]);
    }

    #[test]
    fn t_quantiles_match_the_table_and_the_normal_limit() {
        assert_eq!(t_quantile_975(4), 2.776);
        assert!((t_quantile_975(60) - 2.000).abs() < 1e-3);
        assert!((t_quantile_975(100_000) - 1.96).abs() < 1e-3);
    }
}
