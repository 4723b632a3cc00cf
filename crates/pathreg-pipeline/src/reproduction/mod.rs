//! The reproduction report (`cargo xtask report`): one page over every
//! experiment, in the paper's order, built only from what the runs left on
//! disk (`outputs/<name>/results.csv`, `table.md`, `run.json`, the figures
//! and `outputs/results.lock`). Nothing is trained or solved here: each of
//! the paper's claims becomes a comparison on the recorded results, whose
//! status is *holds*, *fails* or *not run* (with the command that runs it).
//!
//! - [`claims`]: the experiments, their key figures, headline numbers and
//!   claims;
//! - [`document`]: the report as blocks, rendered to Markdown, to one
//!   self-contained HTML page (inline SVG), and each experiment's headline
//!   table.md table to a booktabs `table.tex`;
//! - [`records`]: reading results.csv and run.json.

mod claims;
mod document;
mod records;

use std::path::{Path, PathBuf};

use crate::PipelineError;
use crate::engine::results_lock::LockFile;

pub use claims::Status;

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// `outputs/REPORT.md`.
    pub markdown: PathBuf,
    /// `outputs/report.html`.
    pub html: PathBuf,
    /// Every `outputs/<name>/table.tex`.
    pub tables: Vec<PathBuf>,
    /// Claims that hold, fail and were not run.
    pub counts: (usize, usize, usize),
}

/// Writes `REPORT.md`, `report.html` and the experiments' `table.tex` from
/// the results under `outputs` and the hash lock at `lock`; manifests named
/// in run.json (for their published values) are read relative to `workspace`.
pub fn write_report(
    outputs: &Path,
    lock: &Path,
    workspace: &Path,
) -> Result<ReportSummary, PipelineError> {
    let lock = if lock.exists() {
        Some(LockFile::read(lock)?)
    } else {
        None
    };
    let sections = claims::sections(outputs, workspace, lock.as_ref())?;
    let mut tables = Vec::new();
    for section in sections.iter().filter(|s| s.ran()) {
        if let Some(tex) = document::latex_table(outputs, section)? {
            let path = outputs.join(section.name).join("table.tex");
            pathreg_report::write_atomic(&path, tex.as_bytes())?;
            tables.push(path);
        }
    }
    let doc = document::Document::new(&sections);
    let markdown = outputs.join("REPORT.md");
    pathreg_report::write_atomic(&markdown, doc.markdown(outputs).as_bytes())?;
    let html = outputs.join("report.html");
    pathreg_report::write_atomic(&html, doc.html(outputs)?.as_bytes())?;
    let mut counts = (0, 0, 0);
    for claim in sections.iter().flat_map(|s| &s.claims) {
        match claim.status {
            Status::Holds => counts.0 += 1,
            Status::Fails => counts.1 += 1,
            Status::NotRun => counts.2 += 1,
        }
    }
    Ok(ReportSummary {
        markdown,
        html,
        tables,
        counts,
    })
}
