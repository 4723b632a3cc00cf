//! `cargo xtask clean [--cache-dir <dir>] [--stage <stage>]`: remove the
//! result cache, or only one stage of it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use pathreg_pipeline::cache::Cache;

use crate::common::cache_dir;

/// Arguments of `cargo xtask clean`.
#[derive(clap::Args)]
pub struct CleanArgs {
    /// Cache folder (default: $PATHREG_CACHE or <workspace>/.pathreg-cache).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Only this stage: arrangements, convex, nonconvex, lowrank, spectrum or classification.
    #[arg(long)]
    stage: Option<String>,
}

/// Runs `cargo xtask clean`.
pub fn run(args: CleanArgs, root: &Path) -> Result<ExitCode> {
    let stages = pathreg_pipeline::kinds::cache_stages();
    if let Some(stage) = &args.stage
        && !stages.contains(&stage.as_str())
    {
        anyhow::bail!(
            "unknown cache stage {stage:?}; stages: {}",
            stages.join(", ")
        );
    }
    let folder = cache_dir(args.cache_dir, root);
    let cache = Cache::new(Some(folder.clone()));
    let report = cache.clean(args.stage.as_deref(), &stages)?;
    println!(
        "removed {} cache file{} ({:.1} MB) from {}",
        report.files,
        if report.files == 1 { "" } else { "s" },
        report.bytes as f64 / 1e6,
        folder.display()
    );
    if report.left > 0 {
        println!(
            "left {} file{} that are not cache entries",
            report.left,
            if report.left == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
