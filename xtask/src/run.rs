//! `cargo xtask run [manifest…] [--update-lock]`: run experiment manifests
//! (default: the synthetic Table 2 one), write `outputs/<name>/` and, with
//! `--update-lock`, record the results' hashes in the lock; with
//! `--shard I/N`, compute one shard's cells into the cache only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use pathreg_pipeline::lock::LockFile;

use pathreg_pipeline::Shard;

use crate::common::{CommonArgs, experiment_name, plan_all, run_one, run_shard_one};

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
    /// Compute only shard I of N (0 ≤ I < N) of every manifest's cells into
    /// the cache and write no outputs; a later run without --shard, with
    /// the same cache, assembles the outputs (see `cargo xtask slurm`).
    #[arg(long, value_name = "I/N", value_parser = parse_shard, conflicts_with = "update_lock")]
    shard: Option<Shard>,
}

/// `I/N` with `0 ≤ I < N`.
fn parse_shard(text: &str) -> Result<Shard, String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not I/N (e.g. 0/4)"))?;
    let number = |part: &str, what: &str| {
        part.trim()
            .parse::<usize>()
            .map_err(|_| format!("{what} {part:?} in {text:?} is not a whole number"))
    };
    let shard = Shard {
        index: number(index, "index")?,
        count: number(count, "count")?,
    };
    if shard.count == 0 || shard.index >= shard.count {
        return Err(format!(
            "shard {text:?} does not exist: I must be 0 to N − 1 and N at least 1"
        ));
    }
    Ok(shard)
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
    let planned = plan_all(&manifests, &args.common, root)?;
    if let Some(shard) = args.shard {
        for p in &planned {
            run_shard_one(p, &args.common, root, shard)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    for planned in planned {
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
