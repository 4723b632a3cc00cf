//! Figure 1's outputs: the three panels, table.md and results.csv/.parquet.

use std::path::Path;

use pathreg_data::Dataset;
use pathreg_report::{
    Column, Figure, RegionPanel, RegionPlot, Table, markdown_table, write_atomic, write_csv,
    write_parquet,
};

use super::manifest::SpiralExperiment;
use super::run::{ModelResult, SpiralModelKind};
use crate::PipelineError;
use crate::engine::hashing::HashInput;

/// One model's row: which, its result, and whether it came from the cache.
pub(super) type Row = (SpiralModelKind, ModelResult, bool);

/// What each model contributes to the result hashes: everything computed
/// except wall times.
pub(super) fn hash_inputs(rows: &[Row]) -> Vec<HashInput> {
    rows.iter()
        .map(|(model, r, _)| {
            let mut values = vec![
                r.objective,
                r.loss,
                r.dual,
                r.relative_gap,
                r.max_ratio,
                r.train_accuracy,
                r.network_objective,
                r.network_train_accuracy,
                r.grid_agreement,
            ];
            values.extend(&r.grid);
            values.extend(&r.network_grid);
            HashInput {
                label: model.key().to_string(),
                texts: vec![
                    r.status.clone(),
                    r.triples.to_string(),
                    r.working_set.to_string(),
                    r.active.to_string(),
                ],
                values,
                headline: r.objective,
            }
        })
        .collect()
}

/// run.json's details.
pub(super) fn details(experiment: &SpiralExperiment, rows: &[Row]) -> serde_json::Value {
    let models: Vec<serde_json::Value> = rows
        .iter()
        .map(|(model, r, cached)| {
            serde_json::json!({
                "model": model.key(), "cached": cached, "objective": r.objective, "loss": r.loss,
                "dual": r.dual, "relative_gap": r.relative_gap, "max_dual_ratio": r.max_ratio,
                "status": r.status, "triples": r.triples, "working_set": r.working_set,
                "active": r.active, "train_accuracy": r.train_accuracy,
                "network_objective": r.network_objective,
                "network_relative_difference": r.network_relative_difference,
                "network_train_accuracy": r.network_train_accuracy,
                "grid_agreement": r.grid_agreement, "time_s": r.time_s,
            })
        })
        .collect();
    serde_json::json!({
        "data": experiment.data, "model": experiment.model, "plot": experiment.plot,
        "threads": rayon::current_num_threads(), "models": models,
    })
}

/// Writes the figure and the tables into `dir`.
pub(super) fn write_outputs(
    dir: &Path,
    experiment: &SpiralExperiment,
    rows: &[Row],
    data: &Dataset,
) -> Result<(), PipelineError> {
    let points: Vec<(f64, f64, bool)> = data
        .x
        .rows()
        .into_iter()
        .zip(&data.y)
        .map(|(x, y)| (x[0], x[1], *y > 0.0))
        .collect();
    let plot = RegionPlot {
        title: format!(
            "Spiral, n = {}: globally optimized convex models",
            experiment.data.n
        ),
        caption: Some(format!(
            "Regions: the sign of each convex model's own output, its masks at every grid point from its gates ({} × {} grid); \
             dots: the decision boundary of its mapped network. \
             (m1, m2, P1, P2, β) = ({}, {}, {}, {}, {}); P = {} for (a). Squared loss, labels ±1.",
            experiment.plot.grid,
            experiment.plot.grid,
            experiment.model.m1,
            experiment.model.m2,
            experiment.model.p1,
            experiment.model.p2,
            experiment.model.beta,
            experiment.model.two_layer_arrangements,
        )),
        grid: experiment.plot.grid,
        extent: experiment.plot.extent,
        panels: rows
            .iter()
            .map(|(model, r, _)| RegionPanel {
                title: format!(
                    "{}: train acc. {:.3}, objective {:.3e}",
                    model.label(),
                    r.train_accuracy,
                    r.objective
                ),
                values: r.grid.clone(),
                points: points.clone(),
                boundary: Some(r.network_grid.clone()),
            })
            .collect(),
    };
    plot.write_svg(&dir.join("fig1_decision_boundaries.svg"))?;
    plot.write_png(&dir.join("fig1_decision_boundaries.png"))?;
    write_results(dir, rows)?;
    write_atomic(&dir.join("table.md"), table_md(experiment, rows).as_bytes())?;
    Ok(())
}

fn write_results(dir: &Path, rows: &[Row]) -> Result<(), PipelineError> {
    let text = |f: &dyn Fn(&Row) -> String| Column::Str(rows.iter().map(f).collect());
    let float =
        |f: &dyn Fn(&ModelResult) -> f64| Column::F64(rows.iter().map(|r| f(&r.1)).collect());
    let count = |f: &dyn Fn(&ModelResult) -> usize| {
        Column::I64(rows.iter().map(|r| f(&r.1) as i64).collect())
    };
    let mut table = Table::new();
    table.push_column("model", text(&|r| r.0.key().to_string()))?;
    table.push_column("objective", float(&|r| r.objective))?;
    table.push_column("loss", float(&|r| r.loss))?;
    table.push_column("dual_bound", float(&|r| r.dual))?;
    table.push_column("relative_gap", float(&|r| r.relative_gap))?;
    table.push_column("status", text(&|r| r.1.status.clone()))?;
    table.push_column("arrangements", count(&|r| r.triples))?;
    table.push_column("working_set", count(&|r| r.working_set))?;
    table.push_column("active_groups", count(&|r| r.active))?;
    table.push_column("train_accuracy", float(&|r| r.train_accuracy))?;
    table.push_column("network_objective", float(&|r| r.network_objective))?;
    table.push_column(
        "network_train_accuracy",
        float(&|r| r.network_train_accuracy),
    )?;
    table.push_column("grid_agreement", float(&|r| r.grid_agreement))?;
    table.push_column("time_s", float(&|r| r.time_s))?;
    table.push_column("cached", text(&|r| r.2.to_string()))?;
    write_csv(&table, &dir.join("results.csv"))?;
    write_parquet(&table, &dir.join("results.parquet"))?;
    Ok(())
}

fn table_md(experiment: &SpiralExperiment, rows: &[Row]) -> String {
    let (d, m) = (&experiment.data, &experiment.model);
    let mut md = format!("# {}\n\n", experiment.name);
    if !experiment.description.is_empty() {
        md.push_str(&format!("{}\n\n", experiment.description));
    }
    md.push_str(&format!(
        "Two-arm spiral, n = {} ({} per class), {} turns, noise {}; features (x1, x2, 1) (the constant is the bias the \
         networks of (1) lack). Squared loss ½‖f − y‖², labels ±1, β = {}. (a): P = {} two-layer arrangements. (b), (c): \
         m1 = {}, m2 = {}, P1 = {} first layers × P2 = {} second layers of gates. Each solve is Clarabel's, certified over \
         all of its sampled triples (the dual bound holds for that set, not for every arrangement); time is solve and \
         certificate on {} threads.\n\n",
        d.n, d.n / 2, d.turns, d.noise, m.beta, m.two_layer_arrangements, m.m1, m.m2, m.p1, m.p2,
        rayon::current_num_threads(),
    ));
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(model, r, _)| {
            vec![
                model.label().to_string(),
                format!("{:.6e}", r.objective),
                format!("{:.4}", r.train_accuracy),
                r.triples.to_string(),
                r.active.to_string(),
                r.status.clone(),
                format!("{:.1e}", r.relative_gap),
                format!("{:.1e}", r.network_relative_difference),
                format!("{:.4}", r.grid_agreement),
                format!("{:.2}", r.time_s),
            ]
        })
        .collect();
    md.push_str(&markdown_table(
        &[
            "model",
            "objective",
            "train accuracy",
            "arrangements",
            "active groups",
            "status",
            "duality gap (rel.)",
            "network vs convex (rel.)",
            "grid: same sign as network",
            "time (s)",
        ],
        &table,
    ));
    md.push_str(
        "\n\"Network vs convex\" is the mapped network's objective against the optimum: (a) the two-layer network \
         Σ (x u)+ α with weight decay (Pilanci & Ergen's map), (b) and (c) Proposition 1's three-layer network with the path \
         regularizer. On the grid the mapped network can differ from the convex model where a point's masks and the \
         network's ReLUs disagree (the cone constraints hold on the training points only).\n\n\
         (b) is not the exact program of [17], which the paper does not print: it is the paper's description of it (Section 5: \
         the constraint set of [17] is decoupled across the first-layer neurons j1), implemented as program (21) over the same \
         triples with one second-layer inequality per neuron. Its feasible set lies inside (c)'s, so its optimum is never \
         lower.\n\n## The paper\n\nFigure 1 (Appendix A.1): (n, m1, m2, P1, P2, β) = (30, 5, 1, 11, 11, 1e-4), P = 50 for (a), \
         CVXPY with MOSEK. Only (c) learns the spiral; (a) and especially (b) fit functions far from it.\n",
    );
    md
}
