//! `kind = "images"` (Figure 5): ten-class image classification on the
//! official splits of Fashion-MNIST, MNIST or CIFAR-10. The convex program
//! (11) with vector outputs against the non-convex network trained by SGD,
//! Adam, Adagrad and Adadelta under path regularization and by SGD under
//! weight decay, as test accuracy against training wall time, on the
//! float32 engine [`pathreg_core::multiclass`].
//!
//! Every method is one cell, cached by its settings; cells run one at a
//! time so each one's wall time is its own.

pub mod manifest;
mod report;
pub(crate) mod run;

use crate::PipelineError;
use crate::engine::cache::Cache;
use crate::engine::{Experiment, Report, Run, list_cells};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
use crate::stages::data::Access;
pub use manifest::ImagesExperiment;

/// The registry name.
pub const KIND: &str = "images";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[run::STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(file: &ManifestFile, limits: Limits) -> Result<Box<dyn Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file, limits)?))
}

impl ImagesExperiment {
    fn cells(&self) -> Result<Vec<run::MethodCell<'_>>, PipelineError> {
        self.methods
            .iter()
            .map(|m| run::MethodCell::new(self, *m))
            .collect()
    }
}

impl Experiment for ImagesExperiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let mut cells = self.cells()?;
        let needs_data = cells
            .iter()
            .any(|c| !run.cache().contains(&crate::engine::Cell::key(c)));
        let data = if needs_data {
            Some(run.stage("data", |_| run::load(self, Access::Fetch))?)
        } else {
            None
        };
        for cell in &mut cells {
            cell.data = data.as_ref();
        }
        let computed = run.cells_in_turn(&cells)?;
        let rows: Vec<report::Row> = computed
            .into_iter()
            .zip(&cells)
            .map(|(c, cell)| (cell.method, c.value, c.cached))
            .collect();
        run.record_time(
            "training",
            rows.iter().filter(|r| !r.2).map(|r| r.1.time_s).sum(),
        );
        let peak = rows.iter().filter_map(|r| r.1.peak_resident_bytes).max();
        let details = report::details(self, &rows, data.as_ref(), peak);
        Ok(Report {
            rows: report::hash_inputs(&rows),
            details,
            write: Box::new(move |dir| report::write_outputs(dir, self, &rows, peak)),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        Ok(list_cells(cache, &self.cells()?))
    }
}
