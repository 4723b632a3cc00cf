//! run.json: what was run, on what, with which versions, and how it went.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use crate::cache::Cache;
use crate::manifest::{Experiment, ExperimentKind};
use crate::outputs::{Hashes, ROUNDED_DIGITS};
use crate::run::{CellResult, ConvexDetails, Prepared};

/// One dataset of the run.
#[derive(Debug, serde::Serialize)]
struct DataInfo {
    seed: String,
    sha256: String,
    n: usize,
    d: usize,
}

/// One arrangement set of the run.
#[derive(Debug, serde::Serialize)]
struct ArrangementInfo {
    cache_key: String,
    mode: String,
    seed: Option<String>,
    count: usize,
    cached: bool,
}

/// Cache use of the run.
#[derive(Debug, serde::Serialize)]
struct CacheInfo {
    enabled: bool,
    hits: usize,
    misses: usize,
    corrupt_recomputed: usize,
}

/// One convex solve.
#[derive(Debug, serde::Serialize)]
struct ConvexInfo {
    point: String,
    #[serde(flatten)]
    details: ConvexDetails,
}

/// What every run.json records: the manifest, the hashes, the cache, the
/// timings and the toolchain.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Common {
    experiment: String,
    kind: ExperimentKind,
    manifest_path: String,
    manifest_sha256: String,
    manifest_seed: Option<u64>,
    sweep_points: usize,
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
    wall_s: f64,
}

impl Common {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn collect(
        experiment: &Experiment,
        manifest_path: &Path,
        manifest_text: &str,
        hashes: &Hashes,
        workspace_root: &Path,
        cache: &Cache,
        stage_times_s: BTreeMap<String, f64>,
        start: Instant,
    ) -> Self {
        let mut common = Self::collect_named(
            &experiment.name,
            experiment.kind,
            experiment.points.len(),
            manifest_path,
            manifest_text,
            hashes,
            workspace_root,
            cache,
            stage_times_s,
            start,
        );
        common.manifest_seed = Some(experiment.seed);
        common
    }

    /// The same for any experiment, given its name, kind and number of cells.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn collect_named(
        name: &str,
        kind: ExperimentKind,
        points: usize,
        manifest_path: &Path,
        manifest_text: &str,
        hashes: &Hashes,
        workspace_root: &Path,
        cache: &Cache,
        stage_times_s: BTreeMap<String, f64>,
        start: Instant,
    ) -> Self {
        let (git_commit, git_dirty) = git_state(workspace_root);
        Self {
            experiment: name.to_string(),
            kind,
            manifest_path: manifest_path.display().to_string(),
            manifest_sha256: hex::encode(Sha256::digest(manifest_text.as_bytes())),
            manifest_seed: None,
            sweep_points: points,
            result_hash: hashes.exact.clone(),
            rounded_result_hash: hashes.rounded.clone(),
            rounded_digits: ROUNDED_DIGITS,
            cache: CacheInfo {
                enabled: cache.is_enabled(),
                hits: cache.stats.hits.load(Ordering::Relaxed),
                misses: cache.stats.misses.load(Ordering::Relaxed),
                corrupt_recomputed: cache.stats.corrupt.load(Ordering::Relaxed),
            },
            stage_times_s,
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

/// The content of run.json for convex-vs-non-convex experiments.
#[derive(Debug, serde::Serialize)]
pub(crate) struct RunInfo {
    #[serde(flatten)]
    common: Common,
    data: Vec<DataInfo>,
    arrangements: Vec<ArrangementInfo>,
    convex: Vec<ConvexInfo>,
}

impl RunInfo {
    pub(crate) fn collect(
        prepared: &Prepared,
        results: &[CellResult],
        hashes: &Hashes,
        workspace_root: &Path,
        cache: &Cache,
        stage_times_s: BTreeMap<String, f64>,
        start: Instant,
    ) -> Self {
        let mut convex: Vec<ConvexInfo> = Vec::new();
        for r in results {
            if let Some(details) = &r.fit.convex {
                let point = prepared.experiment.points[r.point].group_label();
                if !convex.iter().any(|c| c.point == point) {
                    convex.push(ConvexInfo {
                        point,
                        details: details.clone(),
                    });
                }
            }
        }
        Self {
            common: Common::collect(
                &prepared.experiment,
                &prepared.manifest_path,
                &prepared.manifest_text,
                hashes,
                workspace_root,
                cache,
                stage_times_s,
                start,
            ),
            data: prepared
                .data
                .iter()
                .map(|d| DataInfo {
                    seed: format!("{:016x}", d.seed),
                    sha256: d.sha256.clone(),
                    n: d.dataset.n(),
                    d: d.dataset.d(),
                })
                .collect(),
            arrangements: prepared
                .arrangements
                .iter()
                .map(|a| ArrangementInfo {
                    cache_key: a.key.hash.clone(),
                    mode: format!("{:?}", a.set.mode()).to_lowercase(),
                    seed: a.seed.map(|s| format!("{s:016x}")),
                    count: a.set.len(),
                    cached: a.cached,
                })
                .collect(),
            convex,
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
