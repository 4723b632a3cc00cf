//! `kind = "stacking"` (Figure 6): deep networks built stage by stage from
//! three-layer convex programs, as greedy layerwise training (Belilovsky et
//! al., the paper's [38]) with each stage the vector-output program (11) of
//! Figure 5.
//!
//! Stage `s` trains (11) on `H_{s−1}` (`H_0` the pixels, scaled as in
//! Figure 5), Proposition 1 maps it to a network, and `H_s` is a
//! representation of every training and test row computed from the trained
//! stage, in batches of 1 000 rows. The paper does not say which
//! representation passes on; `[stacking].features` chooses:
//!
//! - `"convex"` (the default): the convex model's gated block terms
//!   `D2_k Σ_j D1_kj X z^s_kjc`, one per non-zero block `(s, k, c)` of
//!   `(Z, Z')`: the features (11) itself predicts with (its output `c` is
//!   their signed sum), so the next stage starts from everything this stage
//!   learned. The width is bounded by `2KC` (800 for Figure 5's `K = 40`),
//!   independent of `m1`.
//! - `"network"`: the second hidden layer of Proposition 1's network, the
//!   same width (the first hidden layer would be `2KCm1`, 80 000, wide).
//!   The stack is then a genuine deep ReLU network, every stage its mapped
//!   network with the last layer replaced by the next stage. Where a block's
//!   constraints hold these units are the convex terms over `√a`; with the
//!   paper's small λ most rows violate some, the network predicts the same
//!   class as (11) on only about a third of the test rows, and stacking on
//!   its units loses accuracy stage after stage (measured in the README).
//!
//! Either is scaled by one scalar so its training rows' root mean square
//! norm is that of `H_0`'s: the products `x_iᵀ z` of every stage then start
//! on the same scale, a stage's learning rate means the same at every
//! depth, and the scalar folds into the next stage's first layer.
//!
//! Every stage is one cache entry (its result and `H_s`) whose key chains
//! the previous stage's key: a longer stack reuses a shorter one's stages,
//! and a run killed inside a stage keeps every stage before it. Stage 1
//! draws its arrangements and batches exactly as Figure 5's convex method
//! does from the same seed, so with the same settings it is that run.
//!
//! The baseline (`[baseline]`) is the network of the same depth trained end
//! to end ([`pathreg_core::multiclass::DeepNetworkModel`]): `S` parallel
//! blocks of `K` sub-networks, each block's second hidden layer feeding the
//! next.

pub mod manifest;
mod report;
mod run;

use crate::PipelineError;
use crate::engine::cache::Cache;
use crate::engine::{Cell, Experiment, Report, Run, list_cells};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
use crate::stages::data::Access;
pub use manifest::StackingExperiment;

/// The registry name.
pub const KIND: &str = "stacking";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[run::STAGE, run::BASELINE_STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(file: &ManifestFile, limits: Limits) -> Result<Box<dyn Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file, limits)?))
}

impl StackingExperiment {
    fn stage_cells(&self) -> Result<Vec<run::StageCell<'_>>, PipelineError> {
        Ok(run::stage_keys(self)?
            .into_iter()
            .enumerate()
            .map(|(i, key)| run::StageCell {
                experiment: self,
                stage: i + 1,
                key,
                input: None,
            })
            .collect())
    }

    fn baseline_cell(&self) -> Result<Option<run::BaselineCell<'_>>, PipelineError> {
        self.baseline
            .map(|b| run::BaselineCell::new(self, b))
            .transpose()
    }
}

impl Experiment for StackingExperiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let stage_cells = self.stage_cells()?;
        let mut baseline = self.baseline_cell()?;
        let computes: Vec<bool> = stage_cells
            .iter()
            .map(|c| !run.cache().contains(&c.key()))
            .collect();
        let baseline_computes = baseline
            .as_ref()
            .is_some_and(|b| !run.cache().contains(&b.key()));
        let data = if computes.contains(&true) || baseline_computes {
            Some(run.stage("data", |_| {
                crate::kinds::images::run::load(&self.images(), Access::Fetch)
            })?)
        } else {
            None
        };
        let target_norm = data.as_ref().map(|d| run::rms_row_norm(d.train.x()));
        let mut stages = Vec::with_capacity(stage_cells.len());
        let mut features = None;
        for (i, mut cell) in stage_cells.into_iter().enumerate() {
            cell.input = match (i, &data, &features, target_norm) {
                (0, Some(d), _, Some(target_norm)) => Some(run::StageInput {
                    train: &d.train,
                    test: &d.test,
                    target_norm,
                }),
                (_, _, Some((train, test)), Some(target_norm)) => Some(run::StageInput {
                    train,
                    test,
                    target_norm,
                }),
                _ => None,
            };
            let computed = run
                .cells_in_turn(std::slice::from_ref(&cell))?
                .pop()
                .expect("one cell, one result");
            drop(cell);
            let mut result = computed.value;
            // Only the next stage reads these features, and only if it is not cached.
            features = match (computes.get(i + 1), &data) {
                (Some(true), Some(d)) => Some(run::next_input(&result, d)?),
                _ => None,
            };
            result.train_features = Vec::new();
            result.test_features = Vec::new();
            stages.push((result, computed.cached));
        }
        let baseline = match baseline.as_mut() {
            Some(cell) => {
                cell.data = data.as_ref();
                run.cells_in_turn(std::slice::from_ref(cell))?
                    .pop()
                    .map(|c| (c.value, c.cached))
            }
            None => None,
        };
        let trained: f64 = stages
            .iter()
            .filter(|s| !s.1)
            .map(|s| s.0.convex.time_s)
            .sum::<f64>()
            + baseline
                .as_ref()
                .filter(|b| !b.1)
                .map_or(0.0, |b| b.0.time_s);
        run.record_time("training", trained);
        let details = report::details(self, &stages, baseline.as_ref(), data.as_ref());
        Ok(Report {
            rows: report::hash_inputs(&stages, baseline.as_ref()),
            details,
            write: Box::new(move |dir| {
                report::write_outputs(dir, self, &stages, baseline.as_ref())
            }),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        let mut listed = list_cells(cache, &self.stage_cells()?);
        if let Some(b) = self.baseline_cell()? {
            listed.extend(list_cells(cache, std::slice::from_ref(&b)));
        }
        Ok(listed)
    }
}
