//! The path's outputs: results.csv and .parquet (one row per β), table.md
//! and the figure of active groups against β.

use std::path::Path as FilePath;

use pathreg_report::{
    Column, Figure, LinePlot, Series, SeriesStyle, Table, markdown_table, write_atomic, write_csv,
    write_parquet,
};

use super::manifest::SparsityPathExperiment;
use super::run::{Path, PathData};
use crate::PipelineError;
use crate::engine::hashing::HashInput;

/// What each β contributes to the result hashes (never timings).
pub(super) fn hash_inputs(path: &Path) -> Vec<HashInput> {
    path.points
        .iter()
        .map(|p| HashInput {
            label: format!("beta={}", p.beta),
            texts: vec![
                p.iterations.to_string(),
                p.converged.to_string(),
                format!("{} {} {}", p.active_groups, p.zero_groups, p.total_groups),
                p.network_subnetworks.to_string(),
            ],
            values: vec![
                p.objective,
                p.lower_bound,
                p.relative_gap,
                p.violation,
                p.train_accuracy,
                p.test_accuracy,
                p.network_objective,
                p.network_output_difference,
                p.network_test_agreement,
            ],
            headline: p.objective,
        })
        .collect()
}

/// run.json's details.
pub(super) fn details(data: &PathData, path: &Path, cached: bool) -> serde_json::Value {
    serde_json::json!({
        "n_train": path.n_train, "n_test": path.n_test, "d": path.d,
        "content_sha256": data.content, "files": data.files, "cached": cached,
        "points": path.points,
    })
}

/// `|a − b| / |b|` (0 when both are 0).
fn relative(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / b.abs() }
}

/// Writes results.csv/.parquet, table.md and the figure into `dir`.
pub(super) fn write_outputs(
    dir: &FilePath,
    experiment: &SparsityPathExperiment,
    path: &Path,
) -> Result<(), PipelineError> {
    let p = &path.points;
    let floats = |f: &dyn Fn(&super::run::PathPoint) -> f64| Column::F64(p.iter().map(f).collect());
    let ints = |f: &dyn Fn(&super::run::PathPoint) -> usize| {
        Column::I64(p.iter().map(|q| f(q) as i64).collect())
    };
    let mut table = Table::new();
    table.push_column("beta", floats(&|q| q.beta))?;
    table.push_column("objective", floats(&|q| q.objective))?;
    table.push_column("lower_bound", floats(&|q| q.lower_bound))?;
    table.push_column("relative_gap", floats(&|q| q.relative_gap))?;
    table.push_column("violation_relative", floats(&|q| q.violation))?;
    table.push_column("iterations", ints(&|q| q.iterations))?;
    table.push_column(
        "converged",
        Column::Bool(p.iter().map(|q| q.converged).collect()),
    )?;
    table.push_column("active_groups", ints(&|q| q.active_groups))?;
    table.push_column("zero_groups", ints(&|q| q.zero_groups))?;
    table.push_column("total_groups", ints(&|q| q.total_groups))?;
    table.push_column("train_accuracy", floats(&|q| q.train_accuracy))?;
    table.push_column("test_accuracy", floats(&|q| q.test_accuracy))?;
    table.push_column("network_objective", floats(&|q| q.network_objective))?;
    table.push_column("network_subnetworks", ints(&|q| q.network_subnetworks))?;
    table.push_column(
        "network_output_difference",
        floats(&|q| q.network_output_difference),
    )?;
    table.push_column(
        "network_test_agreement",
        floats(&|q| q.network_test_agreement),
    )?;
    table.push_column("time_s", floats(&|q| q.time_s))?;
    write_csv(&table, &dir.join("results.csv"))?;
    write_parquet(&table, &dir.join("results.parquet"))?;

    let e = experiment;
    let mut md = format!("# {}\n\n", e.name);
    if !e.description.is_empty() {
        md.push_str(&format!("{}\n\n", e.description));
    }
    md.push_str(&format!(
        "{} ({} training and {} test rows, d = {}, split seed {}), K = {} sampled arrangements, m1 = {}, m2 = {}. \
         Program (21) is solved by ADMM at each β, from the largest down, each solve warm-started at the previous \
         solution, to relative violation ≤ {:e} and certified relative duality gap ≤ {:e} (or {} iterations). \
         Active groups: norm above {:e} of the largest; zero groups: exactly zero. Proposition 1's network has \
         one sub-network per non-zero group; its objective (4) is compared with (21)'s, its outputs with the convex \
         model's on the training rows (relative to the largest), and its predicted classes with the convex \
         model's on the test rows, where its ReLU patterns need not be the gates'.\n\n",
        e.dataset,
        path.n_train,
        path.n_test,
        path.d,
        e.split_seed,
        e.k,
        e.m1,
        e.m2,
        e.admm.tol_violation,
        e.admm.tol_gap,
        e.admm.max_iterations,
        pathreg_core::convex::ACTIVE_GROUP_TOLERANCE,
    ));
    let rows: Vec<Vec<String>> = p
        .iter()
        .map(|q| {
            vec![
                format!("{}", q.beta),
                format!("{}/{}", q.active_groups, q.total_groups),
                format!("{}", q.zero_groups),
                format!("{:.6}", q.objective),
                format!("{:.1e}", q.relative_gap),
                format!("{:.1e}", q.violation),
                format!(
                    "{}{}",
                    q.iterations,
                    if q.converged { "" } else { " (cap)" }
                ),
                format!("{:.3}", q.train_accuracy),
                format!("{:.3}", q.test_accuracy),
                format!("{:.1e}", relative(q.network_objective, q.objective)),
                format!("{:.1e}", q.network_output_difference),
                format!("{:.3}", q.network_test_agreement),
                format!("{:.2}", q.time_s),
            ]
        })
        .collect();
    md.push_str(&markdown_table(
        &[
            "β",
            "active groups",
            "zero groups",
            "objective (21)",
            "gap",
            "violation",
            "iterations",
            "train acc",
            "test acc",
            "network objective vs (21)",
            "network output difference (train)",
            "network test agreement",
            "time (s)",
        ],
        &rows,
    ));
    let converged = p.iter().filter(|q| q.converged).count();
    let worst_map = p
        .iter()
        .map(|q| relative(q.network_objective, q.objective))
        .fold(0.0, f64::max);
    md.push_str(&format!(
        "\n- {converged} of {} solves met both tolerances; total solve time {:.1} s.\n- Proposition 1: the \
         network's objective (4) is within {worst_map:.1e} (relative) of (21)'s at every β.\n",
        p.len(),
        p.iter().map(|q| q.time_s).sum::<f64>(),
    ));
    write_atomic(&dir.join("table.md"), md.as_bytes())?;

    let mut plot = LinePlot::new(
        format!("{}: group sparsity of (21) along β", e.name),
        "β",
        "groups",
    );
    plot.log_x = true;
    plot.series.push(Series::new(
        "active groups",
        p.iter().map(|q| (q.beta, q.active_groups as f64)).collect(),
        SeriesStyle::LineMarkers,
    ));
    plot.series.push(
        Series::new(
            "all groups (2K)",
            p.iter().map(|q| (q.beta, q.total_groups as f64)).collect(),
            SeriesStyle::Line,
        )
        .dashed(),
    );
    plot.caption = Some(format!(
        "{}, K = {}, m1 = {}: non-zero groups (Z_k, Z'_k blocks) of ADMM's solution of (21) at each β, warm-started \
         from the larger β. The group-lasso prox sets whole blocks exactly to zero.",
        e.dataset, e.k, e.m1
    ));
    plot.write_svg(&dir.join("active_groups.svg"))?;
    plot.write_png(&dir.join("active_groups.png"))?;
    Ok(())
}
