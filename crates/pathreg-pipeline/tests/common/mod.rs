//! What the pipeline integration tests share: the workspace, run options
//! and a manifest run on a pool of a given size.

#![allow(dead_code)] // each test binary uses its own part

use std::path::{Path, PathBuf};

use pathreg_pipeline::{PipelineError, RunOptions, RunSummary, run_manifest};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Quiet options writing under `outputs`, caching under `cache` (none: no
/// cache).
pub fn options(outputs: &Path, cache: Option<PathBuf>) -> RunOptions {
    RunOptions {
        outputs_root: outputs.to_path_buf(),
        workspace_root: workspace_root(),
        cache_root: cache,
        progress: Box::new(|_| {}),
    }
}

/// Runs the manifest at `path` on a pool of `threads` threads.
pub fn run_on(
    path: &Path,
    outputs: &Path,
    cache: Option<PathBuf>,
    threads: usize,
) -> Result<RunSummary, PipelineError> {
    let options = options(outputs, cache);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| run_manifest(path, &options))
}
