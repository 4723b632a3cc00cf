//! `kind = "classification"` (Table 3's protocol) end to end on a user CSV:
//! manifest validation, one-versus-rest on three classes, the written
//! outputs, determinism across thread counts and the cell cache.

use std::path::{Path, PathBuf};

use pathreg_core::network::standard_normal;
mod common;

use pathreg_pipeline::{RunSummary, load_manifest};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Three Gaussian blobs in the plane (well separated), labels 0, 1, 2.
fn blobs_csv() -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let centers = [(-3.0, 0.0), (3.0, 0.0), (0.0, 4.0)];
    let mut csv = String::from("x1,x2,label\n");
    for i in 0..90 {
        let class = i % 3;
        let (cx, cy) = centers[class];
        let x1 = cx + 0.6 * standard_normal(&mut rng);
        let x2 = cy + 0.6 * standard_normal(&mut rng);
        csv.push_str(&format!("{x1},{x2},{class}\n"));
    }
    csv
}

const BLOBS: &str = r#"
name = "blobs"
kind = "classification"
seed = 4

[data]
datasets = ["csv:blobs.csv"]
split_seeds = [0, 1]
preprocess = "standardize"

[model]
K = 8
m1 = 8
m2 = 1
beta = 0.01

[training]
epochs = 60
search_epochs = 15
batch_size = 16
lambda = 1.0

[optimizers.sgd]
nonconvex_lr = [0.01, 0.05]
convex_lr = [0.05, 0.2]

[optimizers.adam]
nonconvex_lr = [0.01]
convex_lr = [0.001, 0.01]
"#;

fn setup(manifest: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blobs.csv"), blobs_csv()).unwrap();
    let path = dir.path().join("blobs.toml");
    std::fs::write(&path, manifest).unwrap();
    (dir, path)
}

fn run(
    path: &Path,
    outputs: &Path,
    cache: Option<PathBuf>,
    threads: usize,
) -> Result<RunSummary, pathreg_pipeline::PipelineError> {
    common::run_on(path, outputs, cache, threads)
}

#[test]
fn three_classes_one_versus_rest_outputs_determinism_and_cache() {
    let (dir, path) = setup(BLOBS);
    let cache = dir.path().join("cache");
    let one = run(&path, &dir.path().join("out1"), Some(cache.clone()), 1).unwrap();
    // 1 dataset × 2 splits × 2 optimizers × 2 models.
    assert_eq!(one.cells, 8);
    assert_eq!(one.cache_misses, 8);
    let out = dir.path().join("out1/blobs");
    for file in [
        "results.csv",
        "results.parquet",
        "search.csv",
        "table.md",
        "run.json",
        "test_accuracy.svg",
        "test_accuracy.png",
    ] {
        assert!(out.join(file).is_file(), "missing {file}");
    }
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = results.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 8);
    for row in &rows {
        assert_eq!(row[column("classes")], "3");
        let test: f64 = row[column("test_accuracy")].parse().unwrap();
        let train: f64 = row[column("train_accuracy")].parse().unwrap();
        assert!(
            test >= 0.8 && train >= 0.9,
            "{} {}: train {train}, test {test}",
            row[column("optimizer")],
            row[column("model")]
        );
        if row[column("model")] == "convex" {
            let agreement: f64 = row[column("mapped_test_agreement")].parse().unwrap();
            assert!(
                agreement >= 0.8,
                "Proposition 1 network agrees on {agreement}"
            );
        }
    }
    let search = std::fs::read_to_string(out.join("search.csv")).unwrap();
    // Per split: sgd 2 + 2 rates, adam 1 + 2 rates; one chosen per cell.
    assert_eq!(search.lines().count() - 1, 2 * (4 + 3));
    assert_eq!(search.matches(",true\n").count(), 8, "{search}");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("| blobs.csv |") || table.contains("| csv:blobs.csv |"),
        "{table}"
    );
    assert!(table.contains("Convex higher or equal"), "{table}");
    assert!(table.contains("one versus rest"), "{table}");
    // The paired comparison: convex minus non-convex per split, recomputed here.
    for (optimizer, title) in [("sgd", "SGD"), ("adam", "Adam")] {
        let accuracy = |model: &str, split: &str| -> f64 {
            rows.iter()
                .find(|r| {
                    r[column("optimizer")] == optimizer
                        && r[column("model")] == model
                        && r[column("split_seed")] == split
                })
                .map(|r| r[column("test_accuracy")].parse().unwrap())
                .unwrap()
        };
        let mean = ["0", "1"]
            .iter()
            .map(|split| accuracy("convex", split) - accuracy("nonconvex", split))
            .sum::<f64>()
            / 2.0;
        let row = format!("| {title} | 2 | {mean:+.3} |");
        assert!(table.contains(&row), "{row} not in\n{table}");
    }
    assert!(
        table.contains("smallest possible p-value is 0.500"),
        "{table}"
    );

    // Another thread count, no cache: the same exact hash.
    let two = run(&path, &dir.path().join("out2"), None, 2).unwrap();
    assert_eq!(one.result_hash, two.result_hash);
    // A rerun finds every cell in the cache.
    let again = run(&path, &dir.path().join("out1"), Some(cache), 2).unwrap();
    assert_eq!(again.cache_hits, 8);
    assert_eq!(again.cache_misses, 0);
    assert_eq!(again.result_hash, one.result_hash);
}

/// The test accuracy column of results.csv, keyed by (split, training seed,
/// optimizer, model).
fn accuracies(results: &str) -> Vec<((String, String, String, String), f64)> {
    let mut lines = results.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| {
            let r: Vec<&str> = l.split(',').collect();
            let key = ["split_seed", "training_seed", "optimizer", "model"]
                .map(|c| r[column(c)].to_string());
            (key.into(), r[column("test_accuracy")].parse().unwrap())
        })
        .collect()
}

#[test]
fn a_moved_and_renamed_csv_gives_identical_hashes_and_training_seeds_are_replicates() {
    let (dir, path) = setup(BLOBS);
    let cache = dir.path().join("cache");
    let first = run(&path, &dir.path().join("out1"), Some(cache.clone()), 2).unwrap();

    // The same file under another name in another folder: every seed derives
    // from the content, so the results are bit-identical and cached.
    std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
    std::fs::rename(
        dir.path().join("blobs.csv"),
        dir.path().join("elsewhere/renamed.csv"),
    )
    .unwrap();
    let moved = dir.path().join("moved.toml");
    std::fs::write(
        &moved,
        BLOBS.replace("csv:blobs.csv", "csv:elsewhere/renamed.csv"),
    )
    .unwrap();
    let fresh = run(&moved, &dir.path().join("out2"), None, 1).unwrap();
    assert_eq!(fresh.result_hash, first.result_hash);
    let cached = run(&moved, &dir.path().join("out3"), Some(cache.clone()), 2).unwrap();
    assert_eq!((cached.cache_hits, cached.cache_misses), (8, 0));
    let table = std::fs::read_to_string(dir.path().join("out3/blobs/table.md")).unwrap();
    assert!(table.contains("elsewhere/renamed.csv"), "{table}");

    // Other content under the old name: other results.
    let mut csv = std::fs::read_to_string(dir.path().join("elsewhere/renamed.csv")).unwrap();
    csv.push_str("0.0,4.5,2\n");
    std::fs::write(dir.path().join("elsewhere/renamed.csv"), csv).unwrap();
    let changed = run(&moved, &dir.path().join("out4"), None, 2).unwrap();
    assert_ne!(changed.result_hash, first.result_hash);

    // Two training seeds: twice the cells; seed 0's cells are the cells
    // computed before (found in the cache), seed 1's are new draws, and the
    // paired difference of a split is the mean over its two trainings.
    std::fs::write(dir.path().join("blobs.csv"), blobs_csv()).unwrap();
    let replicated = dir.path().join("replicated.toml");
    std::fs::write(
        &replicated,
        BLOBS.replace(
            "split_seeds = [0, 1]",
            "split_seeds = [0, 1]\ntraining_seeds = [0, 1]",
        ),
    )
    .unwrap();
    let both = run(&replicated, &dir.path().join("out5"), Some(cache), 2).unwrap();
    assert_eq!((both.cells, both.cache_hits), (16, 8));
    let results = std::fs::read_to_string(dir.path().join("out5/blobs/results.csv")).unwrap();
    let acc = accuracies(&results);
    assert_eq!(acc.len(), 16);
    let get = |split: &str, training: &str, optimizer: &str, model: &str| {
        acc.iter()
            .find(|(k, _)| {
                k == &(
                    split.into(),
                    training.into(),
                    optimizer.into(),
                    model.into(),
                )
            })
            .map(|(_, a)| *a)
            .unwrap()
    };
    let table = std::fs::read_to_string(dir.path().join("out5/blobs/table.md")).unwrap();
    assert!(table.contains("mean over its 2 training seeds"), "{table}");
    for (optimizer, title) in [("sgd", "SGD"), ("adam", "Adam")] {
        let split_difference = |split: &str| {
            ["0", "1"]
                .iter()
                .map(|t| get(split, t, optimizer, "convex") - get(split, t, optimizer, "nonconvex"))
                .sum::<f64>()
                / 2.0
        };
        let mean = (split_difference("0") + split_difference("1")) / 2.0;
        let row = format!("| {title} | 2 | {mean:+.3} |");
        assert!(table.contains(&row), "{row} not in\n{table}");
    }
}

#[test]
fn the_constrained_program_is_solved_certified_and_compared() {
    let manifest = format!(
        "{BLOBS}\n[constrained]\nmethod = \"admm\"\ntol_gap = 1e-3\nmax_iterations = 20000\n"
    );
    let (dir, path) = setup(&manifest);
    let summary = run(&path, &dir.path().join("out"), None, 2).unwrap();
    // 8 cells of (11) and the non-convex network, one (21) cell per split.
    assert_eq!(summary.cells, 10);
    let out = dir.path().join("out/blobs");
    let csv = std::fs::read_to_string(out.join("constrained.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let value = |name: &str| -> f64 { row[column(name)].parse().unwrap() };
        assert_eq!(row[column("converged")], "true", "{csv}");
        assert!(
            value("relative_gap") <= 1e-3 && value("violation_relative") <= 1e-6,
            "{csv}"
        );
        // The certificate: the lower bound is below the feasible objective,
        // within the reported gap.
        let (objective, bound) = (value("objective"), value("lower_bound"));
        assert!(
            bound <= objective && objective - bound <= 1e-3 * objective * 3.0,
            "{csv}"
        );
        // One versus rest over three classes: three binary models, each
        // with 2K groups of which some are exactly zero.
        assert_eq!(value("total_groups"), 48.0);
        assert!(value("active_groups") < 48.0, "{csv}");
        assert!(
            value("test_accuracy") >= 0.8 && value("mapped_test_agreement") >= 0.9,
            "{csv}"
        );
    }
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(
        table.contains("## The constrained program (21) by ADMM"),
        "{table}"
    );
    assert!(
        table.contains("(21) against the non-convex network trained by SGD"),
        "{table}"
    );
    assert!(
        table.contains("2 of 2 solves met both tolerances"),
        "{table}"
    );
    // The other cells are those of the manifest without [constrained].
    let (plain_dir, plain) = setup(BLOBS);
    let without = run(&plain, &plain_dir.path().join("out"), None, 2).unwrap();
    let results = |root: &Path| std::fs::read_to_string(root.join("blobs/results.csv")).unwrap();
    // Every column but the two timings.
    let strip_times = |text: String| -> Vec<String> {
        let header: Vec<String> = text
            .lines()
            .next()
            .unwrap()
            .split(',')
            .map(String::from)
            .collect();
        text.lines()
            .map(|l| {
                l.split(',')
                    .zip(&header)
                    .filter(|(_, h)| !h.ends_with("time_s"))
                    .map(|(f, _)| f)
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect()
    };
    assert_eq!(without.cells, 8);
    assert_eq!(
        strip_times(results(&dir.path().join("out"))),
        strip_times(results(&plain_dir.path().join("out")))
    );
}

/// With one split there is no spread and no standard error: the table says
/// so instead of printing `± 0.000` and listing every dataset as imprecise
/// with an infinite standard error.
#[test]
fn one_split_reports_no_spread_and_no_standard_error() {
    let (dir, path) = setup(&format!(
        "{}\n[constrained]\nmethod = \"admm\"\ntol_gap = 1e-3\nmax_iterations = 20000\n",
        BLOBS.replace("split_seeds = [0, 1]", "split_seeds = [0]")
    ));
    let out = dir.path().join("out");
    run(&path, &out, None, 2).unwrap();
    let table = std::fs::read_to_string(out.join("blobs/table.md")).unwrap();
    assert!(
        table.contains("Test accuracy: of the one replicate"),
        "{table}"
    );
    assert!(
        table.contains("With one split per dataset the standard error is undefined"),
        "{table}"
    );
    assert!(!table.contains("inf splits"), "{table}");
    let constrained = &table[table.find("## The constrained program").unwrap()..];
    assert!(!constrained.contains('±'), "{constrained}");
}

/// `(converged, iterations, objective)` of each (21) solve in a run of
/// `manifest`.
fn constrained_solves(manifest: &str) -> Vec<(bool, usize, f64)> {
    let (dir, path) = setup(manifest);
    run(&path, &dir.path().join("out"), None, 2).unwrap();
    let csv = std::fs::read_to_string(dir.path().join("out/blobs/constrained.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|line| {
            let row: Vec<&str> = line.split(',').collect();
            (
                row[column("converged")] == "true",
                row[column("iterations")].parse().unwrap(),
                row[column("objective")].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_newton_polish_is_set_from_the_manifest() {
    let constrained = format!(
        "{BLOBS}\n[constrained]\nmethod = \"admm\"\ntol_gap = 1e-4\nmax_iterations = 20000\n"
    );
    let plain = constrained_solves(&constrained);
    let polished = constrained_solves(&format!("{constrained}polish_from = 100\n"));
    assert_eq!(plain.len(), 2);
    // Plain ADMM stops at the cap above the 1e-4 gap on both solves; with
    // the polish one meets it sooner, and where both run to the cap the
    // polished objective is lower (the polish is kept only when better).
    let converged = |solves: &[(bool, usize, f64)]| solves.iter().filter(|s| s.0).count();
    assert!(
        converged(&polished) > converged(&plain),
        "{plain:?} {polished:?}"
    );
    for (without, with) in plain.iter().zip(&polished) {
        assert!(with.1 <= without.1, "{without:?} {with:?}");
        if with.1 == without.1 {
            assert!(with.2 <= without.2, "{without:?} {with:?}");
        }
    }
}

#[test]
fn bad_classification_manifests_name_the_key_and_line() {
    let cases = [
        (
            BLOBS.replace("[optimizers.adam]", "[optimizers.rmsprop]"),
            "optimizers.rmsprop",
            "unknown optimizer",
        ),
        (
            BLOBS.replace("convex_lr = [0.05, 0.2]", "convex_lr = [0.05, -1.0]"),
            "optimizers.sgd.convex_lr",
            "positive",
        ),
        (
            BLOBS.replace("search_epochs = 15", "search_epochs = 100"),
            "training.search_epochs",
            "must not exceed",
        ),
        (
            BLOBS.replace("csv:blobs.csv", "csv:missing.csv"),
            "data.datasets",
            "no file",
        ),
        (
            BLOBS.replace("\"csv:blobs.csv\"]", "\"uci:no-such-set\"]"),
            "data.datasets",
            "unknown dataset",
        ),
        (
            BLOBS.replace("split_seeds = [0, 1]", "split_seeds = [1, 1]"),
            "data.split_seeds",
            "twice",
        ),
        (
            format!(
                "{BLOBS}\n[reference]\nsource = \"x\"\n[reference.test_accuracy]\n\"csv:blobs.csv\" = [1.0, 0.9]\n"
            ),
            "reference.test_accuracy.csv:blobs.csv",
            "needs 4 values",
        ),
        (BLOBS.replace("m1 = 8", "m1 = 0"), "model.m1", "at least 1"),
        (
            format!("{BLOBS}\n[constrained]\nmethod = \"al\"\n"),
            "constrained.method",
            "admm",
        ),
        (
            format!("{BLOBS}\n[constrained]\nmethod = \"admm\"\nmax_iterations = 0\n"),
            "constrained.max_iterations",
            "at least 1",
        ),
        (
            format!("{BLOBS}\n[constrained]\nmethod = \"admm\"\npolish_from = 15\n"),
            "constrained.polish_from",
            "multiple of 10",
        ),
        (
            format!("{BLOBS}\n[constrained]\nmethod = \"admm\"\nprecision = \"float16\"\n"),
            "constrained.precision",
            "\"float64\" or \"float32\"",
        ),
        (
            format!(
                "{}\n[constrained]\nmethod = \"admm\"\n",
                BLOBS.replace("beta = 0.01", "beta = 0.01\nloss = \"hinge\"")
            ),
            "constrained",
            "squared loss only",
        ),
        (
            BLOBS.replace(
                "split_seeds = [0, 1]",
                "split_seeds = [0, 1]\ntraining_seeds = []",
            ),
            "data.training_seeds",
            "at least one seed",
        ),
        (
            BLOBS.replace(
                "split_seeds = [0, 1]",
                "split_seeds = [0, 1]\ntraining_seeds = [3, 3]",
            ),
            "data.training_seeds",
            "twice",
        ),
    ];
    for (text, key, reason) in cases {
        let (_dir, path) = setup(&text);
        let err = load_manifest(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(key) && err.contains(reason) && err.contains("blobs.toml:"),
            "expected {key}: {reason}, got {err}"
        );
    }
}

#[test]
fn real_valued_labels_are_refused_with_the_dataset_named() {
    let (dir, path) = setup(BLOBS);
    let mut csv = String::from("a,b,y\n");
    for i in 0..80 {
        csv.push_str(&format!("{},{},{}\n", i, i * 2, i as f64 * 0.37));
    }
    std::fs::write(dir.path().join("blobs.csv"), csv).unwrap();
    let err = run(&path, &dir.path().join("out"), None, 1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("blobs.csv") && err.contains("class labels"),
        "{err}"
    );
    assert!(!dir.path().join("out/blobs").exists());
}
