//! `cargo xtask list [--cache-dir <dir>]`: list the experiment manifests in
//! `experiments/`, each with its cells and which of them are cached.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::common::cache_dir;

/// Arguments of `cargo xtask list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// Cache folder (default: $PATHREG_CACHE or <workspace>/.pathreg-cache).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

/// Runs `cargo xtask list`.
pub fn run(args: ListArgs, root: &Path) -> Result<ExitCode> {
    let cache = cache_dir(args.cache_dir, root);
    let mut manifests: Vec<PathBuf> = std::fs::read_dir(root.join("experiments"))
        .context("reading experiments/")?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    manifests.sort();
    for manifest in manifests {
        let cells = match pathreg_pipeline::load_manifest(&manifest).and_then(|p| p.list(&cache)) {
            Ok(cells) => cells,
            Err(e) => {
                println!("{} — cannot list: {e}", manifest.display());
                continue;
            }
        };
        let cached = cells.iter().filter(|c| c.1).count();
        println!(
            "{} — {} cells, {} cached",
            manifest.display(),
            cells.len(),
            cached
        );
        for (label, is_cached) in cells {
            println!(
                "  [{}] {label}",
                if is_cached { "cached" } else { "      " }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
