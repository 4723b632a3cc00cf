//! `cargo xtask run [manifest…] [--update-lock]`: run experiment manifests
//! (default: the synthetic Table 2 one), write `outputs/<name>/` and, with
//! `--update-lock`, record the results' hashes in the lock.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use pathreg_pipeline::lock::LockFile;

use crate::common::{CommonArgs, experiment_name, plan_all, run_one};

/// Arguments of `cargo xtask run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Manifest files (default: experiments/table2.toml, the synthetic
    /// Table 2 experiment, which needs no download).
    manifests: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonArgs,
    /// Record the results' hashes in outputs/results.lock.
    #[arg(long)]
    update_lock: bool,
}

/// Runs `cargo xtask run`.
pub fn run(args: RunArgs, root: &Path) -> Result<ExitCode> {
    let manifests = if args.manifests.is_empty() {
        vec![root.join("experiments/table2.toml")]
    } else {
        args.manifests
    };
    let lock_file = args.common.lock_path(root);
    let mut lock = if args.update_lock {
        LockFile::read_or_new(&lock_file)?
    } else {
        if let Err(e) = LockFile::read_or_new(&lock_file) {
            eprintln!("warning: {e} (it is only read by verify and written by --update-lock)");
        }
        LockFile::default()
    };
    for planned in plan_all(&manifests, &args.common, root)? {
        let summary = run_one(&planned, &args.common, root)?;
        if args.update_lock {
            lock.record(
                &experiment_name(&summary),
                &lock_manifest_name(planned.path(), root),
                &summary,
            );
        }
    }
    if args.update_lock {
        lock.write(&lock_file)?;
        eprintln!("updated {}", lock_file.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest path as recorded in the lock: relative to the workspace when inside it.
fn lock_manifest_name(manifest: &Path, root: &Path) -> String {
    let absolute = std::fs::canonicalize(manifest).unwrap_or_else(|_| manifest.to_path_buf());
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    absolute
        .strip_prefix(&root)
        .unwrap_or(&absolute)
        .display()
        .to_string()
}
