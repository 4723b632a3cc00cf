//! `kind = "convex_vs_nonconvex"` (Table 2): per sweep point, the certified
//! global optimum of the convex program (21) and `runs` non-convex training
//! runs per K, compared on the training objective (4).

pub mod manifest;
mod report;
mod run;
mod success;

use crate::PipelineError;
use crate::engine::cache::Cache;
use crate::engine::{Report, Run};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
use crate::stages::arrangements;
use crate::stages::data::Access;
pub use manifest::Experiment;

/// The registry name.
pub const KIND: &str = "convex_vs_nonconvex";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[arrangements::STAGE, run::CONVEX_STAGE, run::NONCONVEX_STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(
    file: &ManifestFile,
    limits: Limits,
) -> Result<Box<dyn crate::engine::Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file, limits)?))
}

impl crate::engine::Experiment for Experiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let (inputs, sets, results) = run::run_cells(self, run)?;
        // Checked before anything is reported: a run below the optimum is a bug.
        let gaps = success::run_gaps(&inputs, &results)?;
        Ok(Report {
            rows: report::hash_inputs(&results),
            details: report::details(&inputs, &sets, &results),
            write: Box::new(move |dir| report::write(dir, &inputs, &results, &gaps)),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        let inputs = run::inputs(self, Access::LocalOnly)?;
        Ok(run::labelled_keys(&inputs)
            .into_iter()
            .map(|(label, key)| (label, cache.contains(&key)))
            .collect())
    }
}
