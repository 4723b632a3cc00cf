//! `kind = "spiral"` (Figure 1, Appendix A.1): decision boundaries of three
//! globally optimized convex models on the two-arm spiral, with squared loss
//! and labels ±1:
//!
//! - (a) the two-layer convex program of Pilanci & Ergen 2020 ([29]) over
//!   `P` sampled arrangements: (21) over one-neuron triples with `I = +1`
//!   and `D2 = D1` ([`pathreg_core::gates::GatedArrangements::sample_two_layer`]),
//!   mapped to the two-layer network `Σ_k (x u_k)+ α_k` with weight decay;
//! - (b) the three-layer program with the decoupled second-layer constraints
//!   the paper's Section 5 attributes to the weight-decay model of [17]
//!   ([`pathreg_core::convex::Coupling::PerNeuron`]). The paper does not print
//!   [17]'s program, so this is its description implemented as a named
//!   variant: the same triples, variables and group norm as (c), one
//!   second-layer inequality per first-layer neuron;
//! - (c) ours: the path-regularized program (21).
//!
//! The three-layer triples come from `P1·P2` gate draws: `P1` first layers
//! `W1 ∈ R^{d×m1}` (the masks `D1_j`), each with `P2` second layers
//! `w2 ∈ R^{m1}` (the signs `I` and the mask `D2`), duplicates kept once.
//! Every solve is certified against all of its sampled triples, and every
//! optimum is checked against its mapped network's objective. The grid's
//! masks come from the same gates, so each panel is the convex model's own
//! decision boundary; the mapped network's sign is compared with it at every
//! grid point.

pub mod manifest;
mod report;
mod run;

use crate::PipelineError;
use crate::engine::cache::Cache;
use crate::engine::{Experiment, Report, Run, list_cells};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
pub use manifest::SpiralExperiment;

/// The registry name.
pub const KIND: &str = "spiral";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[run::STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(file: &ManifestFile, _limits: Limits) -> Result<Box<dyn Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file)?))
}

impl SpiralExperiment {
    fn cells(&self) -> Vec<run::ModelCell<'_>> {
        run::SpiralModelKind::ALL
            .iter()
            .map(|m| run::ModelCell::new(self, *m))
            .collect()
    }
}

impl Experiment for SpiralExperiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let cells = self.cells();
        let rows: Vec<report::Row> = run
            .cells_in_turn(&cells)?
            .into_iter()
            .zip(&cells)
            .map(|(c, cell)| (cell.model, c.value, c.cached))
            .collect();
        run.record_time(
            "solves",
            rows.iter().filter(|r| !r.2).map(|r| r.1.time_s).sum(),
        );
        let data = run::spiral(self)?;
        Ok(Report {
            rows: report::hash_inputs(&rows),
            details: report::details(self, &rows),
            write: Box::new(move |dir| report::write_outputs(dir, self, &rows, &data)),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        Ok(list_cells(cache, &self.cells()))
    }
}
