//! Figure 6's outputs: results.csv and .parquet (one row per stage, then
//! the baseline), curves.csv, table.md and test accuracy by stage.

use std::path::Path;

use pathreg_report::{
    Column, Figure, LinePlot, Series, SeriesStyle, Table, markdown_table, write_atomic, write_csv,
    write_parquet,
};

use super::manifest::{BaselineOptimizer, Features, StackingExperiment};
use super::run::StageResult;
use crate::PipelineError;
use crate::engine::hashing::HashInput;
use crate::kinds::images::run::{ImageData, MethodResult};

/// One stage's result and whether it came from the cache.
pub(super) type StageRow = (StageResult, bool);
/// The baseline's result and whether it came from the cache.
pub(super) type BaselineRow = (MethodResult, bool);

fn per_epoch(r: &MethodResult) -> f64 {
    r.time_s / r.epochs_run.max(1) as f64
}

fn evaluation_values(r: &MethodResult) -> Vec<f64> {
    let mut values = Vec::new();
    for e in [&r.train, &r.test] {
        values.extend([e.loss, e.violation, e.regularizer, e.objective, e.accuracy]);
    }
    for p in &r.curve {
        values.extend([
            p.epoch,
            p.batch_objective,
            p.running_train_accuracy,
            p.test_accuracy,
        ]);
    }
    values
}

/// What each stage and the baseline contribute to the result hashes:
/// everything computed except wall times.
pub(super) fn hash_inputs(stages: &[StageRow], baseline: Option<&BaselineRow>) -> Vec<HashInput> {
    let mut rows: Vec<HashInput> = stages
        .iter()
        .map(|(s, _)| {
            let mut values = evaluation_values(&s.convex);
            values.extend([
                s.network_train_accuracy,
                s.network_test_accuracy,
                s.feature_scale,
            ]);
            if let Some(map) = &s.convex.map {
                let c = &map.check;
                values.extend([
                    map.path_regularizer,
                    c.violation,
                    c.output_difference,
                    c.same_prediction,
                ]);
            }
            HashInput {
                label: format!("stage {}", s.stage),
                texts: vec![
                    s.input_width.to_string(),
                    s.output_width.to_string(),
                    s.convex.epochs_run.to_string(),
                    s.convex.diverged.to_string(),
                ],
                values,
                headline: s.convex.test.accuracy,
            }
        })
        .collect();
    if let Some((b, _)) = baseline {
        rows.push(HashInput {
            label: "baseline".into(),
            texts: vec![b.epochs_run.to_string(), b.diverged.to_string()],
            values: evaluation_values(b),
            headline: b.test.accuracy,
        });
    }
    rows
}

/// run.json's details.
pub(super) fn details(
    experiment: &StackingExperiment,
    stages: &[StageRow],
    baseline: Option<&BaselineRow>,
    data: Option<&ImageData>,
) -> serde_json::Value {
    let stage_details: Vec<serde_json::Value> = stages
        .iter()
        .map(|(s, cached)| {
            serde_json::json!({
                "stage": s.stage, "cached": cached, "input_width": s.input_width,
                "output_width": s.output_width, "feature_scale": s.feature_scale,
                "features_s": s.features_s, "epochs_run": s.convex.epochs_run,
                "diverged": s.convex.diverged, "time_s": s.convex.time_s,
                "time_per_epoch_s": per_epoch(&s.convex), "prepare_s": s.convex.prepare_s,
                "train": s.convex.train, "test": s.convex.test,
                "network_train_accuracy": s.network_train_accuracy,
                "network_test_accuracy": s.network_test_accuracy,
                "proposition1": s.convex.map, "peak_resident_bytes": s.convex.peak_resident_bytes,
            })
        })
        .collect();
    serde_json::json!({
        "dataset": experiment.data.dataset,
        "data": data.map(|d| serde_json::json!({
            "train_rows": d.train.n(), "test_rows": d.test.n(), "files": d.files, "load_s": d.load_s,
        })),
        "threads": rayon::current_num_threads(),
        "features": experiment.stacking.features,
        "stages": stage_details,
        "baseline": baseline.map(|(b, cached)| serde_json::json!({
            "cached": cached, "epochs_run": b.epochs_run, "diverged": b.diverged,
            "parameters": b.parameters, "time_s": b.time_s, "time_per_epoch_s": per_epoch(b),
            "train": b.train, "test": b.test, "peak_resident_bytes": b.peak_resident_bytes,
        })),
    })
}

/// Writes every table and the figure into `dir`.
pub(super) fn write_outputs(
    dir: &Path,
    experiment: &StackingExperiment,
    stages: &[StageRow],
    baseline: Option<&BaselineRow>,
) -> Result<(), PipelineError> {
    write_results(dir, stages, baseline)?;
    write_curves(dir, stages, baseline)?;
    write_atomic(
        &dir.join("table.md"),
        table_md(experiment, stages, baseline).as_bytes(),
    )?;
    let mut plot = LinePlot::new(
        format!(
            "{}: layerwise convex training ({})",
            experiment.data.dataset, experiment.name
        ),
        "stage",
        "test accuracy",
    );
    let by_stage = |f: &dyn Fn(&StageResult) -> f64| {
        stages.iter().map(|(s, _)| (s.stage as f64, f(s))).collect()
    };
    plot.series = vec![
        Series::new(
            "Convex stage (11)",
            by_stage(&|s| s.convex.test.accuracy),
            SeriesStyle::LineMarkers,
        ),
        Series::new(
            "The stage's Proposition 1 network",
            by_stage(&|s| s.network_test_accuracy),
            SeriesStyle::LineMarkers,
        ),
    ];
    if let Some((b, _)) = baseline {
        let last = experiment.stacking.stages as f64;
        plot.series.push(
            Series::new(
                format!(
                    "End-to-end network, {} blocks (non-convex)",
                    experiment.stacking.stages
                ),
                vec![(1.0, b.test.accuracy), (last, b.test.accuracy)],
                SeriesStyle::Line,
            )
            .dashed(),
        );
    }
    plot.caption = Some(format!(
        "Each stage: (11) with (K, m1, β) = ({}, {}, {}), λ = {:e}, {} at {:e}, {} epochs; features passed on: {}.",
        experiment.model.k,
        experiment.model.m1,
        experiment.model.beta,
        experiment.model.lambda,
        experiment.stacking.method.name.label(),
        experiment.stacking.method.lr,
        experiment.training.epochs,
        features_label(experiment.stacking.features),
    ));
    plot.write_svg(&dir.join("test_accuracy_by_stage.svg"))?;
    plot.write_png(&dir.join("test_accuracy_by_stage.png"))?;
    Ok(())
}

fn features_label(features: Features) -> &'static str {
    match features {
        Features::Network => "the second hidden layer of Proposition 1's network",
        Features::Convex => "the convex model's gated block terms",
    }
}

fn write_results(
    dir: &Path,
    stages: &[StageRow],
    baseline: Option<&BaselineRow>,
) -> Result<(), PipelineError> {
    struct Line<'a> {
        name: String,
        result: &'a MethodResult,
        stage: Option<&'a StageResult>,
        cached: bool,
    }
    let mut lines: Vec<Line> = stages
        .iter()
        .map(|(s, cached)| Line {
            name: format!("stage {}", s.stage),
            result: &s.convex,
            stage: Some(s),
            cached: *cached,
        })
        .collect();
    if let Some((b, cached)) = baseline {
        lines.push(Line {
            name: "baseline".into(),
            result: b,
            stage: None,
            cached: *cached,
        });
    }
    let float = |f: &dyn Fn(&Line) -> f64| Column::F64(lines.iter().map(f).collect());
    let stage_value = |f: &dyn Fn(&StageResult) -> f64| float(&|l| l.stage.map_or(f64::NAN, f));
    let mut table = Table::new();
    table.push_column(
        "model",
        Column::Str(lines.iter().map(|l| l.name.clone()).collect()),
    )?;
    table.push_column("input_width", stage_value(&|s| s.input_width as f64))?;
    table.push_column("output_width", stage_value(&|s| s.output_width as f64))?;
    table.push_column(
        "epochs",
        Column::I64(lines.iter().map(|l| l.result.epochs_run as i64).collect()),
    )?;
    table.push_column(
        "diverged",
        Column::Str(
            lines
                .iter()
                .map(|l| l.result.diverged.to_string())
                .collect(),
        ),
    )?;
    table.push_column("train_accuracy", float(&|l| l.result.train.accuracy))?;
    table.push_column("test_accuracy", float(&|l| l.result.test.accuracy))?;
    table.push_column(
        "network_train_accuracy",
        stage_value(&|s| s.network_train_accuracy),
    )?;
    table.push_column(
        "network_test_accuracy",
        stage_value(&|s| s.network_test_accuracy),
    )?;
    table.push_column("objective", float(&|l| l.result.train.objective))?;
    table.push_column("violation", float(&|l| l.result.train.violation))?;
    table.push_column(
        "active_subnetworks",
        stage_value(&|s| {
            s.convex
                .map
                .as_ref()
                .map_or(f64::NAN, |m| m.subnetworks as f64)
        }),
    )?;
    table.push_column(
        "map_same_prediction",
        stage_value(&|s| {
            s.convex
                .map
                .as_ref()
                .map_or(f64::NAN, |m| m.check.same_prediction)
        }),
    )?;
    table.push_column("feature_scale", stage_value(&|s| s.feature_scale))?;
    table.push_column("time_s", float(&|l| l.result.time_s))?;
    table.push_column("time_per_epoch_s", float(&|l| per_epoch(l.result)))?;
    table.push_column("features_s", stage_value(&|s| s.features_s))?;
    table.push_column(
        "cached",
        Column::Str(lines.iter().map(|l| l.cached.to_string()).collect()),
    )?;
    write_csv(&table, &dir.join("results.csv"))?;
    write_parquet(&table, &dir.join("results.parquet"))?;
    Ok(())
}

fn write_curves(
    dir: &Path,
    stages: &[StageRow],
    baseline: Option<&BaselineRow>,
) -> Result<(), PipelineError> {
    let mut named: Vec<(String, &MethodResult)> = stages
        .iter()
        .map(|(s, _)| (format!("stage {}", s.stage), &s.convex))
        .collect();
    if let Some((b, _)) = baseline {
        named.push(("baseline".into(), b));
    }
    let (mut model, mut epoch, mut time, mut objective, mut test) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (name, r) in &named {
        for p in &r.curve {
            model.push(name.clone());
            epoch.push(p.epoch);
            time.push(p.time_s);
            objective.push(p.batch_objective);
            test.push(p.test_accuracy);
        }
    }
    let mut table = Table::new();
    table.push_column("model", Column::Str(model))?;
    table.push_column("epoch", Column::F64(epoch))?;
    table.push_column("time_s", Column::F64(time))?;
    table.push_column("batch_objective", Column::F64(objective))?;
    table.push_column("test_accuracy", Column::F64(test))?;
    write_csv(&table, &dir.join("curves.csv"))?;
    Ok(())
}

fn table_md(
    experiment: &StackingExperiment,
    stages: &[StageRow],
    baseline: Option<&BaselineRow>,
) -> String {
    let mut md = format!("# {}\n\n", experiment.name);
    if !experiment.description.is_empty() {
        md.push_str(&format!("{}\n\n", experiment.description));
    }
    let (n, d) = experiment.shape();
    let (m, t, st) = (
        &experiment.model,
        &experiment.training,
        &experiment.stacking,
    );
    md.push_str(&format!(
        "{} ({n} training rows, d = {d}, ten classes, official test split{}). Every stage is (11) with vector outputs \
         (Figure 5's program) with (K, m1, m2, β, λ) = ({}, {}, {}, {}, {:e}), trained by {} at rate {:e} for {} epochs in batches of {}, \
         on the previous stage's features: {}, scaled so their root mean square row norm is the pixels'. Stage 1 draws its \
         arrangements and batches as Figure 5's convex method does from the same seed, so with the same settings it is that run. \
         Time is training wall time on {} threads, evaluations excluded.\n\n",
        experiment.data.dataset,
        experiment.data.test_rows.map_or(String::new(), |r| format!(", first {r} test rows")),
        m.k, m.m1, m.m2, m.beta, m.lambda,
        st.method.name.label(), st.method.lr, t.epochs, t.batch_size,
        features_label(st.features),
        rayon::current_num_threads(),
    ));
    let header = [
        "stage",
        "input width",
        "train accuracy",
        "test accuracy",
        "network test accuracy",
        "objective",
        "mean violation h",
        "active sub-networks",
        "same class as network",
        "time / epoch (s)",
        "total (s)",
        "features (s)",
    ];
    let table: Vec<Vec<String>> = stages
        .iter()
        .map(|(s, _)| {
            let r = &s.convex;
            vec![
                format!("{}{}", s.stage, if r.diverged { " (diverged)" } else { "" }),
                s.input_width.to_string(),
                format!("{:.4}", r.train.accuracy),
                format!("{:.4}", r.test.accuracy),
                format!("{:.4}", s.network_test_accuracy),
                format!("{:.5}", r.train.objective),
                format!("{:.3e}", r.train.violation),
                r.map
                    .as_ref()
                    .map_or("—".into(), |m| m.subnetworks.to_string()),
                r.map
                    .as_ref()
                    .map_or("—".into(), |m| format!("{:.4}", m.check.same_prediction)),
                format!("{:.2}", per_epoch(r)),
                format!("{:.1}", r.time_s + r.prepare_s),
                format!("{:.1}", s.features_s),
            ]
        })
        .collect();
    md.push_str(&markdown_table(&header, &table));
    let total: f64 = stages
        .iter()
        .map(|(s, _)| s.convex.time_s + s.convex.prepare_s + s.features_s)
        .sum();
    md.push_str(&format!(
        "\nTest accuracy is the convex stage's own (its gates fixed by the sampled arrangements); network test accuracy is \
         Proposition 1's network of the stage on the same input (with \"network\" features, the earlier stages' networks and \
         this one make a deep ReLU network). The mean violation h is (11)'s on the training rows: where it is not zero the two differ, and \"same class\" \
         is the fraction of test rows where they agree. All {} stages: {:.1} s of training, masks and features.\n",
        stages.len(),
        total
    ));
    if let Some((b, _)) = baseline {
        let spec = experiment
            .baseline
            .expect("a baseline row has its settings");
        md.push_str(&format!(
            "\n## End to end\n\nThe network of the same depth trained end to end: {} blocks, each {} sub-networks of \
             (m1, m2) = ({}, {}) whose second hidden layers ({} units) feed the next block, then a linear layer to the ten \
             classes; weight decay β = {:e}, {} at rate {:e}, {} epochs. {} parameters.\n\n",
            experiment.stacking.stages,
            spec.k,
            spec.m1,
            spec.m2,
            spec.k * spec.m2,
            spec.beta,
            match spec.optimizer {
                BaselineOptimizer::Sgd => format!("SGD with momentum {}", t.momentum),
                BaselineOptimizer::Adam => "Adam".to_string(),
            },
            spec.lr,
            b.epochs_run,
            b.parameters
        ));
        md.push_str(&markdown_table(
            &[
                "model",
                "epochs",
                "train accuracy",
                "test accuracy",
                "objective",
                "time / epoch (s)",
                "total (s)",
            ],
            &[vec![
                format!(
                    "end-to-end, {} blocks{}",
                    experiment.stacking.stages,
                    if b.diverged { " (diverged)" } else { "" }
                ),
                b.epochs_run.to_string(),
                format!("{:.4}", b.train.accuracy),
                format!("{:.4}", b.test.accuracy),
                format!("{:.5}", b.train.objective),
                format!("{:.2}", per_epoch(b)),
                format!("{:.1}", b.time_s),
            ]],
        ));
    }
    md.push_str(
        "\n## The paper\n\nFigure 6 trains three-layer networks one after another with the convex formulation, in Figure 5's \
         setting, and reports test accuracy per stage: deeper stacks do better, reaching almost 85 % on CIFAR-10 at stage 5 \
         against under 60 % for one stage in Figure 5. The paper does not say which representation one stage passes to the \
         next, nor the per-stage epochs; this run's choices are stated above.\n",
    );
    md
}
