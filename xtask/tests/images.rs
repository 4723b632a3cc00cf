//! Figure 5's kind as a user runs it: the committed Fashion-MNIST manifest,
//! shrunk by its own keys (`data.train_rows`, `data.test_rows`,
//! `training.epochs`), run at one and two threads, with the constrained
//! program (21) by ADMM, and its bad inputs.

use std::path::Path;

mod common;
use common::{mirror, workspace, xtask};

/// The committed manifest with `edits` applied line by line (`key = …` lines
/// replaced, new lines added after `[section]` headers).
fn manifest(edits: &[(&str, &str)]) -> String {
    let text =
        std::fs::read_to_string(workspace().join("experiments/fig5_fashion_mnist.toml")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    for (anchor, replacement) in edits {
        let at = lines
            .iter()
            .position(|l| l.starts_with(anchor))
            .unwrap_or_else(|| panic!("no line starts with {anchor:?}"));
        lines[at] = replacement.to_string();
    }
    lines.join("\n")
}

const SMALL: &[(&str, &str)] = &[
    ("name =", "name = \"fig5_small\""),
    (
        "scaling =",
        "scaling = \"unit\"\ntrain_rows = 1500\ntest_rows = 400",
    ),
    ("epochs =", "epochs = 1"),
    ("evaluations_per_epoch =", "evaluations_per_epoch = 2"),
    (
        "sgd_weight_decay =",
        "sgd_weight_decay = \"paper\"\nconvex_sgd_one_vs_rest = \"paper\"",
    ),
];

fn run(dir: &Path, manifest: &Path, threads: usize, mirror: &Path) -> std::process::Output {
    xtask()
        .current_dir(dir)
        .env("PATHREG_MIRROR", mirror)
        .env("PATHREG_DATA", dir.join("data"))
        .env("RAYON_NUM_THREADS", threads.to_string())
        .args(["run", "--quiet", "--no-cache", "--outputs"])
        .arg(dir.join(format!("out{threads}")))
        .arg(manifest)
        .output()
        .unwrap()
}

#[test]
fn a_small_figure5_runs_writes_every_output_and_hashes_alike_at_one_and_two_threads() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig5_small.toml");
    std::fs::write(&path, manifest(SMALL)).unwrap();
    let mut hashes = Vec::new();
    for threads in [2, 1] {
        let output = run(dir.path(), &path, threads, &mirror);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let out = dir.path().join(format!("out{threads}/fig5_small"));
        let run_json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
        hashes.push(run_json["result_hash"].clone());
        if threads == 1 {
            continue;
        }
        for file in [
            "table.md",
            "results.csv",
            "results.parquet",
            "curves.csv",
            "test_accuracy_vs_time.svg",
            "test_accuracy_vs_epoch.svg",
        ] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        for png in ["test_accuracy_vs_time.png", "test_accuracy_vs_epoch.png"] {
            assert!(
                std::fs::read(out.join(png))
                    .unwrap()
                    .starts_with(b"\x89PNG")
            );
        }
        let table = std::fs::read_to_string(out.join("table.md")).unwrap();
        for label in [
            "Convex (11), SGD",
            "Convex (11), Adam",
            "Convex (11) one-vs-rest, SGD",
            "Non-convex SGD",
            "Non-convex Adam",
            "Non-convex Adagrad",
            "Non-convex Adadelta",
            "Non-convex SGD, weight decay",
            "Proposition 1 on the test rows",
            "Peak resident memory",
        ] {
            assert!(table.contains(label), "table.md lacks {label:?}:\n{table}");
        }
        let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
        assert_eq!(results.lines().count(), 1 + 8, "{results}");
        let methods = run_json["methods"].as_array().unwrap();
        assert_eq!(methods.len(), 8);
        for method in methods {
            let test = method["test"]["accuracy"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&test), "{method}");
            let Some(check) = method["proposition1"]["check"].as_object() else {
                continue;
            };
            assert_eq!(check["samples"].as_u64(), Some(400));
            let violation = check["violation"].as_f64().unwrap();
            let difference = check["output_difference"].as_f64().unwrap();
            // Proposition 1: Σ |f_net − f_cvx| ≤ Σ h, up to float32 rounding.
            assert!(difference <= violation * (1.0 + 1e-3) + 1e-2, "{method}");
            assert!(
                check["feasible_max_difference"].as_f64().unwrap() <= 1e-3,
                "{method}"
            );
        }
        // The convex programs learn from the first epoch on this subset.
        let convex = methods
            .iter()
            .find(|m| m["method"] == "convex_sgd")
            .unwrap();
        assert!(
            convex["test"]["accuracy"].as_f64().unwrap() > 0.5,
            "{convex}"
        );
        assert!(run_json["peak_resident_bytes"].as_u64().unwrap() > 0);
    }
    assert_eq!(
        hashes[0], hashes[1],
        "result hashes differ between 2 and 1 threads"
    );
}

/// A `[constrained]` table after the last method.
const CONSTRAINED: (&str, &str) = (
    "sgd_weight_decay =",
    "sgd_weight_decay = \"paper\"\n[constrained]\nmethod = \"admm\"\nmax_iterations = 2000",
);

#[test]
fn the_constrained_program_runs_in_figure5_feasible_certified_and_mapped() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig5_small.toml");
    let edits = [
        ("name =", "name = \"fig5_small\""),
        (
            "scaling =",
            "scaling = \"unit\"\ntrain_rows = 300\ntest_rows = 200",
        ),
        ("K =", "K = 4"),
        ("m1 =", "m1 = 5"),
        ("epochs =", "epochs = 1"),
        ("sgd =", "# no sgd"),
        ("adam =", "# no adam"),
        ("adagrad =", "# no adagrad"),
        ("adadelta =", "# no adadelta"),
        ("convex_adam =", "# no convex_adam"),
        CONSTRAINED,
    ];
    std::fs::write(&path, manifest(&edits)).unwrap();
    let output = run(dir.path(), &path, 2, &mirror);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = dir.path().join("out2/fig5_small");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    for label in ["Convex (21), ADMM", "## The constrained program (21)"] {
        assert!(table.contains(label), "table.md lacks {label:?}:\n{table}");
    }
    let run_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let methods = run_json["methods"].as_array().unwrap();
    let admm = methods
        .iter()
        .find(|m| m["method"] == "convex_admm")
        .unwrap();
    let c = &admm["constrained"];
    let (objective, bound) = (
        c["objective"].as_f64().unwrap(),
        c["lower_bound"].as_f64().unwrap(),
    );
    // Feasible (restored), certified, and reported on table.md's scale: the
    // float32 engine's objective of the same point agrees with ADMM's.
    assert!(c["violation"].as_f64().unwrap() <= 1e-6, "{c}");
    assert!(bound <= objective, "{c}");
    let engine = admm["train"]["objective"].as_f64().unwrap();
    assert!(
        (engine - objective).abs() <= 1e-3 * objective,
        "{engine} vs {c}"
    );
    assert!(
        admm["train"]["violation"].as_f64().unwrap() <= 1e-4,
        "{admm}"
    );
    // Exact zeros, and Proposition 1's network is (21)'s model wherever the
    // test rows meet the training rows' constraints.
    let active = c["active_groups"].as_u64().unwrap();
    assert!(active < c["groups"].as_u64().unwrap(), "{c}");
    let map = &admm["proposition1"];
    // One sub-network per non-zero class chunk of an active block.
    let subnetworks = map["subnetworks"].as_u64().unwrap();
    assert!((1..=active * 10).contains(&subnetworks), "{map}");
    assert!(
        map["check"]["feasible_max_difference"].as_f64().unwrap() <= 1e-3,
        "{map}"
    );
    assert!(admm["test"]["accuracy"].as_f64().unwrap() > 0.3, "{admm}");
}

#[test]
fn bad_figure5_manifests_name_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (edits, key, reason) in [
        (
            vec![("sgd =", "sgd = \"fast\"")],
            "methods.sgd",
            "must be \"paper\" or a positive learning rate",
        ),
        (
            vec![("convex_adam =", "convex_adam = \"paper\"")],
            "methods.convex_adam",
            "the paper gives no rate",
        ),
        (
            vec![("adam =", "adamw = 1e-3")],
            "methods.adamw",
            "unknown method",
        ),
        (
            vec![("dataset =", "dataset = \"uci:ionosphere\"")],
            "data.dataset",
            "ten-class images",
        ),
        (
            vec![("batch_size =", "batch_size = 0")],
            "training.batch_size",
            "must be at least 1",
        ),
        (
            vec![("epochs =", "epochs = 100000000")],
            "training.epochs",
            "--override-limits",
        ),
        (
            vec![("K =", "K = 4000"), ("epochs =", "epochs = 1")],
            "model",
            "GiB",
        ),
        (
            vec![(
                "sgd_weight_decay =",
                "sgd_weight_decay = \"paper\"\n[constrained]\nmethod = \"admm\"\npolish_from = 100",
            )],
            "constrained.polish_from",
            "ten",
        ),
        (
            vec![(
                "sgd_weight_decay =",
                "sgd_weight_decay = \"paper\"\n[constrained]\nmethod = \"admm\"\nprecision = \"half\"",
            )],
            "constrained.precision",
            "\"float64\" or \"float32\"",
        ),
        (vec![CONSTRAINED], "constrained", "lower data.train_rows"),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, manifest(&edits)).unwrap();
        let output = xtask()
            .current_dir(dir.path())
            .args(["run", "--quiet", "--no-cache", "--outputs", "out"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{edits:?} was accepted");
        assert!(
            stderr.contains(key) && stderr.contains(reason),
            "{edits:?}: {stderr}"
        );
        assert!(stderr.contains("bad.toml"), "{stderr}");
        assert!(!dir.path().join("out/fig5_fashion_mnist").exists());
    }
}
