//! `cargo xtask`: the pathreg orchestrator.
//!
//! - `cargo xtask run <manifest>…` runs experiment manifests and writes `outputs/<name>/`.
//! - `cargo xtask verify [manifest…]` regenerates and compares with `outputs/results.lock`.
//! - `cargo xtask list` / `clean` inspect and remove the cache.
//! - `cargo xtask bench` times the Table 2 pipeline stages and reports medians.

mod bench;
mod fetch;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::process::ExitCode;

use pathreg_data::DataError;
use pathreg_pipeline::cache::Cache;
use pathreg_pipeline::lock::{HashKind, LockFile, compare};
use pathreg_pipeline::{
    PipelineError, Progress, RunOptions, RunSummary, cached_cells, run_manifest,
};

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
        #[command(flatten)]
        common: Common,
        /// Record the results' hashes in outputs/results.lock.
        #[arg(long)]
        update_lock: bool,
    },
    /// Regenerate experiments and compare with outputs/results.lock; exits
    /// non-zero with the cells that moved.
    Verify {
        /// Manifests (default: every experiment in the lock).
        manifests: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
        /// Compare the rounded hashes (stable across machines) instead of the exact ones.
        #[arg(long)]
        rounded: bool,
        /// Reuse cached results instead of recomputing everything.
        #[arg(long)]
        use_cache: bool,
    },
    /// List the experiments in experiments/, their cells and which are cached.
    List {
        /// Cache folder (default: $PATHREG_CACHE or <workspace>/.pathreg-cache).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
    },
    /// Remove the cache, or one stage of it.
    Clean {
        /// Cache folder (default: $PATHREG_CACHE or <workspace>/.pathreg-cache).
        #[arg(long)]
        cache_dir: Option<PathBuf>,
        /// Only this stage: arrangements, convex, nonconvex, lowrank, spectrum or classification.
        #[arg(long)]
        stage: Option<String>,
    },
    /// Time exact enumeration, the certified convex solve and the Table 2
    /// manifest cold and warm; print medians.
    Bench {
        /// Repetitions per measurement.
        #[arg(long, default_value_t = 7)]
        repeat: usize,
    },
    /// Download, copy from a mirror or import the pinned dataset files, verified.
    Fetch(fetch::FetchArgs),
}

#[derive(clap::Args)]
struct Common {
    /// Folder for the results (default: <workspace>/outputs).
    #[arg(long)]
    outputs: Option<PathBuf>,
    /// Cache folder (default: $PATHREG_CACHE or <workspace>/.pathreg-cache).
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Recompute everything; read and write no cache.
    #[arg(long)]
    no_cache: bool,
    /// No progress bar.
    #[arg(long, short)]
    quiet: bool,
    /// The hash lock (default: <workspace>/outputs/results.lock).
    #[arg(long)]
    lock: Option<PathBuf>,
}

/// The workspace root (this crate's parent folder).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn cache_dir(flag: Option<PathBuf>, root: &Path) -> PathBuf {
    flag.or_else(|| std::env::var_os("PATHREG_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| root.join(".pathreg-cache"))
}

fn lock_path(common: &Common, root: &Path) -> PathBuf {
    common
        .lock
        .clone()
        .unwrap_or_else(|| root.join("outputs/results.lock"))
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

fn main() -> ExitCode {
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let root = workspace_root();
    match cli.command {
        Command::Run {
            manifests,
            common,
            update_lock,
        } => {
            let manifests = if manifests.is_empty() {
                vec![root.join("experiments/table2.toml")]
            } else {
                manifests
            };
            let lock_file = lock_path(&common, &root);
            let mut lock = LockFile::read(&lock_file)?;
            for manifest in &manifests {
                let summary = run_one(manifest, &common, &root)?;
                if update_lock {
                    let name = summary
                        .output_dir
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    lock.record(&name, &lock_manifest_name(manifest, &root), &summary);
                }
            }
            if update_lock {
                lock.write(&lock_file)?;
                eprintln!("updated {}", lock_file.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify {
            manifests,
            mut common,
            rounded,
            use_cache,
        } => {
            let lock_file = lock_path(&common, &root);
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
            let kind = if rounded {
                HashKind::Rounded
            } else {
                HashKind::Exact
            };
            let mut failed = false;
            for manifest in &manifests {
                let summary = run_one(manifest, &common, &root)?;
                let name = summary
                    .output_dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let which = if rounded { "rounded" } else { "exact" };
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
                            println!(
                                "{name}: {which} hash differs from the lock; cells that moved:"
                            );
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
        Command::List { cache_dir: flag } => {
            let cache = cache_dir(flag, &root);
            let mut manifests: Vec<PathBuf> = std::fs::read_dir(root.join("experiments"))
                .context("reading experiments/")?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            manifests.sort();
            for manifest in manifests {
                let cells = cached_cells(&manifest, &cache)
                    .with_context(|| format!("listing {}", manifest.display()))?;
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
        Command::Clean {
            cache_dir: flag,
            stage,
        } => {
            const STAGES: &[&str] = &[
                "arrangements",
                "convex",
                "nonconvex",
                "lowrank",
                "spectrum",
                "classification",
            ];
            if let Some(stage) = &stage
                && !STAGES.contains(&stage.as_str())
            {
                anyhow::bail!(
                    "unknown cache stage {stage:?}; stages: {}",
                    STAGES.join(", ")
                );
            }
            let cache = Cache::new(Some(cache_dir(flag, &root)));
            cache.clean(stage.as_deref())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Fetch(args) => fetch::run(args),
        Command::Bench { repeat } => {
            bench::run(&root, repeat.max(1))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn run_one(manifest: &Path, common: &Common, root: &Path) -> Result<RunSummary> {
    let outputs = common
        .outputs
        .clone()
        .unwrap_or_else(|| root.join("outputs"));
    let quiet = common.quiet;
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
        outputs_root: outputs,
        workspace_root: root.to_path_buf(),
        cache_root: (!common.no_cache).then(|| cache_dir(common.cache_dir.clone(), root)),
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
    let summary = run_manifest(manifest, &options).map_err(|e| {
        let offline = matches!(
            &e,
            PipelineError::Data(DataError::Fetch { .. } | DataError::AllSourcesFailed { .. })
        );
        let hint = if offline {
            "\nhint: without internet access, point PATHREG_MIRROR (or `cargo xtask fetch --mirror`) at a \
             folder laid out like uci/<name>/…, mnist/… (e.g. ../shared/datasets), or adopt files with \
             `cargo xtask fetch --import <dir>`"
        } else {
            ""
        };
        anyhow::anyhow!("running {}: {e}{hint}", manifest.display())
    })?;
    bar.finish_and_clear();
    if !quiet {
        eprintln!(
            "{}: {} cells ({} cache hits, {} computed) in {:.2} s → {} (result hash {})",
            manifest.display(),
            summary.cells,
            summary.cache_hits,
            summary.cache_misses,
            summary.wall_s,
            summary.output_dir.display(),
            &summary.result_hash[..16]
        );
    }
    Ok(summary)
}
