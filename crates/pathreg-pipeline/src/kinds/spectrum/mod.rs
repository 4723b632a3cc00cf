//! `kind = "spectrum"` (Figure 7, Appendix A.9): normalized singular values
//! `σ_i/σ_1` of training data matrices and the ranks that hold 90 % and 99 %
//! of the spectrum's energy `Σ σ_i²`.

pub mod manifest;
mod report;
mod run;

use crate::PipelineError;
use crate::engine::cache::Cache;
use crate::engine::{Report, Run, list_cells};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
pub use manifest::SpectrumExperiment;

/// The registry name.
pub const KIND: &str = "spectrum";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[run::STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(
    file: &ManifestFile,
    _limits: Limits,
) -> Result<Box<dyn crate::engine::Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file)?))
}

impl SpectrumExperiment {
    fn cells(&self) -> Result<Vec<run::DatasetCell>, PipelineError> {
        self.spectrum
            .datasets
            .iter()
            .map(|name| run::DatasetCell::new(name, self.spectrum.center))
            .collect()
    }
}

impl crate::engine::Experiment for SpectrumExperiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        None
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let cells = self.cells()?;
        let spectra: Vec<(String, run::Spectrum, bool)> = run
            .cells(&cells)?
            .into_iter()
            .zip(&cells)
            .map(|(computed, cell)| (cell.name.clone(), computed.value, computed.cached))
            .collect();
        run.record_time("load", spectra.iter().map(|s| s.1.load_s).sum());
        run.record_time("spectrum", spectra.iter().map(|s| s.1.spectrum_s).sum());
        Ok(Report {
            rows: report::hash_inputs(&spectra),
            details: report::details(&spectra),
            write: Box::new(move |dir| report::write_outputs(dir, self, &spectra)),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        Ok(list_cells(cache, &self.cells()?))
    }
}
