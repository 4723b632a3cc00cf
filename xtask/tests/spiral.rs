//! Figure 1's kind as a user runs it: the committed manifest (no download),
//! its outputs and checks, at one and two threads, and bad manifests.

use std::path::Path;

mod common;
use common::{workspace, xtask};

fn committed() -> String {
    std::fs::read_to_string(workspace().join("experiments/fig1.toml")).unwrap()
}

fn run(dir: &Path, manifest: &Path, threads: usize) -> std::process::Output {
    xtask()
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .args(["run", "--quiet", "--no-cache", "--outputs"])
        .arg(dir.join(format!("out{threads}")))
        .arg(manifest)
        .output()
        .unwrap()
}

#[test]
fn figure1_solves_maps_and_draws_its_three_models_alike_at_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig1.toml");
    std::fs::write(&path, committed()).unwrap();
    let mut hashes = Vec::new();
    for threads in [2, 1] {
        let output = run(dir.path(), &path, threads);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let out = dir.path().join(format!("out{threads}/fig1"));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        hashes.push(json["result_hash"].clone());
        for file in [
            "table.md",
            "results.csv",
            "results.parquet",
            "fig1_decision_boundaries.svg",
        ] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        assert!(
            std::fs::read(out.join("fig1_decision_boundaries.png"))
                .unwrap()
                .starts_with(b"\x89PNG")
        );
        let models = json["models"].as_array().unwrap();
        let keys: Vec<&str> = models
            .iter()
            .map(|m| m["model"].as_str().unwrap())
            .collect();
        assert_eq!(
            keys,
            ["two_layer", "three_layer_decoupled", "three_layer_path"]
        );
        for m in models {
            // Each optimum is certified over its triples and reproduced by its network.
            assert_eq!(m["status"], "optimal_for_sampled_arrangements", "{m}");
            assert!(m["relative_gap"].as_f64().unwrap() <= 1e-6, "{m}");
            assert!(
                m["network_relative_difference"].as_f64().unwrap() <= 1e-6,
                "{m}"
            );
            // Where the constraints hold (every training point), the network predicts as the model.
            assert_eq!(m["network_train_accuracy"], m["train_accuracy"], "{m}");
        }
        // The paper's claim for (c): it fits the spiral.
        assert_eq!(models[2]["train_accuracy"].as_f64(), Some(1.0));
        // (b)'s cones lie inside (c)'s over the same triples: its optimum is never lower.
        assert_eq!(models[1]["triples"], models[2]["triples"]);
        let (decoupled, path) = (
            models[1]["objective"].as_f64().unwrap(),
            models[2]["objective"].as_f64().unwrap(),
        );
        assert!(path <= decoupled * (1.0 + 1e-6), "{path} > {decoupled}");
    }
    assert_eq!(hashes[0], hashes[1]);
}

#[test]
fn bad_figure1_manifests_name_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to, key, reason) in [
        ("n = 30", "n = 31", "data.n", "must be even"),
        ("n = 30", "n = 100000", "data.n", "at most 1000"),
        (
            "turns = 1.5",
            "turns = -1.0",
            "data.turns",
            "must be in (0, 100]",
        ),
        ("noise = 0.0", "noise = -0.1", "data.noise", "≥ 0"),
        ("P2 = 11", "P2 = 1000", "model.P2", "more than 5000"),
        ("m1 = 5", "m1 = 0", "model.m1", "at least 1"),
        ("beta = 1e-4", "beta = 0.0", "model.beta", "positive"),
        ("grid = 100", "grid = 1", "plot.grid", "at least 2"),
        ("grid = 100", "grids = 100", "grids", "unknown field"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, committed().replacen(from, to, 1)).unwrap();
        let output = xtask()
            .current_dir(dir.path())
            .args(["run", "--quiet", "--no-cache", "--outputs", "out"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{to} was accepted");
        assert!(
            stderr.contains(key) && stderr.contains(reason),
            "{to}: {stderr}"
        );
        assert!(stderr.contains("bad.toml"), "{stderr}");
        assert!(!dir.path().join("out/fig1").exists());
    }
}
