//! The `xtask` binary as a user runs it.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

mod common;
use common::{mirror, xtask};

const TINY: &str = r#"
name = "tiny"
kind = "convex_vs_nonconvex"
seed = 1

[data]
source = "teacher"
n = 4
d = 2
teacher_k = 2
teacher_m1 = 2
teacher_m2 = 1

[model]
m1 = 2
beta = 0.05

[arrangements]
mode = "exact"

[nonconvex]
optimizer = "adam"
lr = 0.01
epochs = 200
batch_size = 2
runs = 2

[sweep]
K = [3]
"#;

/// `run` with private outputs, cache and lock under `dir`.
fn run_args(dir: &Path) -> Vec<String> {
    [
        "--quiet",
        "--outputs",
        "out",
        "--cache-dir",
        "cache",
        "--lock",
        "results.lock",
    ]
    .iter()
    .map(|a| match *a {
        "out" | "cache" | "results.lock" => dir.join(a).display().to_string(),
        other => other.to_string(),
    })
    .collect()
}

#[test]
fn run_writes_outputs_and_reports_bad_manifests_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tiny.toml");
    std::fs::write(&manifest, TINY).unwrap();
    let status = xtask()
        .arg("run")
        .args(run_args(dir.path()))
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(status.success());
    assert!(dir.path().join("out/tiny/table.md").is_file());

    std::fs::write(
        &manifest,
        TINY.replace("mode = \"exact\"", "mode = \"exact\"\ndraws = 0"),
    )
    .unwrap();
    let output = xtask()
        .arg("run")
        .args(run_args(dir.path()))
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tiny.toml:20:9: arrangements.draws: must be at least 1"),
        "{stderr}"
    );
}

#[test]
fn verify_passes_on_a_fresh_lock_and_names_the_cells_that_moved() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tiny.toml");
    std::fs::write(&manifest, TINY).unwrap();
    let status = xtask()
        .arg("run")
        .args(run_args(dir.path()))
        .arg("--update-lock")
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(status.success());
    let lock_path = dir.path().join("results.lock");
    let verify = |extra: &[&str]| {
        xtask()
            .arg("verify")
            .args(run_args(dir.path()))
            .args(extra)
            .arg(&manifest)
            .output()
            .unwrap()
    };
    let ok = verify(&[]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("tiny: exact hash matches"));
    assert!(verify(&["--rounded"]).status.success());

    // Tamper with one run's recorded objective and hashes.
    let mut lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    let experiment = &mut lock["experiments"]["tiny"];
    experiment["exact"] = "0".repeat(64).into();
    experiment["rows"][1]["exact"] = "0".repeat(64).into();
    experiment["rows"][1]["objective"] = "1.00000e0".into();
    let label = experiment["rows"][1]["label"].as_str().unwrap().to_string();
    std::fs::write(&lock_path, serde_json::to_string_pretty(&lock).unwrap()).unwrap();
    let failed = verify(&[]);
    assert!(!failed.status.success());
    let stdout = String::from_utf8_lossy(&failed.stdout);
    assert!(
        stdout.contains("exact hash differs")
            && stdout.contains(&label)
            && stdout.contains("1.00000e0 →"),
        "{stdout}"
    );
}

/// Kills a run with SIGKILL once some cells are cached, then shows that the
/// rerun completes, reuses the finished cells, and matches an uninterrupted run.
#[test]
fn a_killed_run_loses_nothing_already_computed() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("slow.toml");
    let slow = TINY
        .replace("name = \"tiny\"", "name = \"slow\"")
        .replace("epochs = 200", "epochs = 6000")
        .replace("runs = 2", "runs = 3")
        .replace("K = [3]", "K = [20, 30, 40]");
    std::fs::write(&manifest, slow).unwrap();
    let killed_dir = dir.path().join("killed");
    let mut child = xtask()
        .arg("run")
        .args(run_args(&killed_dir))
        .arg(&manifest)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let entries = killed_dir.join("cache/nonconvex");
    let start = Instant::now();
    let count = |p: &Path| {
        walk(p)
            .into_iter()
            .filter(|f| !f.file_name().unwrap().to_string_lossy().starts_with('.'))
            .count()
    };
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be killed"
        );
        if count(&entries) >= 1 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no cell finished"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let finished = count(&entries);
    assert!(finished < 9, "everything finished before the kill");
    assert!(
        !killed_dir.join("out/slow").exists(),
        "a killed run must not leave an output folder"
    );

    let rerun = xtask()
        .arg("run")
        .arg("--outputs")
        .arg(killed_dir.join("out"))
        .arg("--cache-dir")
        .arg(killed_dir.join("cache"))
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(rerun.status.success());
    let stderr = String::from_utf8_lossy(&rerun.stderr);
    let hits: usize = stderr
        .split(" cache hits")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        hits > finished,
        "rerun reused {hits} entries, expected more than the {finished} finished runs (plus arrangements)"
    );

    let fresh_dir = dir.path().join("fresh");
    assert!(
        xtask()
            .arg("run")
            .args(run_args(&fresh_dir))
            .arg(&manifest)
            .status()
            .unwrap()
            .success()
    );
    let hash = |d: &Path| -> String {
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("out/slow/run.json")).unwrap())
                .unwrap();
        run["result_hash"].as_str().unwrap().to_string()
    };
    assert_eq!(hash(&killed_dir), hash(&fresh_dir));
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                walk(&e.path())
            } else {
                vec![e.path()]
            }
        })
        .collect()
}

#[test]
fn clean_removes_one_stage_and_refuses_unknown_ones() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tiny.toml");
    std::fs::write(&manifest, TINY).unwrap();
    assert!(
        xtask()
            .arg("run")
            .args(run_args(dir.path()))
            .arg(&manifest)
            .status()
            .unwrap()
            .success()
    );
    let cache = dir.path().join("cache");
    assert!(cache.join("nonconvex").is_dir() && cache.join("arrangements").is_dir());
    let clean = |stage: &str| {
        xtask()
            .args(["clean", "--cache-dir"])
            .arg(&cache)
            .args(["--stage", stage])
            .output()
            .unwrap()
    };
    assert!(clean("nonconvex").status.success());
    assert!(!cache.join("nonconvex").exists() && cache.join("arrangements").is_dir());
    let refused = clean("../..");
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown cache stage"));
    assert!(dir.path().join("tiny.toml").is_file());
}

#[test]
fn thread_count_does_not_change_the_exact_hash() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tiny.toml");
    std::fs::write(&manifest, TINY.replace("K = [3]", "K = [3, 4]")).unwrap();
    let hash_with = |threads: &str| -> String {
        let sub = dir.path().join(threads);
        let status = xtask()
            .env("RAYON_NUM_THREADS", threads)
            .arg("run")
            .args(run_args(&sub))
            .arg("--no-cache")
            .arg(&manifest)
            .status()
            .unwrap();
        assert!(status.success());
        let run: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(sub.join("out/tiny/run.json")).unwrap())
                .unwrap();
        assert_eq!(run["threads"].as_u64().unwrap().to_string(), threads);
        run["result_hash"].as_str().unwrap().to_string()
    };
    assert_eq!(hash_with("1"), hash_with("2"));
}

/// CI's reproduction check: regenerate Table 2 and Figure 4 and compare with
/// the committed lock (rounded hashes, which are meant to hold across machines).
#[test]
fn table2_and_fig4_reproduce_the_committed_lock() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = xtask()
        .args(["verify", "--quiet", "--rounded", "--outputs"])
        .arg(dir.path())
        .arg("--lock")
        .arg(root.join("outputs/results.lock"))
        .arg(root.join("experiments/table2.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("table2: rounded hash matches"), "{stdout}");
}

#[test]
fn fetch_verifies_from_a_mirror_and_fails_clearly_offline() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fetch = |args: &[&str]| {
        xtask()
            .arg("fetch")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("PATHREG_MIRROR")
            .output()
            .unwrap()
    };
    let ok = fetch(&[
        "uci:ionosphere",
        "--quiet",
        "--mirror",
        mirror.to_str().unwrap(),
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let again = fetch(&[
        "uci:ionosphere",
        "--quiet",
        "--mirror",
        mirror.to_str().unwrap(),
    ]);
    assert!(again.status.success());
    let offline = fetch(&["cifar10", "--offline", "--quiet"]);
    assert!(!offline.status.success());
    let stderr =
        String::from_utf8_lossy(&offline.stderr) + String::from_utf8_lossy(&offline.stdout);
    assert!(stderr.contains("cifar"), "{stderr}");
}

#[test]
fn experiments_name_pinned_datasets_and_fetch_them_on_first_use() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let fits = dir.path().join("balloons.toml");
    std::fs::write(
        &fits,
        r#"
name = "balloons"
kind = "convex_vs_nonconvex"
seed = 3

[data]
source = "dataset"
name = "uci:balloons"
preprocess = "standardize"

[model]
m1 = 1
beta = 0.1

[arrangements]
mode = "exact"
"#,
    )
    .unwrap();
    let spectrum = dir.path().join("spectra.toml");
    std::fs::write(
        &spectrum,
        "name = \"spectra\"\nkind = \"spectrum\"\n\n[spectrum]\ndatasets = [\"uci:ionosphere\", \"uci:musk-1\"]\n",
    )
    .unwrap();
    let output = xtask()
        .env("PATHREG_MIRROR", &mirror)
        .env("PATHREG_DATA", dir.path().join("data"))
        .arg("run")
        .args(run_args(dir.path()))
        .arg(&fits)
        .arg(&spectrum)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = std::fs::read_to_string(dir.path().join("out/balloons/results.csv")).unwrap();
    assert!(results.contains("certified_global_optimum"), "{results}");
    let spectra = std::fs::read_to_string(dir.path().join("out/spectra/table.md")).unwrap();
    assert!(spectra.contains("| uci:musk-1 | 381 | 166 |"), "{spectra}");
    assert!(dir.path().join("out/spectra/fig7_spectra.svg").is_file());
}

#[test]
fn two_concurrent_runs_of_one_manifest_agree_and_leave_a_valid_cache() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("tiny.toml");
    std::fs::write(&manifest, TINY.replace("K = [3]", "K = [3, 5, 8]")).unwrap();
    let spawn = || {
        xtask()
            .arg("run")
            .args(run_args(dir.path()))
            .arg(&manifest)
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(), spawn());
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let run_json = || -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("out/tiny/run.json")).unwrap(),
        )
        .unwrap()
    };
    let first = run_json();
    // A third run finds every entry valid in the shared cache and the same results.
    let output = xtask()
        .arg("run")
        .args(run_args(dir.path()))
        .arg(&manifest)
        .output()
        .unwrap();
    assert!(output.status.success());
    let again = run_json();
    assert_eq!(again["result_hash"], first["result_hash"]);
    assert_eq!(again["cache"]["corrupt_recomputed"], 0);
    assert_eq!(again["cache"]["misses"], 0);
}

#[test]
fn table3_protocol_runs_on_mirror_datasets() {
    let Some(mirror) = mirror() else {
        eprintln!("note: no dataset mirror at ../shared/datasets; skipping");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // The committed Table 3 manifest, cut to two datasets, one split and
    // short runs: the same code path as `cargo xtask run experiments/table3.toml`.
    let full = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/table3.toml"),
    )
    .unwrap();
    let start = full.find("datasets = [").unwrap();
    let end = start + full[start..].find(']').unwrap() + 1;
    let reference = full.find("[reference]").unwrap();
    let manifest = format!(
        "{}datasets = [\"uci:acute-inflammation\", \"uci:fertility\"]{}",
        &full[..start],
        &full[end..reference]
    )
    .lines()
    .map(|line| {
        if line.starts_with("split_seeds = ") {
            "split_seeds = [0]"
        } else {
            line
        }
    })
    .collect::<Vec<_>>()
    .join("\n")
    .replace("epochs = 100", "epochs = 20")
    .replace("search_epochs = 30", "search_epochs = 5");
    let path = dir.path().join("table3.toml");
    std::fs::write(&path, manifest).unwrap();
    let output = xtask()
        .env("PATHREG_MIRROR", &mirror)
        .env("PATHREG_DATA", dir.path().join("data"))
        .arg("run")
        .args(run_args(dir.path()))
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results = std::fs::read_to_string(dir.path().join("out/table3/results.csv")).unwrap();
    let mut lines = results.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 8, "2 datasets × 2 optimizers × 2 models");
    for row in &rows {
        let test: f64 = row[column("test_accuracy")].parse().unwrap();
        let floor = if row[column("dataset")] == "uci:acute-inflammation" {
            1.0
        } else {
            0.6
        };
        assert!(test >= floor, "{row:?}");
        assert_eq!(row[column("diverged")], "false", "{row:?}");
        if row[column("model")] == "convex" {
            let agreement: f64 = row[column("mapped_test_agreement")].parse().unwrap();
            assert!(agreement >= 0.9, "{row:?}");
        }
    }
    // acute-inflammation is separable: every model stops at training accuracy 1.
    assert!(
        rows.iter()
            .filter(|r| r[column("dataset")] == "uci:acute-inflammation")
            .all(|r| r[column("reached_full_accuracy")] == "true")
    );
    let table = std::fs::read_to_string(dir.path().join("out/table3/table.md")).unwrap();
    assert!(
        table.contains("| acute-inflammation | 120 | 6 |"),
        "{table}"
    );
}

/// `cargo xtask fuzz` at its CI size: 20 000 mutated inputs over every
/// parser (real seed files from the mirror when present), no failure.
#[test]
fn fuzz_twenty_thousand_inputs_find_no_failure() {
    let mut command = xtask();
    command.args(["fuzz", "--iterations", "20000", "--seed", "1"]);
    if let Some(mirror) = mirror() {
        command.arg("--mirror").arg(mirror);
    }
    let output = command.stderr(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    for target in [
        "experiment-manifest",
        "dataset-manifest",
        "csv",
        "uci",
        "idx",
        "idx-gz",
        "cifar",
        "cifar-tar",
        "archive",
        "cache",
        "lock",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{target} "))),
            "{target} did not run:\n{stdout}"
        );
    }
    let total = stdout.lines().find(|l| l.starts_with("total")).unwrap();
    assert_eq!(total.split_whitespace().nth(1), Some("20000"), "{stdout}");
    assert!(stdout.contains("no failures"), "{stdout}");
}
