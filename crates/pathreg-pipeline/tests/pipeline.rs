//! End-to-end runs of small manifests through the pipeline.

use std::path::Path;

mod common;

use common::options;
use pathreg_pipeline::{RunSummary, run_manifest};
use pathreg_report::{Column, read_parquet};

const SMALL: &str = r#"
name = "small"
kind = "convex_vs_nonconvex"
seed = 5

[data]
source = "teacher"
n = 5
d = 2
teacher_k = 3
teacher_m1 = 2
teacher_m2 = 1

[model]
m1 = 2
beta = 0.01

[arrangements]
mode = "exact"

[nonconvex]
optimizer = "sgd"
lr = 0.01
momentum = 0.9
epochs = 300
batch_size = 2
runs = 2

[sweep]
K = [2, 6]
"#;

fn run_in(
    dir: &Path,
    manifest: &str,
    threads: usize,
) -> Result<RunSummary, pathreg_pipeline::PipelineError> {
    let path = dir.join("manifest.toml");
    std::fs::write(&path, manifest).unwrap();
    common::run_on(&path, &dir.join("outputs"), None, threads)
}

#[test]
fn writes_every_output_and_is_deterministic_across_thread_counts() {
    let dir = tempfile::tempdir().unwrap();
    let one = run_in(dir.path(), SMALL, 1).unwrap();
    let out = dir.path().join("outputs/small");
    for file in [
        "results.csv",
        "results.parquet",
        "table.md",
        "data.csv",
        "run.json",
        "curves_K2.svg",
        "curves_K6.png",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert!(
        csv.starts_with("method,K,run,seed,objective,loss,regularizer,time_s,status,iterations"),
        "{csv}"
    );
    // One convex row per sweep point (computed once, shared), then the runs.
    assert_eq!(csv.lines().count(), 1 + 2 * (1 + 2));
    let table = read_parquet(&out.join("results.parquet")).unwrap();
    assert_eq!(table.n_rows(), 6);
    let Some(Column::Str(status)) = table.column("status") else {
        panic!("status column")
    };
    assert_eq!(status[0], "certified_global_optimum");
    let Some(Column::F64(objective)) = table.column("objective") else {
        panic!("objective column")
    };
    // The certified convex optimum is below every non-convex run.
    assert!(
        objective[1..]
            .iter()
            .all(|o| objective[0] <= o * (1.0 + 1e-6))
    );
    let data = std::fs::read_to_string(out.join("data.csv")).unwrap();
    assert!(data.starts_with("x0,x1,y\n") && data.lines().count() == 6);
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["result_hash"], one.result_hash.as_str());
    assert!(run["convex"][0]["relative_gap"].as_f64().unwrap() < 1e-6);
    assert_eq!(run["arrangements"][0]["mode"], "exact");
    assert_eq!(run["cache"]["enabled"], false);

    let two = run_in(dir.path(), SMALL, 2).unwrap();
    assert_eq!(
        one.result_hash, two.result_hash,
        "results depend on the thread count"
    );
    // No staging folders are left behind.
    let leftovers: Vec<String> = std::fs::read_dir(dir.path().join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("staging") || name.contains("previous"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn run_cached(dir: &Path, manifest: &str) -> RunSummary {
    let path = dir.join("manifest.toml");
    std::fs::write(&path, manifest).unwrap();
    run_manifest(
        &path,
        &options(&dir.join("outputs"), Some(dir.join("cache"))),
    )
    .unwrap()
}

#[test]
fn the_cache_makes_reruns_hits_and_recomputes_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let cold = run_cached(dir.path(), SMALL);
    // arrangements + 1 convex + 2 K × 2 runs
    assert_eq!((cold.cache_hits, cold.cache_misses), (0, 6));
    let warm = run_cached(dir.path(), SMALL);
    assert_eq!((warm.cache_hits, warm.cache_misses), (6, 0));
    assert_eq!(cold.result_hash, warm.result_hash);
    assert_eq!(cold.rounded_hash, warm.rounded_hash);
    let uncached = run_in(dir.path(), SMALL, 2).unwrap();
    assert_eq!(
        uncached.result_hash, warm.result_hash,
        "cached results differ from fresh ones"
    );

    // Change one sweep value: only the two runs with K = 7 are new.
    let changed = run_cached(dir.path(), &SMALL.replace("K = [2, 6]", "K = [2, 7]"));
    assert_eq!((changed.cache_hits, changed.cache_misses), (4, 2));
    // Change β: the arrangements are reused, everything else recomputes.
    let beta = run_cached(dir.path(), &SMALL.replace("beta = 0.01", "beta = 0.02"));
    assert_eq!((beta.cache_hits, beta.cache_misses), (1, 5));
}

#[test]
fn sweeps_over_model_parameters_give_one_row_group_per_point() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = SMALL.replace(
        "K = [2, 6]",
        "K = [2, 6]\n\"model.beta\" = [0.01, 0.05]\n\"nonconvex.lr\" = [0.01, 0.005]\nzip = [[\"model.beta\", \"nonconvex.lr\"]]",
    );
    let summary = run_cached(dir.path(), &manifest);
    assert_eq!(summary.cells, 2 * 2 * (1 + 2));
    let csv = std::fs::read_to_string(summary.output_dir.join("results.csv")).unwrap();
    assert!(
        csv.lines()
            .next()
            .unwrap()
            .contains(",model.beta,nonconvex.lr,"),
        "{csv}"
    );
    let table = std::fs::read_to_string(summary.output_dir.join("table.md")).unwrap();
    assert!(
        table.contains("## model.beta=0.05, nonconvex.lr=0.005"),
        "{table}"
    );
    // Two convex solves (one per β), not four.
    assert_eq!(summary.cache_misses, 1 + 2 + 2 * 2 * 2);
}

#[test]
fn a_user_csv_runs_through_the_same_fit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(
        dir.path().join("data/mine.csv"),
        "a,b,label\n0.5,-1.2,0.3\n1.5,0.2,1.1\n-0.7,0.9,0.0\n0.1,0.4,0.8\n-1.1,-0.3,-0.2\n2.0,1.0,1.7\n",
    )
    .unwrap();
    let manifest = SMALL.replace(
        "source = \"teacher\"\nn = 5\nd = 2\nteacher_k = 3\nteacher_m1 = 2\nteacher_m2 = 1",
        "source = \"csv\"\npath = \"data/mine.csv\"",
    );
    let summary = run_in(dir.path(), &manifest, 2).unwrap();
    let data = std::fs::read_to_string(summary.output_dir.join("data.csv")).unwrap();
    assert!(data.starts_with("a,b,y\n0.5,-1.2,0.3\n"), "{data}");

    std::fs::write(
        dir.path().join("data/mine.csv"),
        "a,b,label\n1,2,3\n4,five,6\n",
    )
    .unwrap();
    let err = run_in(dir.path(), &manifest, 2).unwrap_err().to_string();
    assert!(
        err.contains("mine.csv:3:") && err.contains("\"five\""),
        "{err}"
    );
}

#[test]
fn an_invalid_manifest_fails_before_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let err = run_in(dir.path(), &SMALL.replace("beta = 0.01", "beta = 0"), 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("manifest.toml:") && err.contains("model.beta"),
        "{err}"
    );
    assert!(!dir.path().join("outputs").exists());
}

#[test]
fn the_low_rank_sweep_satisfies_theorem_2_in_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = r#"
name = "lowrank-small"
kind = "lowrank"
seed = 11

[data]
source = "teacher"
n = 12
d = 2
teacher_k = 5
teacher_m1 = 1
teacher_m2 = 1
noise = 0.1
rank_fraction = 0.5

[model]
m1 = 1
beta = 0.1

[arrangements]
mode = "exact"

[sweep]
"data.d" = [2, 3, 4]
"data.seed" = [1, 2]
"#;
    let summary = run_cached(dir.path(), manifest);
    assert_eq!(summary.cells, 6);
    let table = read_parquet(&summary.output_dir.join("results.parquet")).unwrap();
    let f64s = |name: &str| match table.column(name) {
        Some(Column::F64(v)) => v.clone(),
        _ => panic!("column {name}"),
    };
    let i64s = |name: &str| match table.column(name) {
        Some(Column::I64(v)) => v.clone(),
        _ => panic!("column {name}"),
    };
    let (p3, p_r, bound) = (f64s("p3_star"), f64s("p_r"), f64s("bound_R1"));
    for i in 0..6 {
        assert!(
            p3[i] <= p_r[i] * (1.0 + 1e-6),
            "cell {i}: p3* {} > p_r {}",
            p3[i],
            p_r[i]
        );
        assert!(
            p_r[i] <= bound[i],
            "cell {i}: p_r {} above the bound {}",
            p_r[i],
            bound[i]
        );
        assert!(f64s("p3_relative_gap")[i] < 1e-6);
    }
    let (full, low) = (i64s("first_layer_P_full"), i64s("first_layer_P_low_rank"));
    let (closed_full, closed_low) = (i64s("closed_form_P_full"), i64s("closed_form_P_low_rank"));
    for i in 0..6 {
        assert!(low[i] <= full[i]);
        // Gaussian data is in general position: exact enumeration meets the closed form.
        assert_eq!((full[i], low[i]), (closed_full[i], closed_low[i]));
    }
    for file in [
        "table.md",
        "fig4a_objective_ratio.svg",
        "fig4b_arrangements.png",
        "data_d3_seed2.csv",
        "run.json",
    ] {
        assert!(summary.output_dir.join(file).is_file(), "missing {file}");
    }
    let data = std::fs::read_to_string(summary.output_dir.join("data_d3_seed2.csv")).unwrap();
    assert!(
        data.starts_with("x0,x1,x2,x0_low_rank,x1_low_rank,x2_low_rank,y\n"),
        "{data}"
    );
    // Warm rerun: every cell from the cache, same hash.
    let again = run_cached(dir.path(), manifest);
    assert_eq!(again.result_hash, summary.result_hash);
    assert_eq!(again.cache_misses, 0);
}

/// Issue #11 item 7: the five-row CSV on which Clarabel stalls
/// (`InsufficientProgress` at the default tolerance) runs to completion with a
/// convex row whose status is reported; at a loose tolerance the solve is
/// honestly uncertified, with its gap, instead of failing the run.
#[test]
fn a_stalled_convex_solve_still_reports_a_convex_row() {
    const FIVE_ROWS: &str = r#"
name = "five-rows"
kind = "convex_vs_nonconvex"
seed = 1

[data]
source = "csv"
path = "five.csv"

[model]
m1 = 3
m2 = 1
beta = 0.002

[arrangements]
mode = "exact"
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("five.csv"),
        "x1,x2,y\n0.1,0.2,1\n-0.3,0.5,-1\n0.7,-0.2,0.5\n-0.4,-0.9,0.2\n0.3,0.8,-0.7\n",
    )
    .unwrap();
    for (tolerance, expected) in [
        (None, "certified_global_optimum"),
        (Some("1e-8"), "certified_global_optimum"),
        (Some("1e-4"), "uncertified"),
    ] {
        let manifest = match tolerance {
            Some(t) => format!("{FIVE_ROWS}\n[convex]\ntolerance = {t}\n"),
            None => FIVE_ROWS.to_string(),
        };
        let summary = run_in(dir.path(), &manifest, 2)
            .unwrap_or_else(|e| panic!("tolerance {tolerance:?}: {e}"));
        let table = read_parquet(&summary.output_dir.join("results.parquet")).unwrap();
        assert_eq!(table.n_rows(), 1);
        let Some(Column::Str(status)) = table.column("status") else {
            panic!("status column")
        };
        assert_eq!(status[0], expected, "tolerance {tolerance:?}");
        let Some(Column::F64(objective)) = table.column("objective") else {
            panic!("objective column")
        };
        let run: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(summary.output_dir.join("run.json")).unwrap(),
        )
        .unwrap();
        let convex = &run["convex"][0];
        let gap = convex["duality_gap"].as_f64().unwrap();
        assert!(convex["dual_lower_bound"].as_f64().unwrap() <= objective[0]);
        assert!(
            (objective[0] - 0.0683670).abs() <= gap + 5e-8,
            "tolerance {tolerance:?}"
        );
        assert!(!convex["solve_attempts"].as_array().unwrap().is_empty());
        let relative_gap = convex["relative_gap"].as_f64().unwrap();
        assert_eq!(relative_gap > 1e-6, expected == "uncertified");
        assert!(
            convex["mapped_relative_difference"].as_f64().unwrap()
                <= convex["map_tolerance"].as_f64().unwrap()
        );
        let table_md = std::fs::read_to_string(summary.output_dir.join("table.md")).unwrap();
        assert!(table_md.contains("duality gap"), "{table_md}");
    }
}
