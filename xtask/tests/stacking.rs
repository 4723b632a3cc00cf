//! Figure 6's kind as a user runs it: the committed Fashion-MNIST manifest
//! shrunk by its own keys, run at one and two threads; the stage chain
//! reused from the cache, also after a run killed inside a stage; stage 1
//! against Figure 5's convex run; and bad manifests.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{mirror, workspace, xtask};

/// A committed manifest with `edits` applied line by line (the first line
/// starting with each anchor replaced).
fn edited(file: &str, edits: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(workspace().join("experiments").join(file)).unwrap();
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

/// The stack on a subsample: 1 500 training and 400 test rows, one epoch a
/// stage, `stages` stages.
fn small(stages: usize, extra: &[(&str, &str)]) -> String {
    let stages_line = format!("stages = {stages}");
    let mut edits = vec![
        ("name =", "name = \"fig6_small\""),
        (
            "scaling =",
            "scaling = \"unit\"\ntrain_rows = 1500\ntest_rows = 400",
        ),
        ("epochs =", "epochs = 1"),
        ("stages =", stages_line.as_str()),
        ("batch_size =", "batch_size = 250"),
    ];
    edits.extend_from_slice(extra);
    edited("fig6_fashion_mnist.toml", &edits)
}

/// `xtask run --quiet` in `dir`, reading the data through `mirror`.
fn xtask_run(dir: &Path, mirror: &Path) -> Command {
    let mut command = xtask();
    command
        .current_dir(dir)
        .env("PATHREG_MIRROR", mirror)
        .env("PATHREG_DATA", dir.join("data"))
        .args(["run", "--quiet"]);
    command
}

fn run(
    dir: &Path,
    manifest: &Path,
    threads: usize,
    cache: Option<&Path>,
    mirror: &Path,
) -> std::process::Output {
    let mut command = xtask_run(dir, mirror);
    command
        .env("RAYON_NUM_THREADS", threads.to_string())
        .arg("--outputs")
        .arg(dir.join(format!("out{threads}")))
        .arg(manifest);
    match cache {
        Some(cache) => command.arg("--cache-dir").arg(cache),
        None => command.arg("--no-cache"),
    };
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn run_json(dir: &Path, threads: usize) -> serde_json::Value {
    let path = dir.join(format!("out{threads}/fig6_small/run.json"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn a_small_stack_runs_writes_every_output_and_hashes_alike_at_one_and_two_threads() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fig6_small.toml");
    std::fs::write(&path, small(3, &[])).unwrap();
    let mut hashes = Vec::new();
    for threads in [2, 1] {
        run(dir.path(), &path, threads, None, &mirror);
        let json = run_json(dir.path(), threads);
        hashes.push(json["result_hash"].clone());
        if threads == 1 {
            continue;
        }
        let out = dir.path().join("out2/fig6_small");
        for file in [
            "table.md",
            "results.csv",
            "results.parquet",
            "curves.csv",
            "test_accuracy_by_stage.svg",
        ] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        assert!(
            std::fs::read(out.join("test_accuracy_by_stage.png"))
                .unwrap()
                .starts_with(b"\x89PNG")
        );
        let table = std::fs::read_to_string(out.join("table.md")).unwrap();
        for label in [
            "| stage | input width |",
            "active sub-networks",
            "mean violation h",
            "End to end",
            "The paper",
        ] {
            assert!(table.contains(label), "table.md lacks {label:?}:\n{table}");
        }
        let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
        assert_eq!(results.lines().count(), 1 + 3 + 1, "{results}");
        let stages = json["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 3);
        assert_eq!(stages[0]["input_width"].as_u64(), Some(784));
        for (i, stage) in stages.iter().enumerate() {
            // Each stage's input is the previous stage's output, one unit per active block.
            if i > 0 {
                assert_eq!(stage["input_width"], stages[i - 1]["output_width"]);
            }
            let width = stage["output_width"].as_u64().unwrap();
            assert!((1..=800).contains(&width), "{stage}");
            assert_eq!(stage["proposition1"]["subnetworks"].as_u64(), Some(width));
            let check = &stage["proposition1"]["check"];
            let violation = check["violation"].as_f64().unwrap();
            let difference = check["output_difference"].as_f64().unwrap();
            // Proposition 1: Σ |f_net − f_cvx| ≤ Σ h, up to float32 rounding.
            assert!(difference <= violation * (1.0 + 1e-3) + 1e-2, "{stage}");
            for accuracy in [&stage["test"]["accuracy"], &stage["network_test_accuracy"]] {
                assert!((0.0..=1.0).contains(&accuracy.as_f64().unwrap()));
            }
        }
        // The first stage learns from one epoch of this subset.
        assert!(stages[0]["test"]["accuracy"].as_f64().unwrap() > 0.5);
        assert!(json["baseline"]["test"]["accuracy"].as_f64().is_some());
    }
    assert_eq!(
        hashes[0], hashes[1],
        "result hashes differ between 2 and 1 threads"
    );
}

/// The `stacking_stage` entries in `cache`.
fn stage_entries(cache: &Path) -> usize {
    let Ok(prefixes) = std::fs::read_dir(cache.join("stacking_stage")) else {
        return 0;
    };
    prefixes
        .filter_map(Result::ok)
        .filter_map(|p| std::fs::read_dir(p.path()).ok())
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().len() == 64)
        .count()
}

#[test]
fn a_longer_stack_and_a_killed_run_reuse_the_stages_before() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let two = dir.path().join("two.toml");
    let three = dir.path().join("three.toml");
    std::fs::write(&two, small(2, &[])).unwrap();
    std::fs::write(&three, small(3, &[])).unwrap();
    run(dir.path(), &two, 2, Some(&cache), &mirror);
    let first = run_json(dir.path(), 2);
    // Three stages after two: the two stages are loaded, the third and the
    // (deeper) baseline computed, and the first two stages' results are the same.
    run(dir.path(), &three, 2, Some(&cache), &mirror);
    let longer = run_json(dir.path(), 2);
    assert_eq!(longer["cache"]["hits"].as_u64(), Some(2), "{longer}");
    assert_eq!(longer["cache"]["misses"].as_u64(), Some(2), "{longer}");
    for i in 0..2 {
        assert_eq!(longer["stages"][i]["cached"], true);
        assert_eq!(longer["stages"][i]["test"], first["stages"][i]["test"]);
    }
    assert_eq!(longer["stages"][2]["cached"], false);

    // A four-stage run killed inside its second stage keeps its first: rerun,
    // it loads that stage and computes the rest.
    let four = dir.path().join("four.toml");
    std::fs::write(
        &four,
        small(4, &[("epochs =", "epochs = 3")]).replace("fig6_small", "fig6_killed"),
    )
    .unwrap();
    let mut child = xtask_run(dir.path(), &mirror)
        .args(["--outputs", "killed", "--cache-dir"])
        .arg(&cache)
        .arg(&four)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let before = stage_entries(&cache);
    let deadline = Instant::now() + Duration::from_secs(300);
    while stage_entries(&cache) < before + 1 && Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed_inside = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(killed_inside, "the run finished before it could be killed");
    let kept = stage_entries(&cache);
    assert_eq!(kept, before + 1, "the killed run's first stage was kept");
    let output = xtask_run(dir.path(), &mirror)
        .args(["--outputs", "killed", "--cache-dir"])
        .arg(&cache)
        .arg(&four)
        .output()
        .unwrap();
    assert!(output.status.success());
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("killed/fig6_killed/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["stages"][0]["cached"], true, "{json}");
    assert_eq!(stage_entries(&cache), before + 4);
}

#[test]
fn stage_one_is_figure5s_convex_run_with_the_same_settings() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let stack = dir.path().join("fig6_small.toml");
    std::fs::write(&stack, small(1, &[])).unwrap();
    let figure5 = dir.path().join("fig5_convex.toml");
    let mut text = edited(
        "fig5_fashion_mnist.toml",
        &[
            ("name =", "name = \"fig5_convex\""),
            (
                "scaling =",
                "scaling = \"unit\"\ntrain_rows = 1500\ntest_rows = 400",
            ),
            ("epochs =", "epochs = 1"),
            ("batch_size =", "batch_size = 250"),
            ("evaluations_per_epoch =", "evaluations_per_epoch = 1"),
        ],
    );
    let methods = text.find("\n[methods]").unwrap() + 1;
    text.truncate(methods);
    text.push_str("[methods]\nconvex_adam = 1e-7\n");
    std::fs::write(&figure5, text).unwrap();
    run(dir.path(), &stack, 2, None, &mirror);
    run(dir.path(), &figure5, 2, None, &mirror);
    let stage = &run_json(dir.path(), 2)["stages"][0];
    let figure5: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("out2/fig5_convex/run.json")).unwrap(),
    )
    .unwrap();
    let method = &figure5["methods"][0];
    assert_eq!(method["method"], "convex_adam");
    assert_eq!(stage["train"], method["train"]);
    assert_eq!(stage["test"], method["test"]);
    assert_eq!(stage["proposition1"], method["proposition1"]);
}

#[test]
fn bad_stacking_manifests_name_the_key_and_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (edits, key, reason) in [
        (
            vec![("stages =", "stages = 0")],
            "stacking.stages",
            "at least 1",
        ),
        (
            vec![("stages =", "stages = 51")],
            "stacking.stages",
            "at most 50",
        ),
        (
            vec![("method =", "method = \"adam\"")],
            "stacking.method",
            "use \"convex_sgd\"",
        ),
        (
            vec![("lr = 1e-7", "lr = \"paper\"")],
            "stacking.lr",
            "the paper gives no rate",
        ),
        (
            vec![("features =", "features = \"pixels\"")],
            "stacking.features",
            "use \"convex\" or \"network\"",
        ),
        (
            vec![("optimizer =", "optimizer = \"adagrad\"")],
            "baseline.optimizer",
            "use \"sgd\" or \"adam\"",
        ),
        (
            vec![("lr = 1e-3", "lr = -1")],
            "baseline.lr",
            "must be a positive finite number",
        ),
        (
            vec![("stages =", "stages = 50"), ("epochs =", "epochs = 1000")],
            "stacking.stages",
            "--override-limits",
        ),
        (
            vec![("K = 40", "K = 4000"), ("epochs =", "epochs = 1")],
            "model.K",
            "GiB",
        ),
    ] {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, edited("fig6_fashion_mnist.toml", &edits)).unwrap();
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
        assert!(!dir.path().join("out/fig6_fashion_mnist").exists());
    }
}
