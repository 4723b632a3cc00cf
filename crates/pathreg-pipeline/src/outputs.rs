//! Writing `outputs/<name>/`: results.csv, results.parquet, table.md,
//! data.csv, figures and run.json. Everything is written into a staging folder
//! first and swapped in at the end, so a killed run never leaves a half-written
//! output folder behind.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pathreg_report::{
    Column, LinePlot, Series, SeriesStyle, Table, markdown_table, write_atomic, write_csv,
    write_parquet,
};
use sha2::{Digest, Sha256};

use crate::PipelineError;
use crate::provenance::RunInfo;
use crate::run::{CellResult, Prepared};

/// SHA-256 over every result field except timings, floats by their exact bits.
pub(crate) fn result_hash(results: &[CellResult]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"pathreg/results/v1");
    for r in results {
        for text in [r.method.as_str(), r.status.as_str()] {
            hasher.update((text.len() as u64).to_le_bytes());
            hasher.update(text.as_bytes());
        }
        for v in [r.k as u64, r.run as u64, r.seed, r.iterations] {
            hasher.update(v.to_le_bytes());
        }
        for v in [r.objective, r.loss, r.regularizer] {
            hasher.update(v.to_bits().to_le_bytes());
        }
        for (epoch, value) in &r.curve {
            hasher.update((*epoch as u64).to_le_bytes());
            hasher.update(value.to_bits().to_le_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn write_all(
    output_dir: &Path,
    prepared: &Prepared,
    results: &[CellResult],
    run_info: &RunInfo,
) -> Result<(), PipelineError> {
    let parent = output_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    let staging = staging_dir(output_dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;

    let table = results_table(results)?;
    write_csv(&table, &staging.join("results.csv"))?;
    write_parquet(&table, &staging.join("results.parquet"))?;
    write_atomic(
        &staging.join("data.csv"),
        prepared.dataset.to_csv().as_bytes(),
    )?;
    write_atomic(
        &staging.join("table.md"),
        markdown(prepared, results).as_bytes(),
    )?;
    write_csv(&curves_table(results)?, &staging.join("curves.csv"))?;
    write_figures(&staging, prepared, results)?;
    let json = serde_json::to_string_pretty(run_info)
        .map_err(|e| PipelineError::Verification(format!("run.json: {e}")))?;
    write_atomic(&staging.join("run.json"), json.as_bytes())?;

    // Swap the finished folder in.
    let previous = output_dir.with_extension("previous");
    if previous.exists() {
        std::fs::remove_dir_all(&previous).map_err(io_error(&previous))?;
    }
    if output_dir.exists() {
        std::fs::rename(output_dir, &previous).map_err(io_error(output_dir))?;
    }
    std::fs::rename(&staging, output_dir).map_err(io_error(output_dir))?;
    if previous.exists() {
        std::fs::remove_dir_all(&previous).map_err(io_error(&previous))?;
    }
    Ok(())
}

fn staging_dir(output_dir: &Path) -> PathBuf {
    let name = output_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output_dir.with_file_name(format!(".{name}.staging-{}", std::process::id()))
}

fn results_table(results: &[CellResult]) -> Result<Table, PipelineError> {
    let strings = |f: &dyn Fn(&CellResult) -> String| Column::Str(results.iter().map(f).collect());
    let floats = |f: &dyn Fn(&CellResult) -> f64| Column::F64(results.iter().map(f).collect());
    let ints = |f: &dyn Fn(&CellResult) -> i64| Column::I64(results.iter().map(f).collect());
    let mut table = Table::new();
    table.push_column("method", strings(&|r| r.method.clone()))?;
    table.push_column("K", ints(&|r| r.k as i64))?;
    table.push_column("run", ints(&|r| r.run as i64))?;
    table.push_column("seed", strings(&|r| format!("{:016x}", r.seed)))?;
    table.push_column("objective", floats(&|r| r.objective))?;
    table.push_column("loss", floats(&|r| r.loss))?;
    table.push_column("regularizer", floats(&|r| r.regularizer))?;
    table.push_column("time_s", floats(&|r| r.time_s))?;
    table.push_column("status", strings(&|r| r.status.clone()))?;
    table.push_column("iterations", ints(&|r| r.iterations as i64))?;
    Ok(table)
}

/// The recorded objective curves, one row per (run, epoch).
fn curves_table(results: &[CellResult]) -> Result<Table, PipelineError> {
    let rows: Vec<(&CellResult, usize, f64)> = results
        .iter()
        .flat_map(|r| {
            r.curve
                .iter()
                .map(move |(epoch, value)| (r, *epoch, *value))
        })
        .collect();
    let mut table = Table::new();
    table.push_column(
        "method",
        Column::Str(rows.iter().map(|r| r.0.method.clone()).collect()),
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
            let (last_epoch, last) = *r.curve.last()?;
            let cutoff = last_epoch - last_epoch / 10;
            let (_, earlier) = r.curve.iter().rev().find(|(e, _)| *e <= cutoff)?;
            Some((earlier - last).abs() / last.abs().max(f64::MIN_POSITIVE))
        })
        .reduce(f64::max)
}

fn objective_cell(objective: f64, time_s: f64) -> [String; 2] {
    [format!("{objective:.4}"), format!("{time_s:.3}")]
}

fn markdown(prepared: &Prepared, results: &[CellResult]) -> String {
    let e = &prepared.experiment;
    let convex = results.iter().find(|r| r.method == "convex");
    let runs = e.nonconvex.map_or(0, |nc| nc.runs);
    let method = e.nonconvex.map_or("non-convex", |nc| nc.optimizer.name());
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", e.name);
    if !e.description.is_empty() {
        let _ = writeln!(out, "{}\n", e.description);
    }
    let _ = writeln!(
        out,
        "Final training objective (4) (`½‖f − y‖² + β·R(θ)`) and wall-clock time in seconds; \
         n = {}, d = {}, m1 = {}, m2 = {}, β = {}.\n",
        prepared.dataset.n(),
        prepared.dataset.d(),
        e.model.m1,
        e.model.m2,
        e.model.beta
    );
    let mut header: Vec<String> = vec!["K".into(), "".into()];
    header.extend((1..=runs).map(|r| format!("{} run #{r}", method.to_uppercase())));
    header.push("Convex (ours)".into());
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let convex_cells = convex.map_or([String::from("—"), String::from("—")], |c| {
        objective_cell(c.objective, c.time_s)
    });
    let mut rows = Vec::new();
    for &k in &e.sweep_k {
        let mut objective_row = vec![k.to_string(), "Training objective".into()];
        let mut time_row = vec![String::new(), "Time (s)".into()];
        for run in 1..=runs {
            let r = results
                .iter()
                .find(|r| r.method != "convex" && r.k == k && r.run == run);
            let [o, t] = r.map_or([String::from("—"), String::from("—")], |r| {
                objective_cell(r.objective, r.time_s)
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
    let _ = writeln!(
        out,
        "- Arrangements: {} triples ({:?}), found in {:.3} s.",
        prepared.arrangements.len(),
        prepared.arrangements.mode(),
        prepared.arrangement_time_s
    );
    if let Some(details) = convex.and_then(|c| c.convex.as_ref()) {
        let _ = writeln!(
            out,
            "- Convex program (21), Clarabel: status {}, {} working-set rounds ending with {} triples, {} interior-point iterations; \
             duality gap {:.3e} (relative {:.3e}) with the dual constraints checked on all {} triples (max ratio {:.9}).",
            details.solver_status,
            details.working_set_rounds,
            details.working_set_size,
            details.interior_point_iterations,
            details.duality_gap,
            details.relative_gap,
            details.triples_checked,
            details.max_dual_ratio
        );
        let _ = writeln!(
            out,
            "- Proposition 1 network: {} sub-networks; its objective (4) is {:.10} (relative difference {:.2e} from the convex optimum).",
            details.active_subnetworks,
            details.mapped_objective,
            details.mapped_relative_difference
        );
    }
    if let Some(nc) = &e.nonconvex {
        let _ = writeln!(
            out,
            "- Non-convex runs: {:?}, {} epochs, batch size {}, {:?} regularizer, LeCun-normal initialization; seeds in results.csv.",
            nc.optimizer, nc.epochs, nc.batch_size, nc.regularizer
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

fn write_figures(
    dir: &Path,
    prepared: &Prepared,
    results: &[CellResult],
) -> Result<(), PipelineError> {
    let e = &prepared.experiment;
    let convex = results
        .iter()
        .find(|r| r.method == "convex")
        .map(|r| r.objective);
    for &k in &e.sweep_k {
        let runs: Vec<&CellResult> = results
            .iter()
            .filter(|r| r.method != "convex" && r.k == k)
            .collect();
        if runs.is_empty() {
            continue;
        }
        let mut plot = LinePlot::new(
            format!("{}: training objective, K = {k}", e.name),
            "epoch",
            "objective (4)",
        );
        plot.log_y = true;
        let last_epoch = runs
            .iter()
            .flat_map(|r| r.curve.last())
            .map(|p| p.0)
            .max()
            .unwrap_or(1);
        for r in &runs {
            let points = r.curve.iter().map(|(ep, v)| (*ep as f64, *v)).collect();
            plot.series.push(Series::new(
                format!("{} run #{}", r.method.to_uppercase(), r.run),
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
        plot.caption = Some(format!(
            "Full-data objective of each non-convex run against the certified convex optimum (dashed), K = {k} sub-networks, \
             m1 = {}, m2 = {}, β = {}.",
            e.model.m1, e.model.m2, e.model.beta
        ));
        plot.write_svg(&dir.join(format!("curves_K{k}.svg")))?;
        plot.write_png(&dir.join(format!("curves_K{k}.png")))?;
    }
    Ok(())
}
