//! `kind = "sparsity_path"` (issue #15, Section 2.1's "parsimonious convex
//! model"): the group sparsity of the constrained program (21) over `K`
//! sampled arrangements along a decreasing list of β, solved by ADMM with a
//! certified duality gap, with Proposition 1's network checked at each β.

pub mod manifest;
mod report;
mod run;

use crate::PipelineError;
use crate::engine::cache::Cache;
use crate::engine::{Report, Run, list_cells};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
use crate::stages::data::Access;
pub use manifest::SparsityPathExperiment;

/// The registry name.
pub const KIND: &str = "sparsity_path";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[run::STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(
    file: &ManifestFile,
    _limits: Limits,
) -> Result<Box<dyn crate::engine::Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file)?))
}

impl crate::engine::Experiment for SparsityPathExperiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let data = run.stage("data", |_| run::load_data(self, Access::Fetch))?;
        let cell = run::PathCell {
            experiment: self,
            data: &data,
        };
        let computed = run
            .cells(std::slice::from_ref(&cell))?
            .pop()
            .ok_or_else(|| PipelineError::MissingData(format!("sparsity path {}", self.dataset)))?;
        let path = computed.value;
        Ok(Report {
            rows: report::hash_inputs(&path),
            details: report::details(&data, &path, computed.cached),
            write: Box::new(move |dir| report::write_outputs(dir, self, &path)),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        let data = run::load_data(self, Access::LocalOnly)?;
        Ok(list_cells(
            cache,
            &[run::PathCell {
                experiment: self,
                data: &data,
            }],
        ))
    }
}
