//! `kind = "sparsity_path"` end to end on a user CSV: (21) by ADMM along β,
//! certified at every β, with exact zero groups, Proposition 1's network
//! reproducing the convex objective and outputs, and the written outputs.

use std::path::{Path, PathBuf};

use pathreg_core::network::standard_normal;
mod common;

use pathreg_pipeline::{RunSummary, load_manifest, run_manifest};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Two noisy classes in R³ split by a curved boundary.
fn two_class_csv() -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut csv = String::from("a,b,c,label\n");
    for _ in 0..80 {
        let p: Vec<f64> = (0..3).map(|_| standard_normal(&mut rng)).collect();
        let label = if p[0] * p[0] - p[1] + 0.3 * p[2] > 0.5 {
            1
        } else {
            0
        };
        csv.push_str(&format!("{},{},{},{label}\n", p[0], p[1], p[2]));
    }
    csv
}

const MANIFEST: &str = r#"
name = "path"
kind = "sparsity_path"
seed = 3

[data]
dataset = "csv:two.csv"
split_seed = 1
preprocess = "standardize"

[model]
K = 4
m1 = 4
m2 = 1
betas = [1000.0, 4.0, 1.0, 0.25]

[admm]
tol_gap = 1e-4
max_iterations = 40000
"#;

fn setup(manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("two.csv"), two_class_csv()).unwrap();
    let path = dir.path().join("path.toml");
    std::fs::write(&path, manifest).unwrap();
    (dir, path)
}

fn run(path: &Path, outputs: &Path, threads: usize) -> RunSummary {
    common::run_on(path, outputs, None, threads).unwrap()
}

#[test]
fn the_path_is_certified_sparse_and_mapped_by_proposition_1() {
    let (dir, path) = setup(MANIFEST);
    let one = run(&path, &dir.path().join("out1"), 1);
    let out = dir.path().join("out1/path");
    for file in [
        "results.csv",
        "table.md",
        "active_groups.svg",
        "active_groups.png",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 4);
    let value = |row: &Vec<&str>, name: &str| -> f64 { row[column(name)].parse().unwrap() };
    for row in &rows {
        assert_eq!(row[column("converged")], "true", "{csv}");
        assert!(value(row, "relative_gap") <= 1e-4, "{csv}");
        assert!(value(row, "violation_relative") <= 1e-6, "{csv}");
        assert!(
            value(row, "lower_bound") <= value(row, "objective"),
            "{csv}"
        );
        // Proposition 1: the network has one sub-network per non-zero group,
        // reproduces the convex objective and the convex model's outputs.
        let objective = value(row, "objective");
        let network = value(row, "network_objective");
        assert!(
            (network - objective).abs() <= 1e-8 * objective,
            "{network} vs {objective}"
        );
        assert!(value(row, "network_output_difference") <= 1e-8, "{csv}");
        assert!(value(row, "network_test_agreement") >= 0.5, "{csv}");
        assert_eq!(
            value(row, "network_subnetworks"),
            value(row, "total_groups") - value(row, "zero_groups")
        );
        assert_eq!(value(row, "total_groups"), 8.0);
    }
    // β = 1000 is beyond the largest useful β: every group is exactly zero
    // and the objective is ½‖y‖² with y = ±1, half the training rows.
    let first = &rows[0];
    assert_eq!(value(first, "zero_groups"), 8.0, "{csv}");
    let details: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let n_train = details["n_train"].as_f64().unwrap();
    assert!(n_train > 50.0, "{details}");
    assert!(
        (value(first, "objective") - 0.5 * n_train).abs() < 1e-9,
        "{csv}"
    );
    // The smallest β uses groups and fits the training rows better.
    let last = &rows[3];
    assert!(value(last, "active_groups") >= 1.0);
    assert!(value(last, "train_accuracy") > value(first, "train_accuracy"));
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("4 of 4 solves met both tolerances"),
        "{table}"
    );

    let two = run(&path, &dir.path().join("out2"), 2);
    assert_eq!(one.result_hash, two.result_hash);
}

#[test]
fn bad_path_manifests_name_the_key() {
    let cases = [
        (
            MANIFEST.replace("[1000.0, 4.0, 1.0, 0.25]", "[1.0, 4.0]"),
            "model.betas",
            "decrease strictly",
        ),
        (
            MANIFEST.replace("[1000.0, 4.0, 1.0, 0.25]", "[]"),
            "model.betas",
            "at least one",
        ),
        (
            MANIFEST.replace("[1000.0, 4.0, 1.0, 0.25]", "[1.0, -1.0]"),
            "model.betas",
            "positive",
        ),
        (
            MANIFEST.replace("max_iterations = 40000", "max_iterations = 0"),
            "admm.max_iterations",
            "at least 1",
        ),
        (
            MANIFEST.replace("csv:two.csv", "uci:no-such"),
            "data.dataset",
            "unknown dataset",
        ),
    ];
    for (text, key, reason) in cases {
        let (_dir, path) = setup(&text);
        let err = load_manifest(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(key) && err.contains(reason),
            "expected {key}: {reason}, got {err}"
        );
    }
    let (dir, path) = setup(MANIFEST);
    let mut csv = String::from("a,label\n");
    for i in 0..30 {
        csv.push_str(&format!("{i},{}\n", i % 3));
    }
    std::fs::write(dir.path().join("two.csv"), csv).unwrap();
    let err = run_manifest(&path, &common::options(&dir.path().join("out"), None))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 distinct values") && err.contains("data.dataset"),
        "{err}"
    );
}
