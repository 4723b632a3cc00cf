//! What several commands share: the flags of `run` and `verify`, the default
//! folders (workspace, cache, lock) and running one manifest with a progress bar.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pathreg_data::DataError;
use pathreg_pipeline::{
    Limits, PipelineError, Planned, Progress, RunOptions, RunSummary, Shard, ShardSummary,
};

/// Reads and checks every manifest before any of them runs (valid, distinct
/// names, output folders free), so a bad manifest fails before any work.
pub fn plan_all(manifests: &[PathBuf], common: &CommonArgs, root: &Path) -> Result<Vec<Planned>> {
    let limits = if common.override_limits {
        Limits::Overridden
    } else {
        Limits::Enforced
    };
    Ok(pathreg_pipeline::plan(
        manifests,
        &common.outputs_root(root),
        limits,
    )?)
}

/// Flags shared by `cargo xtask run` and `cargo xtask verify`.
#[derive(clap::Args)]
pub struct CommonArgs {
    /// Folder for the results (default: <workspace>/outputs).
    #[arg(long)]
    pub outputs: Option<PathBuf>,
    /// Cache folder (default: $PATHREG_CACHE or <workspace>/.pathreg-cache).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Recompute everything; read and write no cache.
    #[arg(long)]
    pub no_cache: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// The hash lock (default: <workspace>/outputs/results.lock).
    #[arg(long)]
    pub lock: Option<PathBuf>,
    /// Run manifests beyond the memory, work and cell limits checked before
    /// any work starts (allocations that cannot succeed are still refused).
    #[arg(long)]
    pub override_limits: bool,
}

impl CommonArgs {
    /// The hash lock: `--lock`, else `<workspace>/outputs/results.lock`.
    pub fn lock_path(&self, root: &Path) -> PathBuf {
        self.lock
            .clone()
            .unwrap_or_else(|| root.join("outputs/results.lock"))
    }

    /// The results folder: `--outputs`, else `<workspace>/outputs`.
    pub fn outputs_root(&self, root: &Path) -> PathBuf {
        self.outputs.clone().unwrap_or_else(|| root.join("outputs"))
    }
}

/// The workspace root (this crate's parent folder).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cache folder: the flag, else `$PATHREG_CACHE`, else `<workspace>/.pathreg-cache`.
pub fn cache_dir(flag: Option<PathBuf>, root: &Path) -> PathBuf {
    flag.or_else(|| std::env::var_os("PATHREG_CACHE").map(PathBuf::from))
        .unwrap_or_else(|| root.join(".pathreg-cache"))
}

/// The experiment's name: the name of its output folder.
pub fn experiment_name(summary: &RunSummary) -> String {
    summary
        .output_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The run options of `planned` with a progress bar (hidden when quiet or
/// not a terminal).
///
/// With `log_cells`, a run whose stderr is no terminal (a cluster job's log)
/// prints one line per finished cell instead, unless quiet.
fn options_with_bar(
    planned: &Planned,
    common: &CommonArgs,
    root: &Path,
    log_cells: bool,
) -> (RunOptions, ProgressBar) {
    let bar = ProgressBar::new(0);
    let terminal = std::io::stderr().is_terminal();
    if common.quiet || !terminal {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    let log_cells = log_cells && !terminal && !common.quiet;
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} cells {msg} (eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(planned.path().display().to_string());
    let shared = Mutex::new(bar.clone());
    let options = RunOptions {
        outputs_root: common.outputs_root(root),
        workspace_root: root.to_path_buf(),
        cache_root: (!common.no_cache).then(|| cache_dir(common.cache_dir.clone(), root)),
        progress: Box::new(move |event| {
            let Ok(bar) = shared.lock() else { return };
            match event {
                Progress::Stage(stage) => bar.set_message(stage),
                Progress::StageStep { stage, done, total } => {
                    bar.set_message(format!("{stage} {done}/{total}"));
                }
                Progress::CellsStarted(total) => {
                    bar.set_length(total as u64);
                    bar.set_message("fitting");
                }
                Progress::CellDone(label) => {
                    if log_cells {
                        eprintln!("done {label}");
                    }
                    bar.inc(1);
                    bar.set_message(label);
                }
            }
        }),
    };
    (options, bar)
}

/// `e` with the manifest's path in front (unless it names it already) and,
/// for a failed download, a hint on working offline.
fn explained(e: PipelineError, manifest: &Path) -> anyhow::Error {
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
    let message = e.to_string();
    let place = manifest.display().to_string();
    if message.starts_with(&place) {
        anyhow::anyhow!("{message}{hint}")
    } else {
        anyhow::anyhow!("running {place}: {message}{hint}")
    }
}

/// Runs shard `shard` of one manifest (its share of the cells into the
/// cache, no outputs) and prints what it did on stdout.
pub fn run_shard_one(
    planned: &Planned,
    common: &CommonArgs,
    root: &Path,
    shard: Shard,
) -> Result<ShardSummary> {
    let (options, bar) = options_with_bar(planned, common, root, true);
    let summary = planned
        .run_shard(&options, shard)
        .map_err(|e| explained(e, planned.path()))?;
    bar.finish_and_clear();
    println!(
        "shard {}/{} of {}: computed {}, loaded {}, left {} to other shards; no outputs written",
        shard.index,
        shard.count,
        planned.path().display(),
        summary.computed,
        summary.loaded,
        summary.left_to_others
    );
    Ok(summary)
}

/// Runs one manifest with a progress bar (unless quiet or not a terminal) and
/// reports its summary on stderr; a failed download gets a hint on working offline.
pub fn run_one(planned: &Planned, common: &CommonArgs, root: &Path) -> Result<RunSummary> {
    let manifest = planned.path();
    let quiet = common.quiet;
    let (options, bar) = options_with_bar(planned, common, root, false);
    let summary = planned.run(&options).map_err(|e| explained(e, manifest))?;
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
