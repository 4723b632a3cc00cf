//! `kind = "lowrank"` (Figure 4): Theorem 2 on synthetic low-rank data — per
//! sweep point the certified optimum on X, the objective on X of the network
//! trained on X̂_r, the bound (10) and the arrangement counts.

pub mod manifest;
mod report;
mod run;

use crate::PipelineError;
use crate::engine::cache::Cache;
use crate::engine::{Report, Run, list_cells};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
use crate::stages::arrangements;
pub use manifest::LowRankExperiment;

/// The registry name.
pub const KIND: &str = "lowrank";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[arrangements::STAGE, run::STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(
    file: &ManifestFile,
    limits: Limits,
) -> Result<Box<dyn crate::engine::Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file, limits)?))
}

impl crate::engine::Experiment for LowRankExperiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let points = run.stage("data", |_| run::cells(self))?;
        let cells: Vec<_> = run
            .cells(&points)?
            .into_iter()
            .map(|c| (c.value, c.cached))
            .collect();
        let details = serde_json::json!({
            "description": self.description,
            "cells": cells.iter().map(|c| &c.0).collect::<Vec<_>>(),
        });
        Ok(Report {
            rows: report::hash_inputs(self, &cells),
            details,
            write: Box::new(move |dir| {
                let datasets: Vec<_> = points.iter().map(|p| &p.data).collect();
                report::write_outputs(dir, self, &datasets, &cells)
            }),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        Ok(list_cells(cache, &run::cells(self)?))
    }
}
