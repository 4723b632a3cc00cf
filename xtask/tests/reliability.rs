//! Issue #11's faults, each as a user would meet it: a cache entry at another
//! key's path, `clean` pointed at a user's folder, stale staging folders, an
//! edited lock, clashing or blocked output folders, and a failed run's lock
//! file. Each test fails without its fix.

use std::path::{Path, PathBuf};
use std::process::Output;

mod common;
use common::xtask;

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
epochs = 50
batch_size = 2
runs = 2

[sweep]
K = [3]
"#;

/// A scratch folder with the tiny manifest, private outputs, cache and lock.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tiny.toml"), TINY).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn xtask(&self, command: &str, extra: &[&str]) -> Output {
        let mut c = xtask();
        c.arg(command).args([
            "--quiet",
            "--outputs",
            self.path("out").to_str().unwrap(),
            "--cache-dir",
            self.path("cache").to_str().unwrap(),
            "--lock",
            self.path("results.lock").to_str().unwrap(),
        ]);
        c.args(extra).output().unwrap()
    }

    fn run(&self, extra: &[&str]) -> Output {
        self.xtask("run", extra)
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_dir() {
            found.extend(entries(&e.path()));
        } else {
            found.push(e.path());
        }
    }
    found
}

#[test]
fn a_nonconvex_entry_copied_over_the_convex_one_is_recomputed_not_reported() {
    let s = Scratch::new();
    let manifest = s.path("tiny.toml");
    let first = s.run(&[manifest.to_str().unwrap()]);
    assert!(first.status.success(), "{}", text(&first));
    let results = std::fs::read_to_string(s.path("out/tiny/results.csv")).unwrap();
    let cache = s.path("cache");
    let convex = entries(&cache.join("convex"));
    let nonconvex = entries(&cache.join("nonconvex"));
    assert_eq!(convex.len(), 1);
    std::fs::copy(&nonconvex[0], &convex[0]).unwrap();
    let again = s.run(&[manifest.to_str().unwrap()]);
    assert!(again.status.success(), "{}", text(&again));
    assert!(
        text(&again).contains("not to this key; recomputing it"),
        "{}",
        text(&again)
    );
    let rerun = std::fs::read_to_string(s.path("out/tiny/results.csv")).unwrap();
    let strip = |csv: &str| -> Vec<String> {
        // Drop the timing and cache columns: the rows must be the same fits.
        csv.lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                format!("{} {} {} {}", f[0], f[4], f[5], f[8])
            })
            .collect()
    };
    assert_eq!(strip(&results), strip(&rerun));
    assert!(rerun.contains("certified_global_optimum"));
}

#[test]
fn clean_refuses_a_folder_that_is_not_a_cache_and_reports_what_it_removed() {
    let s = Scratch::new();
    let precious = s.path("precious");
    std::fs::create_dir_all(precious.join("convex")).unwrap();
    std::fs::write(precious.join("convex/thesis.tex"), "years of work").unwrap();
    let refused = xtask()
        .args(["clean", "--cache-dir", precious.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("not a pathreg cache"),
        "{}",
        text(&refused)
    );
    let refused = xtask()
        .args(["clean", "--stage", "convex", "--cache-dir"])
        .arg(&precious)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(precious.join("convex/thesis.tex").is_file());

    assert!(
        s.run(&[s.path("tiny.toml").to_str().unwrap()])
            .status
            .success()
    );
    let cache = s.path("cache");
    std::fs::write(cache.join("nonconvex/mine.txt"), "keep").unwrap();
    let cleaned = xtask()
        .args(["clean", "--cache-dir", cache.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(cleaned.status.success(), "{}", text(&cleaned));
    let said = text(&cleaned);
    assert!(said.contains("removed 4 cache files"), "{said}");
    assert!(said.contains("left 1 file"), "{said}");
    assert!(cache.join("nonconvex/mine.txt").is_file());
}

#[test]
fn a_stale_staging_folder_of_a_dead_process_is_removed_by_the_next_run() {
    let s = Scratch::new();
    let out = s.path("out");
    std::fs::create_dir_all(&out).unwrap();
    // A pid far above any live one (pid_max is at most 2^22).
    let stale = out.join(".tiny.staging-4194999");
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("results.csv"), "half").unwrap();
    let other = out.join(".other.staging-4194999");
    std::fs::create_dir_all(&other).unwrap();
    assert!(
        s.run(&[s.path("tiny.toml").to_str().unwrap()])
            .status
            .success()
    );
    assert!(!stale.exists());
    assert!(
        other.exists(),
        "only this experiment's staging folders are touched"
    );
    assert!(
        !out.join(".tiny.lock").exists(),
        "the run lock file is removed"
    );
}

#[test]
fn verify_checks_every_row_and_the_row_count() {
    let s = Scratch::new();
    let manifest = s.path("tiny.toml");
    let m = manifest.to_str().unwrap();
    let missing = s.xtask("verify", &[m]);
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("no lock file"),
        "{}",
        text(&missing)
    );
    assert!(s.run(&["--update-lock", m]).status.success());
    let lock_path = s.path("results.lock");
    let original = std::fs::read_to_string(&lock_path).unwrap();
    assert!(s.xtask("verify", &[m]).status.success());

    // One row's exact hash edited, the experiment hash left alone.
    let mut lock: serde_json::Value = serde_json::from_str(&original).unwrap();
    lock["experiments"]["tiny"]["rows"][0]["exact"] = "f".repeat(64).into();
    std::fs::write(&lock_path, lock.to_string()).unwrap();
    let edited = s.xtask("verify", &[m]);
    assert!(!edited.status.success(), "{}", text(&edited));
    assert!(
        text(&edited).contains("the lock was edited"),
        "{}",
        text(&edited)
    );

    // Half of the rows deleted.
    let mut lock: serde_json::Value = serde_json::from_str(&original).unwrap();
    let rows = lock["experiments"]["tiny"]["rows"].as_array_mut().unwrap();
    let keep = rows.len() / 2;
    rows.truncate(keep);
    std::fs::write(&lock_path, lock.to_string()).unwrap();
    let halved = s.xtask("verify", &[m]);
    assert!(!halved.status.success());
    assert!(
        text(&halved).contains(&format!("the lock records {keep} rows")),
        "{}",
        text(&halved)
    );

    // A damaged lock does not stop a run that does not update it.
    std::fs::write(&lock_path, "{ not json").unwrap();
    let run = s.run(&[m]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("warning"), "{}", text(&run));
}

#[test]
fn outputs_are_checked_before_any_work() {
    let s = Scratch::new();
    let tiny = s.path("tiny.toml");
    let twin = s.path("twin.toml");
    std::fs::write(&twin, TINY.replace("seed = 1", "seed = 2")).unwrap();
    let clash = s.run(&[tiny.to_str().unwrap(), twin.to_str().unwrap()]);
    assert!(!clash.status.success());
    assert!(
        text(&clash).contains("both have name = \"tiny\""),
        "{}",
        text(&clash)
    );
    assert!(!s.path("cache").exists(), "nothing ran");

    let broken = s.path("broken.toml");
    std::fs::write(
        &broken,
        TINY.replace("name = \"tiny\"", "name = \"broken\"")
            .replace("m1 = 2\nbeta", "m1 = 0\nbeta"),
    )
    .unwrap();
    let invalid_second = s.run(&[tiny.to_str().unwrap(), broken.to_str().unwrap()]);
    assert!(!invalid_second.status.success());
    assert!(
        text(&invalid_second).contains("model.m1"),
        "{}",
        text(&invalid_second)
    );
    assert!(
        !s.path("out/tiny").exists(),
        "the first manifest did not run"
    );

    std::fs::create_dir_all(s.path("out")).unwrap();
    std::fs::write(s.path("out/tiny"), "a user's file").unwrap();
    let blocked = s.run(&[tiny.to_str().unwrap()]);
    assert!(!blocked.status.success());
    assert!(
        text(&blocked).contains("is not a folder"),
        "{}",
        text(&blocked)
    );
    assert_eq!(
        std::fs::read_to_string(s.path("out/tiny")).unwrap(),
        "a user's file"
    );
    assert!(!s.path("cache").exists(), "refused before any work");

    std::fs::remove_file(s.path("out/tiny")).unwrap();
    let failing = s.path("failing.toml");
    std::fs::write(
        &failing,
        TINY.replace("name = \"tiny\"", "name = \"failing\"")
            .replace(
                "source = \"teacher\"\nn = 4\nd = 2\nteacher_k = 2\nteacher_m1 = 2\nteacher_m2 = 1",
                "source = \"csv\"\npath = \"nowhere.csv\"",
            ),
    )
    .unwrap();
    assert!(!s.run(&[failing.to_str().unwrap()]).status.success());
    assert!(
        !s.path("out/.failing.lock").exists(),
        "a failed run leaves no lock file"
    );
}

#[test]
fn manifest_type_errors_name_the_key_and_the_path_once() {
    let s = Scratch::new();
    let bad = s.path("bad.toml");
    std::fs::write(&bad, TINY.replace("m1 = 2\nbeta", "m1 = \"two\"\nbeta")).unwrap();
    let out = s.run(&[bad.to_str().unwrap()]);
    let said = text(&out);
    assert!(said.contains("model.m1: invalid type"), "{said}");
    assert_eq!(said.matches(bad.to_str().unwrap()).count(), 1, "{said}");
}

#[test]
fn sizes_beyond_the_limits_are_refused_before_any_work_with_key_estimate_and_limit() {
    let s = Scratch::new();
    let base = TINY.replace("[nonconvex]", "[other]");
    let base = &base[..base.find("[other]").unwrap()];
    let cases: [(String, &str, &str); 6] = [
        (
            base.replace("beta = 0.05", "beta = 1e-300"),
            "model.beta",
            "below 1e-12",
        ),
        (
            base.replace("m1 = 2\nbeta", "m1 = 2\nm2 = 1000000000\nbeta"),
            "model.m1, model.m2",
            "over the limit",
        ),
        (
            base.replace("teacher_m1 = 2", "teacher_m1 = 1000000000"),
            "data.teacher_m1",
            "over the limit",
        ),
        (
            base.replace("n = 4", "n = 1000000000"),
            "data.n",
            "over the limit",
        ),
        (
            base.replace("n = 4", "n = 30"),
            "arrangements.mode",
            "MAX_EXACT_WORK",
        ),
        (
            format!(
                "{base}[nonconvex]\noptimizer = \"sgd\"\nlr = 0.1\nepochs = 10\nbatch_size = 2\nruns = 1000000000\n\n[sweep]\nK = [2]\n"
            ),
            "nonconvex.runs",
            "cells, over the limit",
        ),
    ];
    for (manifest, key, reason) in cases {
        let path = s.path("big.toml");
        std::fs::write(&path, manifest).unwrap();
        let start = std::time::Instant::now();
        let out = s.run(&[path.to_str().unwrap()]);
        let said = text(&out);
        assert!(!out.status.success(), "{said}");
        assert!(
            said.contains(key) && said.contains(reason) && said.contains("--override-limits"),
            "{key}: {said}"
        );
        assert!(
            start.elapsed().as_secs() < 10,
            "{key} took {:?}",
            start.elapsed()
        );
        assert!(!s.path("cache").exists(), "refused before any work");
    }
    // The override lets a refused β through to the solver, which then fails loudly or runs.
    let path = s.path("tiny-beta.toml");
    std::fs::write(&path, base.replace("beta = 0.05", "beta = 1e-13")).unwrap();
    let refused = s.run(&[path.to_str().unwrap()]);
    assert!(!refused.status.success());
    let overridden = s.run(&["--override-limits", path.to_str().unwrap()]);
    assert!(
        !text(&overridden).contains("--override-limits"),
        "{}",
        text(&overridden)
    );
}

#[test]
fn a_csv_path_that_is_not_a_regular_file_is_refused() {
    let s = Scratch::new();
    let path = s.path("zero.toml");
    let base = TINY.replace("[nonconvex]", "[other]");
    let base = &base[..base.find("[other]").unwrap()];
    std::fs::write(
        &path,
        base.replace(
            "source = \"teacher\"\nn = 4\nd = 2\nteacher_k = 2\nteacher_m1 = 2\nteacher_m2 = 1",
            "source = \"csv\"\npath = \"/dev/zero\"",
        ),
    )
    .unwrap();
    let out = s.run(&[path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
}

#[test]
fn a_sweep_of_billions_of_points_is_refused_before_it_is_expanded() {
    let s = Scratch::new();
    let list = (1..=200)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let manifest = TINY.replace(
        "K = [3]",
        &format!(
            "K = [{list}]\n\"nonconvex.epochs\" = [{list}]\n\"nonconvex.runs\" = [{list}]\n\"arrangements.draws\" = [{list}]"
        ),
    );
    let path = s.path("huge.toml");
    std::fs::write(&path, manifest).unwrap();
    for extra in [&[][..], &["--override-limits"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.push(path.to_str().unwrap());
        let out = s.run(&args);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains("sweep: the sweep has 1600000000 points"),
            "{said}"
        );
    }
}

#[test]
fn draws_epochs_and_wide_networks_are_bounded_before_any_work() {
    let s = Scratch::new();
    let cases = [
        (
            TINY.replace(
                "mode = \"exact\"",
                "mode = \"sampled\"\ndraws = 1000000000000",
            ),
            "arrangements.draws",
        ),
        (
            TINY.replace("epochs = 50", "epochs = 1000000000000"),
            "nonconvex.epochs",
        ),
        (
            TINY.replace("m1 = 2\nbeta", "m1 = 2\nm2 = 10000000\nbeta"),
            "model.m1, model.m2",
        ),
    ];
    for (manifest, key) in cases {
        let path = s.path("big.toml");
        std::fs::write(&path, manifest).unwrap();
        let out = s.run(&[path.to_str().unwrap()]);
        let said = text(&out);
        assert_eq!(out.status.code(), Some(1), "{said}");
        assert!(
            said.contains(key) && said.contains("over the limit"),
            "{key}: {said}"
        );
        assert!(!s.path("cache").exists(), "refused before any work");
    }
}

#[test]
fn a_user_folder_in_the_way_of_the_outputs_is_never_replaced() {
    let s = Scratch::new();
    let tiny = s.path("tiny.toml");
    let out = s.path("out");
    std::fs::create_dir_all(out.join("tiny")).unwrap();
    std::fs::write(out.join("tiny/thesis.tex"), "years of work").unwrap();
    std::fs::create_dir_all(out.join("tiny.previous")).unwrap();
    std::fs::write(out.join("tiny.previous/notes.txt"), "keep").unwrap();
    let refused = s.run(&[tiny.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("pathreg did not write"),
        "{}",
        text(&refused)
    );
    assert!(out.join("tiny/thesis.tex").is_file());
    std::fs::remove_dir_all(out.join("tiny")).unwrap();
    assert!(s.run(&[tiny.to_str().unwrap()]).status.success());
    assert!(
        s.run(&[tiny.to_str().unwrap()]).status.success(),
        "its own folder is replaced"
    );
    assert!(
        out.join("tiny.previous/notes.txt").is_file(),
        "the swap never meets a user's folder"
    );
    let twice = s.run(&[tiny.to_str().unwrap(), tiny.to_str().unwrap()]);
    assert!(text(&twice).contains("is listed twice"), "{}", text(&twice));
}

#[test]
fn the_lock_must_be_a_regular_file_and_record_this_versions_rounding() {
    let s = Scratch::new();
    let tiny = s.path("tiny.toml");
    let m = tiny.to_str().unwrap();
    assert!(s.run(&["--update-lock", m]).status.success());
    let lock_path = s.path("results.lock");
    let mut lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&lock_path).unwrap()).unwrap();
    lock["experiments"]["tiny"]["rounded_digits"] = 3.into();
    std::fs::write(&lock_path, lock.to_string()).unwrap();
    let out = s.xtask("verify", &["--rounded", m]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("at 3 significant digits"),
        "{}",
        text(&out)
    );
    std::fs::remove_file(&lock_path).unwrap();
    std::fs::create_dir(&lock_path).unwrap();
    let out = s.xtask("verify", &[m]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not a regular file"), "{}", text(&out));
}

#[test]
fn list_and_fetch_leave_no_stray_files_in_the_data_directory() {
    let s = Scratch::new();
    let data = s.path("data");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let listed = xtask()
        .args(["list", "--cache-dir", s.path("cache").to_str().unwrap()])
        .env("PATHREG_DATA", &data)
        .env("PATHREG_MIRROR", root.join("../shared/datasets"))
        .current_dir(root)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed));
    assert!(
        !data.exists() || entries(&data).is_empty(),
        "list wrote {:?}",
        entries(&data)
    );
    let missing = xtask()
        .args(["fetch", "--import", s.path("nowhere").to_str().unwrap()])
        .env("PATHREG_DATA", &data)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("not a folder"),
        "{}",
        text(&missing)
    );
    let mirror = root.join("../shared/datasets");
    if mirror.is_dir() {
        let fetched = xtask()
            .args(["fetch", "uci:balloons", "--offline", "--mirror"])
            .arg(&mirror)
            .args(["--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(fetched.status.success(), "{}", text(&fetched));
        let locks: Vec<PathBuf> = entries(&data)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".lock"))
            .collect();
        assert!(locks.is_empty(), "{locks:?}");
    }
}

#[test]
fn an_error_says_its_cause_once() {
    let s = Scratch::new();
    let out = s.run(&[s.path("nope.toml").to_str().unwrap()]);
    let said = text(&out);
    assert!(!out.status.success());
    assert_eq!(
        said.matches("No such file or directory").count(),
        1,
        "{said}"
    );
    std::fs::create_dir(s.path("results.lock")).unwrap();
    let out = s.xtask("verify", &[s.path("tiny.toml").to_str().unwrap()]);
    assert_eq!(
        text(&out).matches("not a regular file").count(),
        1,
        "{}",
        text(&out)
    );
}
