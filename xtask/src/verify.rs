//! `cargo xtask verify [manifest…] [--rounded] [--use-cache]`: regenerate the
//! experiments (default: every one in the lock, recomputed without the cache)
//! and compare their hashes with `outputs/results.lock`; exits non-zero and
//! prints the cells that moved when one differs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use pathreg_pipeline::lock::{HashKind, LockFile, compare};

use crate::common::{CommonArgs, experiment_name, plan_all, run_one};

/// Arguments of `cargo xtask verify`.
#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Manifests (default: every experiment in the lock).
    manifests: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Compare the rounded hashes (stable across machines) instead of the exact ones.
    #[arg(long)]
    rounded: bool,
    /// Reuse cached results instead of recomputing everything.
    #[arg(long)]
    use_cache: bool,
}

/// Runs `cargo xtask verify`.
pub fn run(args: VerifyArgs, root: &Path) -> Result<ExitCode> {
    let VerifyArgs {
        manifests,
        mut common,
        rounded,
        use_cache,
    } = args;
    let lock_file = common.lock_path(root);
    let lock = LockFile::read(&lock_file)?;
    let manifests: Vec<PathBuf> = if manifests.is_empty() {
        lock.experiments
            .values()
            .map(|e| root.join(&e.manifest))
            .collect()
    } else {
        manifests
    };
    if manifests.is_empty() {
        anyhow::bail!(
            "{} records no experiments; run with --update-lock first",
            lock_file.display()
        );
    }
    common.no_cache |= !use_cache;
    let (kind, which) = if rounded {
        (HashKind::Rounded, "rounded")
    } else {
        (HashKind::Exact, "exact")
    };
    let mut failed = false;
    for planned in plan_all(&manifests, &common, root)? {
        let summary = run_one(&planned, &common, root)?;
        let name = experiment_name(&summary);
        match lock.experiments.get(&name) {
            None => {
                failed = true;
                println!("{name}: not in the lock");
            }
            Some(locked) => {
                let diff = compare(locked, &summary, kind);
                if diff.is_empty() {
                    println!("{name}: {which} hash matches ({} cells)", summary.cells);
                } else {
                    failed = true;
                    println!("{name}: {which} hash differs from the lock; cells that moved:");
                    for line in diff {
                        println!("{line}");
                    }
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
