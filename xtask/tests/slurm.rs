//! Sharding on a real Slurm cluster, as a user runs it: a one-node cluster
//! (`cargo xtask slurm-local up`) runs an experiment as a job array of 3
//! shards plus the assembling job, and the outputs' exact hash equals a
//! single-process run's; then a shard cancelled midway (`scancel`) and
//! resubmitted recomputes only what was missing, with the same hash.
//!
//! Needs slurm-wlm and munge (`.ci/run` installs them) and root (the local
//! cluster runs its daemons as root and munged as `munge`). Without them the
//! test says why and does nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{ok, workspace, xtask};
use std::time::{Duration, Instant};

/// Stops the cluster when the test ends, passed or not.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn up(dir: &Path) -> Self {
        let out = ok(
            xtask().args(["slurm-local", "up", "--dir"]).arg(dir),
            "slurm-local up",
        );
        assert!(out.contains("SLURM_CONF="), "{out}");
        Self {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// `xtask slurm --array 3 --submit` of `manifest`: the array's and the
    /// assembling job's ids.
    fn submit(&self, manifest: &Path, cache: &Path, out: &Path, jobs: &Path) -> (String, String) {
        let submitted = ok(
            self.command(env!("CARGO_BIN_EXE_xtask"))
                .args(["slurm", "--array", "3", "--cpus-per-task", "1", "--submit"])
                .arg("--cache-dir")
                .arg(cache)
                .arg("--outputs")
                .arg(out)
                .arg("--jobs-dir")
                .arg(jobs)
                .arg(manifest),
            "xtask slurm --submit",
        );
        job_ids(&submitted)
    }

    /// The job's state from scontrol (finished jobs stay listed: MinJobAge).
    fn states(&self, job: &str) -> Vec<String> {
        let out = self
            .command("scontrol")
            .args(["show", "job", job])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("JobState=").map(str::to_string))
            .collect()
    }

    /// Waits until every task of `job` has one of `states`.
    fn wait_for(&self, job: &str, states: &[&str], limit: Duration) {
        let start = Instant::now();
        loop {
            let now = self.states(job);
            if !now.is_empty() && now.iter().all(|s| states.contains(&s.as_str())) {
                return;
            }
            assert!(
                start.elapsed() < limit,
                "job {job} is {now:?} after {limit:?}, not {states:?}; logs in {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = xtask()
            .args(["slurm-local", "down", "--dir"])
            .arg(&self.dir)
            .output();
    }
}

fn installed() -> Result<(), String> {
    for program in ["slurmctld", "slurmd", "sbatch", "munged"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()));
        if !found {
            return Err(format!(
                "{program} is not installed (apt-get install slurm-wlm munge)"
            ));
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        });
    if uid.as_deref() != Some("0") {
        return Err("the local cluster needs root".into());
    }
    Ok(())
}

fn result_hash(out: &Path, name: &str) -> String {
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(name).join("run.json")).unwrap()).unwrap();
    json["result_hash"].as_str().unwrap().to_string()
}

fn single_process_hash(dir: &Path, manifest: &Path, name: &str) -> String {
    let out = dir.join(format!("single-{name}"));
    ok(
        xtask()
            .args(["run", "--quiet", "--no-cache", "--outputs"])
            .arg(&out)
            .arg(manifest),
        "single-process run",
    );
    result_hash(&out, name)
}

/// `array job A (…), assembling job B (…)` → (A, B).
fn job_ids(stdout: &str) -> (String, String) {
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let array = words
        .windows(3)
        .find(|p| p[0] == "array" && p[1] == "job")
        .map(|p| p[2].to_string())
        .unwrap();
    let assemble = words
        .windows(3)
        .find(|p| p[0] == "assembling" && p[1] == "job")
        .map(|p| p[2].to_string())
        .unwrap();
    (array, assemble)
}

/// A Table 2 variant whose shards take a few seconds: one dataset, K = 20,
/// 6 runs of 100 000 epochs.
fn slow_manifest(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(workspace().join("experiments/table2.toml")).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = match line {
            l if l.starts_with("name = ") => "name = \"table2_slow\"".to_string(),
            l if l.starts_with("epochs = ") => "epochs = 100000".to_string(),
            l if l.starts_with("runs = ") => "runs = 6".to_string(),
            l if l.starts_with("K = ") => "K = [20]".to_string(),
            l => l.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    // The published rows are for K = 5, 20, 40 and 5 runs: leave them out.
    let out = out.split("[reference]").next().unwrap().to_string();
    let path = dir.join("table2_slow.toml");
    std::fs::write(&path, out).unwrap();
    path
}

fn last_line_with(path: &Path, needle: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .rfind(|l| l.contains(needle))
        .unwrap_or_default()
        .to_string()
}

/// The number after `word` in `line` (`computed 3,` → 3).
fn count_after(line: &str, word: &str) -> usize {
    let words: Vec<&str> = line.split_whitespace().collect();
    let i = words.iter().position(|w| *w == word).unwrap();
    words[i + 1].trim_end_matches(',').parse().unwrap()
}

#[test]
fn shards_on_a_local_slurm_cluster_assemble_the_single_process_hash() {
    if let Err(reason) = installed() {
        eprintln!("SKIPPED: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::up(&dir.path().join("cluster"));
    let limit = Duration::from_secs(300);

    // End to end: Table 2 as 3 shards plus the assembling job.
    let table2 = workspace().join("experiments/table2.toml");
    let expected = single_process_hash(dir.path(), &table2, "table2");
    let jobs = dir.path().join("jobs");
    let out = dir.path().join("out");
    let cache = dir.path().join("cache");
    let (array, assemble) = cluster.submit(&table2, &cache, &out, &jobs);
    cluster.wait_for(&assemble, &["COMPLETED"], limit);
    assert!(
        cluster.states(&array).iter().all(|s| s == "COMPLETED"),
        "{:?}",
        cluster.states(&array)
    );
    assert_eq!(result_hash(&out, "table2"), expected);
    let assembled = last_line_with(&jobs.join(format!("assemble-{assemble}.out")), "cells");
    assert!(assembled.contains("0 computed"), "{assembled}");

    // Failure: cancel one shard once it has finished a cell, resubmit it.
    let slow = slow_manifest(dir.path());
    let expected = single_process_hash(dir.path(), &slow, "table2_slow");
    let jobs = dir.path().join("jobs-slow");
    let (array, assemble) = cluster.submit(&slow, &cache, &out, &jobs);
    let log = jobs.join(format!("shard-{array}_1.out"));
    let start = Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("done ")
    {
        assert!(start.elapsed() < limit, "shard 1 finished no cell");
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(
        cluster.command("scancel").arg(format!("{array}_1")),
        "scancel",
    );
    assert!(
        !last_line_with(&log, "shard 1/3").contains("left"),
        "shard 1 ended before it was cancelled"
    );
    let finished_before = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("done "))
        .count();
    // The other shards finish; the assembling job can never start.
    for task in [format!("{array}_0"), format!("{array}_2")] {
        cluster.wait_for(&task, &["COMPLETED"], limit);
    }
    cluster.wait_for(&format!("{array}_1"), &["CANCELLED"], limit);
    ok(
        cluster.command("scancel").arg(&assemble),
        "scancel the assembling job",
    );
    assert!(!out.join("table2_slow").exists());
    // Requeue the one shard, then assemble after it, as the README says.
    let rerun = ok(
        cluster
            .command("sbatch")
            .args(["--parsable", "--array=1"])
            .arg(jobs.join("shards.sbatch")),
        "sbatch the failed shard",
    );
    let rerun = rerun.trim().split(';').next().unwrap().to_string();
    let assemble = ok(
        cluster
            .command("sbatch")
            .args(["--parsable", &format!("--dependency=afterok:{rerun}")])
            .arg(jobs.join("assemble.sbatch")),
        "sbatch the assembling job",
    );
    let assemble = assemble.trim().split(';').next().unwrap().to_string();
    cluster.wait_for(&assemble, &["COMPLETED"], limit);
    assert_eq!(result_hash(&out, "table2_slow"), expected);
    // The resubmitted shard loaded what it had finished before the cancel
    // and computed only the rest; the assembling job computed nothing.
    let rerun_log = jobs.join(format!("shard-{rerun}_1.out"));
    let summary = last_line_with(&rerun_log, "shard 1/3");
    let own_cells = std::fs::read_to_string(&rerun_log)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("done "))
        .count();
    assert!(
        own_cells > finished_before,
        "{own_cells} cells, {finished_before} done before"
    );
    assert_eq!(
        count_after(&summary, "computed"),
        own_cells - finished_before,
        "{summary}: only the cells the cancel cut off are computed again"
    );
    assert!(
        count_after(&summary, "loaded") >= finished_before,
        "{summary}"
    );
    let assembled = last_line_with(&jobs.join(format!("assemble-{assemble}.out")), "cells");
    assert!(assembled.contains("0 computed"), "{assembled}");
}

#[test]
fn shards_run_one_after_another_assemble_the_same_hash_and_bad_shards_fail() {
    let dir = tempfile::tempdir().unwrap();
    let table2 = workspace().join("experiments/table2.toml");
    let expected = single_process_hash(dir.path(), &table2, "table2");
    let cache = dir.path().join("cache");
    let mut left = Vec::new();
    for i in 0..3 {
        let line = ok(
            xtask()
                .args([
                    "run",
                    "--quiet",
                    "--shard",
                    &format!("{i}/3"),
                    "--cache-dir",
                ])
                .arg(&cache)
                .arg("--outputs")
                .arg(dir.path().join("out"))
                .arg(&table2),
            "shard run",
        );
        left.push(count_after(&line, "left"));
    }
    // The last shard finds every other cell cached; no shard wrote outputs.
    assert_eq!(left.last(), Some(&0), "{left:?}");
    assert!(!dir.path().join("out/table2").exists());
    let assembled = xtask()
        .args(["run", "--cache-dir"])
        .arg(&cache)
        .arg("--outputs")
        .arg(dir.path().join("out"))
        .arg(&table2)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&assembled.stderr).into_owned();
    assert!(
        assembled.status.success() && stderr.contains("0 computed"),
        "{stderr}"
    );
    assert_eq!(result_hash(&dir.path().join("out"), "table2"), expected);
    for (args, needle) in [
        (vec!["--shard", "3/3"], "does not exist"),
        (vec!["--shard", "1"], "is not I/N"),
        (vec!["--shard", "0/2", "--no-cache"], "needs a cache"),
    ] {
        let output = xtask()
            .arg("run")
            .args(&args)
            .arg(&table2)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
    }
}
