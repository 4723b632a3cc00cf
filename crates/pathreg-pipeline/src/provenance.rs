//! run.json: what was run, on what, with which versions, and how it went.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::run::{CellResult, ConvexDetails, Prepared};

/// The content of run.json.
#[derive(Debug, serde::Serialize)]
pub(crate) struct RunInfo {
    experiment: String,
    manifest_path: String,
    manifest_sha256: String,
    manifest_seed: u64,
    data_seed: String,
    data_sha256: String,
    n: usize,
    d: usize,
    arrangement_mode: String,
    arrangement_seed: Option<String>,
    arrangement_count: usize,
    arrangement_time_s: f64,
    convex: Option<ConvexDetails>,
    result_hash: String,
    git_commit: String,
    git_dirty: Option<bool>,
    rustc: String,
    crate_versions: Vec<(String, String)>,
    threads: usize,
    wall_s: f64,
}

impl RunInfo {
    pub(crate) fn collect(
        prepared: &Prepared,
        results: &[CellResult],
        result_hash: &str,
        workspace_root: &Path,
        start: Instant,
    ) -> Self {
        let (git_commit, git_dirty) = git_state(workspace_root);
        Self {
            experiment: prepared.experiment.name.clone(),
            manifest_path: prepared.manifest_path.display().to_string(),
            manifest_sha256: hex::encode(Sha256::digest(prepared.manifest_text.as_bytes())),
            manifest_seed: prepared.experiment.seed,
            data_seed: format!("{:016x}", prepared.data_seed),
            data_sha256: hex::encode(Sha256::digest(prepared.dataset.to_csv().as_bytes())),
            n: prepared.dataset.n(),
            d: prepared.dataset.d(),
            arrangement_mode: format!("{:?}", prepared.arrangements.mode()).to_lowercase(),
            arrangement_seed: prepared.arrangement_seed.map(|s| format!("{s:016x}")),
            arrangement_count: prepared.arrangements.len(),
            arrangement_time_s: prepared.arrangement_time_s,
            convex: results.iter().find_map(|r| r.convex.clone()),
            result_hash: result_hash.to_string(),
            git_commit,
            git_dirty,
            rustc: command_output("rustc", &["--version"], workspace_root)
                .unwrap_or_else(|| "unknown".into()),
            crate_versions: lock_versions(workspace_root),
            threads: rayon::current_num_threads(),
            wall_s: start.elapsed().as_secs_f64(),
        }
    }
}

fn command_output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git_state(root: &Path) -> (String, Option<bool>) {
    let commit =
        command_output("git", &["rev-parse", "HEAD"], root).unwrap_or_else(|| "unknown".into());
    let dirty = command_output(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        root,
    )
    .map(|s| !s.is_empty());
    (commit, dirty)
}

/// Versions of the solver stack as locked in Cargo.lock.
fn lock_versions(root: &Path) -> Vec<(String, String)> {
    const WANTED: &[&str] = &[
        "clarabel",
        "faer",
        "ndarray",
        "polars",
        "rayon",
        "rand_chacha",
        "plotters",
    ];
    let Ok(lock) = std::fs::read_to_string(root.join("Cargo.lock")) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut name: Option<&str> = None;
    for line in lock.lines() {
        if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"'));
        } else if let (Some(v), Some(n)) = (line.strip_prefix("version = "), name) {
            if WANTED.contains(&n) {
                found.push((n.to_string(), v.trim_matches('"').to_string()));
            }
            name = None;
        }
    }
    found
}
