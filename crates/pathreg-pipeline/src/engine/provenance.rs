//! run.json: what was run, on what, with which versions, and how it went.
//! Every kind's run.json starts with these fields; the kind's own details
//! (its data, solves, cells) follow them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::Ordering;

use sha2::{Digest, Sha256};

use super::cache::Cache;
use super::hashing::{Hashes, ROUNDED_DIGITS};
use crate::manifest::ManifestFile;

/// Cache use of the run.
#[derive(Debug, serde::Serialize)]
struct CacheInfo {
    enabled: bool,
    hits: usize,
    misses: usize,
    corrupt_recomputed: usize,
    misplaced_recomputed: usize,
}

/// What every run.json records: the manifest, the hashes, the cache, the
/// timings and the toolchain.
#[derive(Debug, serde::Serialize)]
pub struct Provenance {
    experiment: String,
    kind: &'static str,
    manifest_path: String,
    manifest_sha256: String,
    manifest_seed: Option<u64>,
    result_rows: usize,
    result_hash: String,
    rounded_result_hash: String,
    rounded_digits: usize,
    cache: CacheInfo,
    stage_times_s: BTreeMap<String, f64>,
    git_commit: String,
    git_dirty: Option<bool>,
    rustc: String,
    crate_versions: Vec<(String, String)>,
    threads: usize,
    /// The CPU model, its logical cores and the memory, as Linux reports them.
    machine: String,
    wall_s: f64,
}

/// Who ran: the experiment's identity as its kind states it.
pub struct Identity<'a> {
    /// The experiment's name (its output folder).
    pub name: &'a str,
    /// The registry name of its kind.
    pub kind: &'static str,
    /// The manifest's master seed, if the kind has one.
    pub seed: Option<u64>,
}

impl Provenance {
    /// Collects the provenance of a finished run.
    pub(crate) fn collect(
        identity: &Identity<'_>,
        manifest: &ManifestFile,
        hashes: &Hashes,
        workspace_root: &Path,
        cache: &Cache,
        stage_times_s: BTreeMap<String, f64>,
        wall_s: f64,
    ) -> Self {
        let (git_commit, git_dirty) = git_state(workspace_root);
        Self {
            experiment: identity.name.to_string(),
            kind: identity.kind,
            manifest_path: manifest.path.display().to_string(),
            manifest_sha256: hex::encode(Sha256::digest(manifest.text.as_bytes())),
            manifest_seed: identity.seed,
            result_rows: hashes.rows.len(),
            result_hash: hashes.exact.clone(),
            rounded_result_hash: hashes.rounded.clone(),
            rounded_digits: ROUNDED_DIGITS,
            cache: CacheInfo {
                enabled: cache.is_enabled(),
                hits: cache.stats.hits.load(Ordering::Relaxed),
                misses: cache.stats.misses.load(Ordering::Relaxed),
                corrupt_recomputed: cache.stats.corrupt.load(Ordering::Relaxed),
                misplaced_recomputed: cache.stats.misplaced.load(Ordering::Relaxed),
            },
            stage_times_s,
            git_commit,
            git_dirty,
            rustc: command_output("rustc", &["--version"], workspace_root)
                .unwrap_or_else(|| "unknown".into()),
            crate_versions: lock_versions(workspace_root),
            threads: rayon::current_num_threads(),
            machine: machine(),
            wall_s,
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

/// `"<CPU model>, <n> logical cores, <m> GiB"` from `/proc` (parts Linux
/// does not report are left out).
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let line = m.lines().find(|l| l.starts_with("MemTotal:"))?;
            line.split_whitespace().nth(1)?.parse::<f64>().ok()
        })
        .map(|kib| format!("{:.0} GiB", kib / 1024.0 / 1024.0));
    let mut parts: Vec<String> = model.into_iter().collect();
    parts.push(format!("{cores} logical cores"));
    parts.extend(memory);
    parts.join(", ")
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

/// The process's peak resident memory so far (`VmHWM`), bytes, where Linux
/// reports it.
pub fn peak_resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
