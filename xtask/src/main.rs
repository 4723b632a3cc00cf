//! `cargo xtask`: the pathreg orchestrator.
//!
//! - `cargo xtask run <manifest>…` runs experiment manifests and writes `outputs/<name>/`.
//! - `cargo xtask bench` times the Table 2 pipeline stages and reports medians.

mod bench;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pathreg_pipeline::{Progress, RunOptions, run_manifest};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "Reproduce Ergen & Pilanci's path-regularization experiments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run experiment manifests (TOML) and write outputs/<name>/.
    Run {
        /// Manifest files (default: experiments/table2.toml, the synthetic
        /// Table 2 experiment, which needs no download).
        manifests: Vec<PathBuf>,
        /// Folder for the results (default: <workspace>/outputs).
        #[arg(long)]
        outputs: Option<PathBuf>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Time exact enumeration, the certified convex solve and the whole
    /// Table 2 manifest; print medians.
    Bench {
        /// Repetitions per measurement.
        #[arg(long, default_value_t = 7)]
        repeat: usize,
    },
}

/// The workspace root (this crate's parent folder).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            manifests,
            outputs,
            quiet,
        } => {
            let root = workspace_root();
            let outputs = outputs.unwrap_or_else(|| root.join("outputs"));
            let manifests = if manifests.is_empty() {
                vec![root.join("experiments/table2.toml")]
            } else {
                manifests
            };
            for manifest in &manifests {
                run_one(manifest, &outputs, &root, quiet)?;
            }
            Ok(())
        }
        Command::Bench { repeat } => bench::run(&workspace_root(), repeat.max(1)),
    }
}

fn run_one(manifest: &Path, outputs: &Path, root: &Path, quiet: bool) -> Result<()> {
    let bar = ProgressBar::new(0);
    if quiet || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} cells {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(manifest.display().to_string());
    let shared = Mutex::new(bar.clone());
    let options = RunOptions {
        outputs_root: outputs.to_path_buf(),
        workspace_root: root.to_path_buf(),
        progress: Box::new(move |event| {
            let Ok(bar) = shared.lock() else { return };
            match event {
                Progress::Stage(stage) => bar.set_message(stage),
                Progress::CellsStarted(total) => {
                    bar.set_length(total as u64);
                    bar.set_message("fitting");
                }
                Progress::CellDone(label) => {
                    bar.inc(1);
                    bar.set_message(label);
                }
            }
        }),
    };
    let summary = run_manifest(manifest, &options)
        .with_context(|| format!("running {}", manifest.display()))?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!(
            "{}: {} cells in {:.2} s → {} (result hash {})",
            manifest.display(),
            summary.cells,
            summary.wall_s,
            summary.output_dir.display(),
            &summary.result_hash[..16]
        );
    }
    Ok(())
}
