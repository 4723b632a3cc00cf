//! `cargo xtask fetch <dataset>… | all [--mirror <URL or dir>] [--import <dir>] [--data-dir <dir>]`:
//! download (or copy from a mirror, or adopt from a folder) the pinned dataset files into
//! the data directory, verified by size and SHA-256, with one progress bar per file.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Result;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use pathreg_data::download::{Downloader, Fetched, Mirror, Progress};
use pathreg_data::registry::{DataConfig, FetchResult, fetch, files_for};

/// Arguments of `cargo xtask fetch`.
#[derive(clap::Args)]
pub struct FetchArgs {
    /// Datasets: mnist, fashion-mnist, cifar10, uci (all 21), uci:<name>, or all.
    /// With --import and no dataset, every manifest is searched.
    pub datasets: Vec<String>,
    /// Mirror tried before the canonical URLs: a folder laid out like the data directory
    /// (e.g. ../shared/datasets) or a base URL (default: $PATHREG_MIRROR).
    #[arg(long)]
    pub mirror: Option<String>,
    /// Adopt files you already have from this folder (looked up as <dir>/<dataset dir>/<path>,
    /// <dir>/<path> or <dir>/<file name>), verified against the manifests.
    #[arg(long)]
    pub import: Option<PathBuf>,
    /// Data directory (default: $PATHREG_DATA, else <workspace>/.pathreg-data).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never use the canonical URLs (mirror, import and files already present only).
    #[arg(long)]
    pub offline: bool,
    /// No progress bars.
    #[arg(long, short)]
    pub quiet: bool,
}

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    style: ProgressStyle,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        let multi = MultiProgress::new();
        if quiet || !std::io::stderr().is_terminal() {
            multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        let style = ProgressStyle::with_template(
            "{prefix:40} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        Bars {
            multi,
            bars: Mutex::new(HashMap::new()),
            style,
        }
    }

    fn event(&self, event: Progress<'_>) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match event {
            Progress::Started { file, total, .. } => {
                let bar = bars
                    .entry(file.to_string())
                    .or_insert_with(|| self.multi.add(ProgressBar::new(total)));
                bar.set_style(self.style.clone());
                bar.set_prefix(file.to_string());
                bar.set_length(total);
                bar.set_position(0);
            }
            Progress::Bytes { file, done, total } => {
                if let Some(bar) = bars.get(file) {
                    if total > 0 {
                        bar.set_length(total);
                    }
                    bar.set_position(done);
                }
            }
            Progress::Finished { file, .. } => {
                if let Some(bar) = bars.remove(file) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
        }
    }
}

/// Runs `cargo xtask fetch`.
pub fn run(args: FetchArgs) -> Result<ExitCode> {
    let mut config = DataConfig::from_env();
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(m) = &args.mirror {
        config.mirror = Some(Mirror::parse(m));
    }
    config.download = !args.offline;
    let bars = Bars::new(args.quiet);
    let progress = |e: Progress<'_>| bars.event(e);
    eprintln!("data directory: {}", config.data_dir.display());
    if let Some(m) = &config.mirror {
        eprintln!("mirror: {m}");
    }

    let mut results: Vec<FetchResult> = Vec::new();
    if let Some(dir) = &args.import {
        if !dir.is_dir() {
            anyhow::bail!("--import {}: not a folder", dir.display());
        }
        let names = if args.datasets.is_empty() {
            vec!["all".to_string()]
        } else {
            args.datasets.clone()
        };
        let downloader = Downloader::new(config.fetch_options());
        let mut not_found = 0usize;
        for name in expand(&names)? {
            let (_, files) = files_for(&name)?;
            for entry in files {
                match downloader.import(dir, &entry, &progress) {
                    Ok(Some(fetched)) => results.push(FetchResult {
                        file: entry.label(),
                        result: Ok(fetched),
                    }),
                    Ok(None) => not_found += 1,
                    Err(e) => results.push(FetchResult {
                        file: entry.label(),
                        result: Err(e),
                    }),
                }
            }
        }
        eprintln!(
            "import from {}: {} file(s) found, {not_found} not there",
            dir.display(),
            results.len()
        );
        if args.datasets.is_empty() {
            return Ok(summary(&results));
        }
    }
    if args.datasets.is_empty() {
        anyhow::bail!(
            "name datasets to fetch (mnist, fashion-mnist, cifar10, uci, uci:<name>, all), or give --import <dir>"
        );
    }
    results.extend(fetch(&args.datasets, &config, &progress)?);
    Ok(summary(&results))
}

/// `all` → each manifest; others unchanged.
fn expand(names: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for n in names {
        if n == "all" {
            out.extend(
                pathreg_data::manifest::builtin()?
                    .into_iter()
                    .map(|m| m.name),
            );
        } else {
            out.push(n.clone());
        }
    }
    Ok(out)
}

fn summary(results: &[FetchResult]) -> ExitCode {
    let mut failed = 0;
    for r in results {
        match &r.result {
            Ok(Fetched { pin, obtained, .. }) => println!(
                "ok      {:50} {:>10} B  sha256 {}…  {obtained}",
                r.file,
                pin.size,
                &pin.sha256[..16]
            ),
            Err(e) => {
                failed += 1;
                println!("FAILED  {:50} {e}", r.file);
            }
        }
    }
    println!(
        "{} file(s) verified, {failed} failed",
        results.len() - failed
    );
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
