//! `cargo xtask report`: the reproduction report over every experiment's
//! outputs (`outputs/REPORT.md`, `outputs/report.html` and each
//! experiment's `table.tex`), from what is on disk only.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;

/// Arguments of `cargo xtask report`.
#[derive(clap::Args)]
pub struct ReportArgs {
    /// The results folder (default: <workspace>/outputs).
    #[arg(long)]
    outputs: Option<PathBuf>,
    /// The hash lock (default: <outputs>/results.lock).
    #[arg(long)]
    lock: Option<PathBuf>,
}

/// Runs `cargo xtask report`.
pub fn run(args: ReportArgs, root: &Path) -> Result<ExitCode> {
    let outputs = args.outputs.unwrap_or_else(|| root.join("outputs"));
    let lock = args.lock.unwrap_or_else(|| outputs.join("results.lock"));
    let summary = pathreg_pipeline::reproduction::write_report(&outputs, &lock, root)?;
    let (holds, fails, not_run) = summary.counts;
    println!(
        "wrote {} and {} and {} table.tex files: {holds} claims hold, {fails} fail, {not_run} not run",
        summary.markdown.display(),
        summary.html.display(),
        summary.tables.len()
    );
    Ok(ExitCode::SUCCESS)
}
