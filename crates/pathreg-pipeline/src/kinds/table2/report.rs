//! Table 2's outputs: results.csv, results.parquet, table.md (the paper's
//! layout, published values alongside), data.csv, the objective curves
//! (curves.csv and one figure per K) and the run.json details.

use std::fmt::Write as _;
use std::path::Path;

use pathreg_report::{
    Column, Figure, LinePlot, Series, SeriesStyle, Table, markdown_table, write_atomic, write_csv,
    write_parquet,
};

use super::run::{CellResult, Inputs, LoadedArrangements};
use super::success;
use crate::PipelineError;
use crate::engine::hashing::HashInput;
use crate::manifest::sweep::SweepValue;

fn row_label(r: &CellResult) -> String {
    let mut label = format!("{} K={} run={}", r.fit.method, r.k, r.run);
    for (key, value) in r.coords.iter().filter(|(k, _)| k != "K") {
        label.push_str(&format!(" {key}={value}"));
    }
    label
}

/// What each convex-vs-non-convex row contributes to the result hashes.
pub(super) fn hash_inputs(results: &[CellResult]) -> Vec<HashInput> {
    results
        .iter()
        .map(|r| {
            let f = &r.fit;
            HashInput {
                label: row_label(r),
                texts: vec![
                    f.status.clone(),
                    f.seed.to_string(),
                    f.iterations.to_string(),
                    f.subnetworks.to_string(),
                ],
                values: [f.objective, f.loss, f.regularizer]
                    .into_iter()
                    .chain(f.curve.iter().map(|c| c.1))
                    .collect(),
                headline: f.objective,
            }
        })
        .collect()
}

/// Writes every table and figure into `staging`.
pub(super) fn write(
    staging: &Path,
    inputs: &Inputs<'_>,
    results: &[CellResult],
    gaps: &[success::RunGap],
) -> Result<(), PipelineError> {
    let table = results_table(inputs, results)?;
    write_csv(&table, &staging.join("results.csv"))?;
    write_parquet(&table, &staging.join("results.parquet"))?;
    if let [only] = inputs.data.as_slice() {
        write_atomic(&staging.join("data.csv"), only.dataset.to_csv().as_bytes())?;
    } else {
        for (i, d) in inputs.data.iter().enumerate() {
            write_atomic(
                &staging.join(format!("data_{}.csv", i + 1)),
                d.dataset.to_csv().as_bytes(),
            )?;
        }
    }
    let rates = success::success_rates(gaps);
    let many_datasets = inputs.data.len() > 1 && !rates.is_empty();
    let mut text = markdown(inputs, results);
    if many_datasets {
        // The summary goes first: it is what a sweep over datasets is for.
        let summary = success::markdown(&rates, inputs.data.len());
        let split = text.find("\n## ").unwrap_or(text.len());
        text = format!(
            "{}\n{summary}\n## Every run\n{}",
            &text[..split],
            &text[split..]
        );
        success::write_figures(staging, &inputs.experiment.name, &rates, gaps)?;
    }
    write_atomic(&staging.join("table.md"), text.as_bytes())?;
    write_csv(&curves_table(results)?, &staging.join("curves.csv"))?;
    if groups(inputs).len() <= MAX_CURVE_FIGURE_GROUPS {
        write_curve_figures(staging, inputs, results)?;
    }
    Ok(())
}

/// Sweeps with more groups (coordinates other than K) than this get no
/// per-K curve figures: their curves stay in curves.csv.
const MAX_CURVE_FIGURE_GROUPS: usize = 4;

/// run.json's details: every dataset, arrangement set and convex solve.
pub(super) fn details(
    inputs: &Inputs<'_>,
    sets: &LoadedArrangements,
    results: &[CellResult],
) -> serde_json::Value {
    let data: Vec<serde_json::Value> = inputs
        .data
        .iter()
        .map(|d| {
            serde_json::json!({
                "seed": format!("{:016x}", d.seed),
                "sha256": d.sha256,
                "n": d.dataset.n(),
                "d": d.dataset.d(),
            })
        })
        .collect();
    let arrangements: Vec<serde_json::Value> = inputs
        .arrangements
        .iter()
        .zip(sets)
        .map(|((request, key), (set, cached))| {
            serde_json::json!({
                "cache_key": key.hash,
                "mode": format!("{:?}", set.mode()).to_lowercase(),
                "seed": request.seed().map(|s| format!("{s:016x}")),
                "count": set.len(),
                "cached": cached,
            })
        })
        .collect();
    let mut convex: Vec<(String, serde_json::Value)> = Vec::new();
    for r in results {
        if let Some(details) = &r.fit.convex {
            let point = inputs.experiment.points[r.point].group_label();
            if !convex.iter().any(|(p, _)| *p == point) {
                let mut entry = serde_json::to_value(details).unwrap_or_default();
                if let serde_json::Value::Object(map) = &mut entry {
                    map.insert("point".into(), point.clone().into());
                }
                convex.push((point, entry));
            }
        }
    }
    serde_json::json!({
        "data": data,
        "arrangements": arrangements,
        "convex": convex.into_iter().map(|(_, c)| c).collect::<Vec<_>>(),
    })
}

fn results_table(inputs: &Inputs<'_>, results: &[CellResult]) -> Result<Table, PipelineError> {
    let strings = |f: &dyn Fn(&CellResult) -> String| Column::Str(results.iter().map(f).collect());
    let floats = |f: &dyn Fn(&CellResult) -> f64| Column::F64(results.iter().map(f).collect());
    let ints = |f: &dyn Fn(&CellResult) -> i64| Column::I64(results.iter().map(f).collect());
    let mut table = Table::new();
    table.push_column("method", strings(&|r| r.fit.method.clone()))?;
    table.push_column("K", ints(&|r| r.k as i64))?;
    table.push_column("run", ints(&|r| r.run as i64))?;
    for key in inputs.experiment.sweep_keys.iter().filter(|k| *k != "K") {
        fn value<'r>(r: &'r CellResult, key: &str) -> Option<&'r SweepValue> {
            r.coords.iter().find(|(k, _)| k == key).map(|(_, v)| v)
        }
        let all = |f: fn(&SweepValue) -> bool| results.iter().all(|r| value(r, key).is_some_and(f));
        let column = if all(|v| matches!(v, SweepValue::Int(_))) {
            ints(&|r| match value(r, key) {
                Some(SweepValue::Int(i)) => *i,
                _ => 0,
            })
        } else if all(|v| matches!(v, SweepValue::Text(_))) {
            strings(&|r| value(r, key).map_or_else(String::new, ToString::to_string))
        } else {
            floats(&|r| value(r, key).map_or(f64::NAN, SweepValue::as_f64))
        };
        table.push_column(key, column)?;
    }
    table.push_column("seed", strings(&|r| format!("{:016x}", r.fit.seed)))?;
    table.push_column("objective", floats(&|r| r.fit.objective))?;
    table.push_column("loss", floats(&|r| r.fit.loss))?;
    table.push_column("regularizer", floats(&|r| r.fit.regularizer))?;
    table.push_column("time_s", floats(&|r| r.fit.time_s))?;
    table.push_column("status", strings(&|r| r.fit.status.clone()))?;
    table.push_column("iterations", ints(&|r| r.fit.iterations as i64))?;
    table.push_column("subnetworks", ints(&|r| r.fit.subnetworks as i64))?;
    table.push_column(
        "cached",
        Column::Bool(results.iter().map(|r| r.cached).collect()),
    )?;
    Ok(table)
}

/// The recorded objective curves, one row per (run, epoch).
fn curves_table(results: &[CellResult]) -> Result<Table, PipelineError> {
    let rows: Vec<(&CellResult, usize, f64)> = results
        .iter()
        .flat_map(|r| {
            r.fit
                .curve
                .iter()
                .map(move |(epoch, value)| (r, *epoch, *value))
        })
        .collect();
    let mut table = Table::new();
    table.push_column(
        "method",
        Column::Str(rows.iter().map(|r| r.0.fit.method.clone()).collect()),
    )?;
    table.push_column(
        "point",
        Column::I64(rows.iter().map(|r| r.0.point as i64 + 1).collect()),
    )?;
    table.push_column(
        "K",
        Column::I64(rows.iter().map(|r| r.0.k as i64).collect()),
    )?;
    table.push_column(
        "run",
        Column::I64(rows.iter().map(|r| r.0.run as i64).collect()),
    )?;
    table.push_column(
        "epoch",
        Column::I64(rows.iter().map(|r| r.1 as i64).collect()),
    )?;
    table.push_column("objective", Column::F64(rows.iter().map(|r| r.2).collect()))?;
    Ok(table)
}

/// Largest relative decrease of the objective over the last tenth of the
/// recorded epochs, over all runs: how far from converged the runs stopped.
fn final_relative_change(results: &[CellResult]) -> Option<f64> {
    results
        .iter()
        .filter_map(|r| {
            let (last_epoch, last) = *r.fit.curve.last()?;
            let cutoff = last_epoch - last_epoch / 10;
            let (_, earlier) = r.fit.curve.iter().rev().find(|(e, _)| *e <= cutoff)?;
            Some((earlier - last).abs() / last.abs().max(f64::MIN_POSITIVE))
        })
        .reduce(f64::max)
}

fn objective_cell(objective: f64, time_s: f64) -> [String; 2] {
    [format!("{objective:.4}"), format!("{time_s:.3}")]
}

/// Sweep points grouped by their coordinates other than K, in order.
fn groups(inputs: &Inputs<'_>) -> Vec<(String, Vec<usize>)> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for (pi, point) in inputs.experiment.points.iter().enumerate() {
        let label = point.group_label();
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, points)) => points.push(pi),
            None => groups.push((label, vec![pi])),
        }
    }
    groups
}

fn markdown(inputs: &Inputs<'_>, results: &[CellResult]) -> String {
    let e = &inputs.experiment;
    let runs = e
        .points
        .iter()
        .filter_map(|p| p.nonconvex.map(|nc| nc.runs))
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", e.name);
    if !e.description.is_empty() {
        let _ = writeln!(out, "{}\n", e.description);
    }
    let _ = writeln!(
        out,
        "Final training objective (4) (`½‖f − y‖² + β·R(θ)`) and wall-clock time in seconds; \
         m1 = {}, m2 = {}, β = {} unless the sweep says otherwise.\n",
        e.model.m1, e.model.m2, e.model.beta
    );
    for (label, points) in groups(inputs) {
        if !label.is_empty() {
            let _ = writeln!(out, "\n## {label}\n");
        }
        let method = points
            .first()
            .and_then(|&pi| e.points[pi].nonconvex)
            .map_or("non-convex", |nc| nc.optimizer.name());
        let mut header: Vec<String> = vec!["K".into(), "".into()];
        header.extend((1..=runs).map(|r| format!("{} run #{r}", method.to_uppercase())));
        header.push("Convex (ours)".into());
        let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut rows = Vec::new();
        for &pi in &points {
            let k = e.points[pi].k.map_or(String::from("—"), |k| k.to_string());
            let convex = results
                .iter()
                .find(|r| r.point == pi && r.fit.method == "convex");
            let convex_cells = convex.map_or([String::from("—"), String::from("—")], |c| {
                objective_cell(c.fit.objective, c.fit.time_s)
            });
            let mut objective_row = vec![k, "Training objective".into()];
            let mut time_row = vec![String::new(), "Time (s)".into()];
            for run in 1..=runs {
                let r = results
                    .iter()
                    .find(|r| r.point == pi && r.fit.method != "convex" && r.run == run);
                let [o, t] = r.map_or([String::from("—"), String::from("—")], |r| {
                    objective_cell(r.fit.objective, r.fit.time_s)
                });
                objective_row.push(o);
                time_row.push(t);
            }
            objective_row.push(convex_cells[0].clone());
            time_row.push(convex_cells[1].clone());
            rows.push(objective_row);
            rows.push(time_row);
        }
        out.push_str(&markdown_table(&header_refs, &rows));
    }
    if let Some(reference) = &e.reference {
        let _ = writeln!(out, "\n## Published values ({})\n", reference.source);
        let width = reference
            .rows
            .iter()
            .map(|r| r.objective.len())
            .max()
            .unwrap_or(0);
        let mut header: Vec<String> = vec!["K".into(), "".into()];
        header.extend((1..=width).map(|r| format!("Run #{r}")));
        header.push("Convex".into());
        let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
        let mut rows = Vec::new();
        for row in &reference.rows {
            let pad = |values: &[f64], digits: usize| -> Vec<String> {
                (0..width)
                    .map(|i| {
                        values
                            .get(i)
                            .map_or(String::new(), |v| format!("{v:.digits$}"))
                    })
                    .collect()
            };
            let mut o = vec![row.k.to_string(), "Training objective".into()];
            o.extend(pad(&row.objective, 4));
            o.push(format!("{:.4}", reference.convex_objective));
            let mut t = vec![String::new(), "Time (s)".into()];
            t.extend(pad(&row.time_s, 2));
            t.push(format!("{:.3}", reference.convex_time_s));
            rows.push(o);
            rows.push(t);
        }
        out.push_str(&markdown_table(&header_refs, &rows));
        let _ = writeln!(
            out,
            "\nThe published numbers come from the authors' own random draw of the toy data, which is not \
             available; compare the pattern (SGD reaches the convex optimum more often as K grows), not the digits."
        );
    }
    let _ = writeln!(out, "\n## Details\n");
    for (i, d) in inputs.data.iter().enumerate() {
        let _ = writeln!(
            out,
            "- Data {}: n = {}, d = {}, SHA-256 of data CSV {}.",
            i + 1,
            d.dataset.n(),
            d.dataset.d(),
            &d.sha256[..16]
        );
    }
    let mut seen = Vec::new();
    for r in results.iter().filter(|r| r.fit.method == "convex") {
        let Some(details) = &r.fit.convex else {
            continue;
        };
        if seen.contains(&r.fit.objective.to_bits()) {
            continue;
        }
        seen.push(r.fit.objective.to_bits());
        let label = e.points[r.point].group_label();
        let _ = writeln!(
            out,
            "- Convex program (21){}: {} triples ({:?}); Clarabel status {}, {} working-set rounds ending with {} triples, {} interior-point iterations; \
             duality gap {:.3e} (relative {:.3e}) with the dual constraints checked on all {} triples (max ratio {:.9}). \
             Proposition 1 network: {} sub-networks, objective (4) {:.10} (relative difference {:.2e} from the convex optimum).",
            if label.is_empty() {
                String::new()
            } else {
                format!(" [{label}]")
            },
            details.arrangement_count,
            e.points[r.point].arrangements.mode,
            details.solver_status,
            details.working_set_rounds,
            details.working_set_size,
            details.interior_point_iterations,
            details.duality_gap,
            details.relative_gap,
            details.triples_checked,
            details.max_dual_ratio,
            details.active_subnetworks,
            details.mapped_objective,
            details.mapped_relative_difference
        );
    }
    if let Some(nc) = &e.nonconvex {
        let mut optimizers: Vec<String> = Vec::new();
        for p in &e.points {
            let name = p
                .nonconvex
                .map_or(String::new(), |nc| format!("{:?}", nc.optimizer));
            if !optimizers.contains(&name) {
                optimizers.push(name);
            }
        }
        let _ = writeln!(
            out,
            "- Non-convex runs: {}, {} epochs, batch size {}, {:?} regularizer, LeCun-normal initialization; seeds in results.csv.",
            optimizers.join(" and "),
            nc.epochs,
            nc.batch_size,
            nc.regularizer
        );
        if let Some(change) = final_relative_change(results) {
            let _ = writeln!(
                out,
                "- Convergence: over the last tenth of the epochs, no run's objective moved by more than {:.2e} (relative); curves in curves.csv.",
                change
            );
        }
    }
    out
}

fn write_curve_figures(
    dir: &Path,
    inputs: &Inputs<'_>,
    results: &[CellResult],
) -> Result<(), PipelineError> {
    let e = &inputs.experiment;
    let groups = groups(inputs);
    for (gi, (label, points)) in groups.iter().enumerate() {
        for &pi in points {
            let Some(k) = e.points[pi].k else { continue };
            let runs: Vec<&CellResult> = results
                .iter()
                .filter(|r| r.point == pi && r.fit.method != "convex")
                .collect();
            if runs.is_empty() {
                continue;
            }
            let convex = results
                .iter()
                .find(|r| r.point == pi && r.fit.method == "convex")
                .map(|r| r.fit.objective);
            let title_suffix = if label.is_empty() {
                String::new()
            } else {
                format!(" ({label})")
            };
            let mut plot = LinePlot::new(
                format!("{}: training objective, K = {k}{title_suffix}", e.name),
                "epoch",
                "objective (4)",
            );
            plot.log_y = true;
            let last_epoch = runs
                .iter()
                .flat_map(|r| r.fit.curve.last())
                .map(|p| p.0)
                .max()
                .unwrap_or(1);
            for r in &runs {
                let points = r.fit.curve.iter().map(|(ep, v)| (*ep as f64, *v)).collect();
                plot.series.push(Series::new(
                    format!("{} run #{}", r.fit.method.to_uppercase(), r.run),
                    points,
                    SeriesStyle::Line,
                ));
            }
            if let Some(optimum) = convex {
                plot.series.push(
                    Series::new(
                        "convex optimum",
                        vec![(0.0, optimum), (last_epoch as f64, optimum)],
                        SeriesStyle::Line,
                    )
                    .dashed(),
                );
            }
            let model = &e.points[pi].model;
            plot.caption = Some(format!(
                "Full-data objective of each non-convex run against the convex optimum (dashed), K = {k} sub-networks, \
                 m1 = {}, m2 = {}, β = {}.",
                model.m1, model.m2, model.beta
            ));
            let stem = if groups.len() == 1 {
                format!("curves_K{k}")
            } else {
                format!("curves_{}_K{k}", gi + 1)
            };
            plot.write_svg(&dir.join(format!("{stem}.svg")))?;
            plot.write_png(&dir.join(format!("{stem}.png")))?;
        }
    }
    Ok(())
}
