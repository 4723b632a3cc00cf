//! How often non-convex runs reach the certified optimum: every run's
//! relative gap to its dataset's convex optimum, the check that no run lies
//! below the certified lower bound, and the success rate per optimizer and
//! K over many datasets (the statistical form of Table 2's claim), with a
//! Wilson score interval.

use std::fmt::Write as _;
use std::path::Path;

use pathreg_report::{Figure, LinePlot, Series, SeriesStyle, markdown_table};

use super::run::{CellResult, Inputs};
use crate::PipelineError;

/// A run counts as a success when its final objective is within this
/// fraction of its dataset's certified optimum.
pub(super) const SUCCESS_WITHIN: f64 = 0.01;

/// Slack below the certified lower bound that rounding may explain,
/// relative to the optimum.
const ROUNDING: f64 = 1e-9;

/// The normal quantile of a two-sided 95 % interval.
const Z_95: f64 = 1.959_963_984_540_054;

/// One non-convex run against its dataset's optimum.
pub(super) struct RunGap {
    /// The optimizer's name.
    pub optimizer: String,
    /// Sub-networks.
    pub k: usize,
    /// Index of the dataset in [`Inputs::data`].
    pub dataset: usize,
    /// `(objective − p*)/p*`.
    pub relative_gap: f64,
}

/// Every non-convex run's relative gap to the convex optimum of its sweep
/// point. Fails when a run's objective lies below the certified lower bound
/// (`p*` minus the duality gap) by more than rounding: the optimum over all
/// arrangements bounds every network of this width from below, so such a run
/// is a bug, never a row to drop.
pub(super) fn run_gaps(
    inputs: &Inputs<'_>,
    results: &[CellResult],
) -> Result<Vec<RunGap>, PipelineError> {
    let mut gaps = Vec::new();
    for r in results.iter().filter(|r| r.fit.method != "convex") {
        let Some(convex) = results
            .iter()
            .find(|c| c.point == r.point && c.fit.method == "convex")
        else {
            continue;
        };
        let optimum = convex.fit.objective;
        let certified_gap = convex.fit.convex.as_ref().map_or(0.0, |c| c.duality_gap);
        if let Some(lower_bound) = below_certified_bound(r.fit.objective, optimum, certified_gap) {
            return Err(PipelineError::BelowOptimum {
                run: format!(
                    "{} run {} at K = {} ({})",
                    r.fit.method,
                    r.run,
                    r.k,
                    inputs.experiment.points[r.point].group_label()
                ),
                objective: r.fit.objective,
                lower_bound,
            });
        }
        gaps.push(RunGap {
            optimizer: r.fit.method.clone(),
            k: r.k,
            dataset: inputs.point_inputs[r.point].0,
            relative_gap: (r.fit.objective - optimum) / optimum.abs().max(f64::MIN_POSITIVE),
        });
    }
    Ok(gaps)
}

/// The certified lower bound `p* − gap` when `objective` lies below it by
/// more than rounding, `None` otherwise.
fn below_certified_bound(objective: f64, optimum: f64, duality_gap: f64) -> Option<f64> {
    let lower_bound = optimum - duality_gap.max(0.0);
    (objective < lower_bound - ROUNDING * optimum.abs()).then_some(lower_bound)
}

/// The success rate of one optimizer at one K.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct SuccessRate {
    pub optimizer: String,
    pub k: usize,
    pub runs: usize,
    pub successes: usize,
    /// Runs whose objective is not finite (they count as failures and are
    /// left out of the gap statistics).
    pub diverged: usize,
    /// The Wilson score 95 % interval of the rate.
    pub interval: (f64, f64),
    pub median_gap: f64,
    pub worst_gap: f64,
    /// Datasets with at least one run.
    pub datasets: usize,
    /// Datasets whose every run succeeded.
    pub datasets_all_within: usize,
}

/// The Wilson score interval for `successes` out of `trials` at 95 %.
pub(super) fn wilson_interval(successes: usize, trials: usize) -> (f64, f64) {
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z_95 * Z_95;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / (1.0 + z2 / n);
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]),
    }
}

/// The success rates per (optimizer, K), optimizers in order of first
/// appearance and K ascending.
pub(super) fn success_rates(gaps: &[RunGap]) -> Vec<SuccessRate> {
    let mut keys: Vec<(String, usize)> = Vec::new();
    for g in gaps {
        if !keys.iter().any(|(o, k)| *o == g.optimizer && *k == g.k) {
            keys.push((g.optimizer.clone(), g.k));
        }
    }
    let optimizers: Vec<String> = keys.iter().fold(Vec::new(), |mut acc, (o, _)| {
        if !acc.contains(o) {
            acc.push(o.clone());
        }
        acc
    });
    keys.sort_by_key(|(o, k)| (optimizers.iter().position(|x| x == o), *k));
    keys.into_iter()
        .map(|(optimizer, k)| {
            let runs: Vec<&RunGap> = gaps
                .iter()
                .filter(|g| g.optimizer == optimizer && g.k == k)
                .collect();
            let mut values: Vec<f64> = runs
                .iter()
                .map(|g| g.relative_gap)
                .filter(|g| g.is_finite())
                .collect();
            values.sort_by(f64::total_cmp);
            let diverged = runs.len() - values.len();
            let successes = values.iter().filter(|v| **v <= SUCCESS_WITHIN).count();
            let mut datasets: Vec<usize> = runs.iter().map(|g| g.dataset).collect();
            datasets.sort_unstable();
            datasets.dedup();
            let datasets_all_within = datasets
                .iter()
                .filter(|d| {
                    runs.iter()
                        .filter(|g| g.dataset == **d)
                        .all(|g| g.relative_gap <= SUCCESS_WITHIN)
                })
                .count();
            SuccessRate {
                interval: wilson_interval(successes, runs.len()),
                median_gap: median(&values),
                worst_gap: values.last().copied().unwrap_or(f64::NAN),
                runs: runs.len(),
                successes,
                diverged,
                datasets: datasets.len(),
                datasets_all_within,
                optimizer,
                k,
            }
        })
        .collect()
}

/// The markdown section of the success rates.
pub(super) fn markdown(rates: &[SuccessRate], datasets: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Success rate over {datasets} datasets\n\n\
         A run succeeds when its final objective is within {:.0} % of its dataset's certified optimum \
         (the convex program over every arrangement, so no network of this width can go below it; \
         no run did, beyond the certificate's duality gap). The interval is Wilson's 95 % score interval, \
         which treats runs as independent trials; runs on the same dataset share its difficulty, so read \
         the interval as a lower bound on the uncertainty. A run that diverged (a non-finite objective) \
         counts as a failure and is left out of the gap columns.\n",
        SUCCESS_WITHIN * 100.0
    );
    let header = [
        "Optimizer",
        "K",
        "Runs",
        "Within 1 %",
        "Diverged",
        "Rate (95 % CI)",
        "Median relative gap",
        "Worst relative gap",
        "Datasets with every run within 1 %",
    ];
    let rows: Vec<Vec<String>> = rates
        .iter()
        .map(|r| {
            vec![
                r.optimizer.to_uppercase(),
                r.k.to_string(),
                r.runs.to_string(),
                r.successes.to_string(),
                r.diverged.to_string(),
                format!(
                    "{:.2} ({:.2}–{:.2})",
                    r.successes as f64 / r.runs.max(1) as f64,
                    r.interval.0,
                    r.interval.1
                ),
                format!("{:.2e}", r.median_gap),
                format!("{:.2e}", r.worst_gap),
                format!("{} / {}", r.datasets_all_within, r.datasets),
            ]
        })
        .collect();
    out.push_str(&markdown_table(&header, &rows));
    out
}

/// `success_rate_vs_K` and `gap_distribution` (SVG and PNG).
pub(super) fn write_figures(
    dir: &Path,
    name: &str,
    rates: &[SuccessRate],
    gaps: &[RunGap],
) -> Result<(), PipelineError> {
    let optimizers: Vec<&str> = rates.iter().fold(Vec::new(), |mut acc, r| {
        if !acc.contains(&r.optimizer.as_str()) {
            acc.push(r.optimizer.as_str());
        }
        acc
    });
    let mut rate_plot = LinePlot::new(
        format!("{name}: runs within 1 % of the certified optimum"),
        "K (sub-networks)",
        "success rate",
    );
    rate_plot.log_x = true;
    for optimizer in &optimizers {
        let of = |f: &dyn Fn(&SuccessRate) -> f64| -> Vec<(f64, f64)> {
            rates
                .iter()
                .filter(|r| r.optimizer == *optimizer)
                .map(|r| (r.k as f64, f(r)))
                .collect()
        };
        let label = optimizer.to_uppercase();
        rate_plot.series.push(Series::new(
            label.clone(),
            of(&|r| r.successes as f64 / r.runs.max(1) as f64),
            SeriesStyle::LineMarkers,
        ));
        // Both bounds as one dashed series, broken between them by a NaN point.
        let mut bounds = of(&|r| r.interval.0);
        bounds.push((f64::NAN, f64::NAN));
        bounds.extend(of(&|r| r.interval.1));
        rate_plot.series.push(
            Series::new(format!("{label} 95 % interval"), bounds, SeriesStyle::Line).dashed(),
        );
    }
    rate_plot.caption = Some(
        "Share of runs whose final objective is within 1 % of the certified optimum of their dataset, \
         with Wilson 95 % intervals (dashed)."
            .into(),
    );
    rate_plot.write_svg(&dir.join("success_rate_vs_K.svg"))?;
    rate_plot.write_png(&dir.join("success_rate_vs_K.png"))?;

    let mut gap_plot = LinePlot::new(
        format!("{name}: relative gap of every run to the certified optimum"),
        "K (sub-networks)",
        "(objective − optimum) / optimum",
    );
    gap_plot.log_x = true;
    gap_plot.log_y = true;
    // Gaps of exactly zero (or rounding below it) sit at the plot's floor.
    let floor = 1e-8;
    for (oi, optimizer) in optimizers.iter().enumerate() {
        // Side by side per K: SGD a little left of K, Adam a little right.
        let offset = 1.0 + 0.08 * (oi as f64 - (optimizers.len() as f64 - 1.0) / 2.0);
        let points = gaps
            .iter()
            .filter(|g| g.optimizer == *optimizer && g.relative_gap.is_finite())
            .map(|g| (g.k as f64 * offset, g.relative_gap.max(floor)))
            .collect();
        gap_plot.series.push(Series::new(
            optimizer.to_uppercase(),
            points,
            SeriesStyle::Markers,
        ));
    }
    let threshold: Vec<(f64, f64)> = {
        let ks = rates.iter().map(|r| r.k as f64);
        let (low, high) = ks.fold((f64::INFINITY, 0.0f64), |(l, h), k| (l.min(k), h.max(k)));
        vec![(low * 0.85, SUCCESS_WITHIN), (high * 1.15, SUCCESS_WITHIN)]
    };
    gap_plot
        .series
        .push(Series::new("1 % (success threshold)", threshold, SeriesStyle::Line).dashed());
    gap_plot.caption = Some(format!(
        "One marker per run that did not diverge; gaps below {floor:.0e} are drawn at {floor:.0e}. Runs below the dashed line count as successes."
    ));
    gap_plot.write_svg(&dir.join("gap_distribution.svg"))?;
    gap_plot.write_png(&dir.join("gap_distribution.png"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_a_hand_computed_interval() {
        // 8 of 10: p = 0.8, z² = 3.8415; centre = (0.8 + 0.19207)/1.38415 = 0.71674,
        // half = 1.95996·sqrt(0.016 + 0.0096036)/1.38415 = 0.22658.
        let (low, high) = wilson_interval(8, 10);
        assert!((low - 0.4902).abs() < 1e-4, "{low}");
        assert!((high - 0.9433).abs() < 1e-4, "{high}");
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
        let (low, high) = wilson_interval(10, 10);
        assert!(
            (low - 0.7225).abs() < 1e-4 && (high - 1.0).abs() < 1e-12,
            "{low} {high}"
        );
    }

    #[test]
    fn only_runs_below_the_certified_bound_are_flagged() {
        assert_eq!(below_certified_bound(0.9, 1.0, 0.05), Some(0.95));
        assert_eq!(below_certified_bound(0.96, 1.0, 0.05), None);
        // Rounding at the optimum itself is no bug.
        assert_eq!(below_certified_bound(1.0 - 1e-12, 1.0, 0.0), None);
        assert_eq!(below_certified_bound(1.0 - 1e-6, 1.0, 0.0), Some(1.0));
    }

    #[test]
    fn rates_count_successes_per_optimizer_and_k() {
        let gap = |optimizer: &str, k, dataset, relative_gap| RunGap {
            optimizer: optimizer.into(),
            k,
            dataset,
            relative_gap,
        };
        let gaps = vec![
            gap("sgd", 20, 0, 0.0),
            gap("sgd", 5, 0, 0.5),
            gap("sgd", 5, 0, 0.001),
            gap("sgd", 5, 1, 0.02),
            gap("adam", 5, 1, 0.0),
            gap("adam", 5, 1, f64::NAN),
        ];
        let rates = success_rates(&gaps);
        let keys: Vec<(&str, usize)> = rates.iter().map(|r| (r.optimizer.as_str(), r.k)).collect();
        assert_eq!(keys, vec![("sgd", 5), ("sgd", 20), ("adam", 5)]);
        let sgd5 = &rates[0];
        assert_eq!((sgd5.runs, sgd5.successes, sgd5.diverged), (3, 1, 0));
        assert_eq!(sgd5.median_gap, 0.02);
        assert_eq!(sgd5.worst_gap, 0.5);
        assert_eq!((sgd5.datasets, sgd5.datasets_all_within), (2, 0));
        let adam5 = &rates[2];
        assert_eq!((adam5.runs, adam5.successes, adam5.diverged), (2, 1, 1));
        assert_eq!((adam5.median_gap, adam5.worst_gap), (0.0, 0.0));
        assert_eq!((adam5.datasets, adam5.datasets_all_within), (1, 0));
    }
}
