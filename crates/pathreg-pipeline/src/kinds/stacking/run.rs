//! Figure 6's cells: one per stage, each keyed by its settings and the key
//! of the stage before it, and the end-to-end baseline.

use std::time::Instant;

use ndarray::{Array2, ArrayView2, Axis};
use pathreg_core::multiclass::{DeepNetworkModel, DeepShape, Grouping, ImageSet, Masks, correct};
use pathreg_solvers::Optimizer;
use pathreg_solvers::multiclass::ImageTrainSettings;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::manifest::{Baseline, BaselineOptimizer, Features, StackingExperiment};
use crate::PipelineError;
use crate::engine::Cell;
use crate::engine::cache::{Cache, CacheKey};
use crate::engine::seeds::derive_seed;
use crate::kinds::images::manifest::MethodName;
use crate::kinds::images::run::{
    ImageData, MethodResult, TrainedConvex, train_convex, train_model,
};

/// The cache stage of one trained stage and its features.
pub const STAGE: &str = "stacking_stage";
/// The cache stage of the end-to-end baseline.
pub const BASELINE_STAGE: &str = "stacking_baseline";
/// Cache schema version: bump when a cell computes something different.
const VERSION: u32 = 1;
/// Classes of every dataset of this kind.
const CLASSES: usize = 10;
/// Rows whose features are computed at once.
const FEATURE_BATCH: usize = 1000;

/// One trained stage (cached as the `stacking_stage` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StageResult {
    /// 1-based.
    pub stage: usize,
    /// Width of the stage's input `H_{s−1}`.
    pub input_width: usize,
    /// The stage's (11): curve, evaluations, Proposition 1's check.
    pub convex: MethodResult,
    /// Accuracy of the stage's mapped network on its training input.
    pub network_train_accuracy: f64,
    /// Accuracy of the stage's mapped network on its test input: the deep
    /// ReLU network stacked so far, end to end.
    pub network_test_accuracy: f64,
    /// Width of `H_s` (the non-zero blocks).
    pub output_width: usize,
    /// The scalar `H_s` was multiplied by.
    pub feature_scale: f64,
    /// Seconds to compute `H_s` on every row.
    pub features_s: f64,
    /// `H_s` of the training rows, row-major (emptied once passed on).
    pub train_features: Vec<f32>,
    /// `H_s` of the test rows, row-major (emptied once passed on).
    pub test_features: Vec<f32>,
}

/// A stage's input `H_{s−1}`, and the root mean square row norm every
/// stage's features are scaled to (that of `H_0`'s training rows).
#[derive(Clone, Copy)]
pub(super) struct StageInput<'a> {
    pub train: &'a ImageSet,
    pub test: &'a ImageSet,
    pub target_norm: f64,
}

/// One stage, as a cell of the engine's loop.
pub(super) struct StageCell<'a> {
    pub experiment: &'a StackingExperiment,
    pub stage: usize,
    pub key: CacheKey,
    pub input: Option<StageInput<'a>>,
}

/// Every stage's key, in order: each chains the key before it, so a stage
/// is reused exactly when it and every stage before it are unchanged, and a
/// longer stack reuses a shorter one's stages.
pub(super) fn stage_keys(experiment: &StackingExperiment) -> Result<Vec<CacheKey>, PipelineError> {
    let pins = crate::stages::data::pins(&experiment.data.dataset)?;
    let mut keys: Vec<CacheKey> = Vec::with_capacity(experiment.stacking.stages);
    for stage in 1..=experiment.stacking.stages {
        let params = serde_json::json!({
            "seed": experiment.seed, "data": experiment.data, "model": experiment.model,
            "training": experiment.training, "method": experiment.stacking.method,
            "features": experiment.stacking.features, "stage": stage,
        });
        let mut inputs: Vec<&str> = pins.iter().map(String::as_str).collect();
        if let Some(previous) = keys.last() {
            inputs.push(&previous.hash);
        }
        keys.push(CacheKey::new(STAGE, VERSION, &params, &inputs));
    }
    Ok(keys)
}

impl StageCell<'_> {
    /// The labels of one of the stage's generators: stage 1 draws exactly
    /// what Figure 5's convex method draws from the same seed (so with the
    /// same settings it is that run), later stages add their number.
    fn seed(&self, labels: &[&str]) -> u64 {
        let stage = format!("stage {}", self.stage);
        let mut all = labels.to_vec();
        if self.stage > 1 {
            all.push(&stage);
        }
        derive_seed(self.experiment.seed, &all)
    }

    /// `H_s` of every row of `set` and the mapped network's outputs there.
    fn features(
        &self,
        trained: &TrainedConvex,
        set: &ImageSet,
        masks: &Masks,
    ) -> (Array2<f32>, Array2<f32>) {
        let mapped = &trained.mapped;
        let (hidden, outputs) = mapped
            .model
            .second_layer_and_outputs(&mapped.params, set.x());
        match self.experiment.stacking.features {
            Features::Network => (hidden, outputs),
            Features::Convex => {
                let (k, classes) = (trained.model.k(), trained.model.classes());
                let columns: Vec<usize> = mapped
                    .blocks
                    .iter()
                    .map(|&(s, kk, c)| (s * k + kk) * classes + c)
                    .collect();
                let rows: Vec<usize> = (0..set.n()).collect();
                let mut out = Array2::zeros((set.n(), columns.len()));
                for (block_rows, mut out_block) in rows
                    .chunks(FEATURE_BATCH)
                    .zip(out.axis_chunks_iter_mut(Axis(0), FEATURE_BATCH))
                {
                    let terms =
                        trained
                            .model
                            .block_outputs(&trained.params, set, masks, block_rows);
                    for (j, &col) in columns.iter().enumerate() {
                        out_block.column_mut(j).assign(&terms.column(col));
                    }
                }
                (out, outputs)
            }
        }
    }
}

/// `sqrt((1/n) Σ_i ‖x_i‖²)`, the root mean square row norm (summed in
/// row order).
pub(super) fn rms_row_norm(x: ArrayView2<f32>) -> f64 {
    let rows = x.nrows().max(1) as f64;
    (x.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>() / rows).sqrt()
}

/// The stage's features as the next stage's data, with `data`'s labels.
pub(super) fn next_input(
    result: &StageResult,
    data: &ImageData,
) -> Result<(ImageSet, ImageSet), PipelineError> {
    let set = |features: &[f32], labels: &ImageSet| -> Result<ImageSet, PipelineError> {
        let x = Array2::from_shape_vec((labels.n(), result.output_width), features.to_vec())
            .map_err(|e| {
                PipelineError::Core(pathreg_core::CoreError::Shape(format!(
                    "stage {}'s features: {e}",
                    result.stage
                )))
            })?;
        Ok(ImageSet::new(x, labels.labels().to_vec(), CLASSES)?)
    };
    Ok((
        set(&result.train_features, &data.train)?,
        set(&result.test_features, &data.test)?,
    ))
}

impl Cell for StageCell<'_> {
    type Output = StageResult;

    fn key(&self) -> CacheKey {
        self.key.clone()
    }

    fn label(&self) -> String {
        format!(
            "{} stage {} ({})",
            self.experiment.data.dataset,
            self.stage,
            self.experiment.stacking.method.name.key()
        )
    }

    fn compute(&self, _cache: &Cache) -> Result<StageResult, PipelineError> {
        let input = self
            .input
            .ok_or_else(|| PipelineError::MissingData(self.label()))?;
        let e = self.experiment;
        let method = e.stacking.method;
        let grouping = if method.name == MethodName::ConvexSgdOneVsRest {
            Grouping::OneVsRest
        } else {
            Grouping::Joint
        };
        let optimizer = method.optimizer(e.training.momentum).ok_or_else(|| {
            PipelineError::MethodMismatch(format!("{} has no optimizer", method.name.key()))
        })?;
        let settings = ImageTrainSettings {
            optimizer,
            epochs: e.training.epochs,
            batch_size: e.training.batch_size,
            evaluations_per_epoch: e.training.evaluations_per_epoch,
        };
        let generators = (
            ChaCha8Rng::seed_from_u64(self.seed(&["arrangements"])),
            ChaCha8Rng::seed_from_u64(self.seed(&["batches", method.name.key()])),
        );
        let trained = train_convex(
            (input.train, input.test),
            &e.model,
            grouping,
            &settings,
            generators,
        )?;
        if trained.mapped.blocks.is_empty() {
            return Err(PipelineError::DeadStage {
                stage: self.stage,
                reason: "every block of (Z, Z') is zero".into(),
            });
        }
        let start = Instant::now();
        let (mut train_h, train_out) = self.features(&trained, input.train, &trained.train_masks);
        let (mut test_h, test_out) = self.features(&trained, input.test, &trained.test_masks);
        let train_norm = rms_row_norm(train_h.view());
        let scale = input.target_norm / train_norm;
        if !(scale.is_finite() && scale > 0.0) {
            return Err(PipelineError::DeadStage {
                stage: self.stage,
                reason: format!(
                    "its features on the training rows have root mean square norm {train_norm:e}"
                ),
            });
        }
        for h in [&mut train_h, &mut test_h] {
            h.mapv_inplace(|v| (f64::from(v) * scale) as f32);
        }
        let features_s = start.elapsed().as_secs_f64();
        let accuracy = |out: &Array2<f32>, set: &ImageSet| {
            correct(out.view(), set.labels()) as f64 / set.n().max(1) as f64
        };
        let mut convex = trained.result;
        convex.peak_resident_bytes = crate::engine::provenance::peak_resident_bytes();
        Ok(StageResult {
            stage: self.stage,
            input_width: input.train.d(),
            network_train_accuracy: accuracy(&train_out, input.train),
            network_test_accuracy: accuracy(&test_out, input.test),
            output_width: train_h.ncols(),
            feature_scale: scale,
            features_s,
            train_features: train_h.into_raw_vec_and_offset().0,
            test_features: test_h.into_raw_vec_and_offset().0,
            convex,
        })
    }
}

/// The deep network of the same depth trained end to end.
pub(super) struct BaselineCell<'a> {
    pub experiment: &'a StackingExperiment,
    pub baseline: Baseline,
    pub key: CacheKey,
    pub data: Option<&'a ImageData>,
}

impl<'a> BaselineCell<'a> {
    /// The baseline of `experiment`, keyed by the data and every setting it reads.
    pub fn new(
        experiment: &'a StackingExperiment,
        baseline: Baseline,
    ) -> Result<Self, PipelineError> {
        let pins = crate::stages::data::pins(&experiment.data.dataset)?;
        let refs: Vec<&str> = pins.iter().map(String::as_str).collect();
        let t = &experiment.training;
        let params = serde_json::json!({
            "seed": experiment.seed, "data": experiment.data, "baseline": baseline,
            "stages": experiment.stacking.stages, "batch_size": t.batch_size,
            "momentum": t.momentum, "evaluations_per_epoch": t.evaluations_per_epoch,
        });
        Ok(Self {
            experiment,
            baseline,
            key: CacheKey::new(BASELINE_STAGE, VERSION, &params, &refs),
            data: None,
        })
    }
}

impl Cell for BaselineCell<'_> {
    type Output = MethodResult;

    fn key(&self) -> CacheKey {
        self.key.clone()
    }

    fn label(&self) -> String {
        format!(
            "{} end-to-end baseline ({} blocks)",
            self.experiment.data.dataset, self.experiment.stacking.stages
        )
    }

    fn compute(&self, _cache: &Cache) -> Result<MethodResult, PipelineError> {
        let data = self
            .data
            .ok_or_else(|| PipelineError::MissingData(self.label()))?;
        let (e, b) = (self.experiment, self.baseline);
        let model = DeepNetworkModel::new(
            DeepShape {
                d: data.train.d(),
                stages: e.stacking.stages,
                k: b.k,
                m1: b.m1,
                m2: b.m2,
                classes: CLASSES,
            },
            b.beta,
        )?;
        let init = model.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(derive_seed(
            e.seed,
            &["baseline init"],
        )));
        let settings = ImageTrainSettings {
            optimizer: match b.optimizer {
                BaselineOptimizer::Sgd => Optimizer::Sgd {
                    lr: b.lr,
                    momentum: e.training.momentum,
                },
                BaselineOptimizer::Adam => Optimizer::adam(b.lr),
            },
            epochs: b.epochs,
            batch_size: e.training.batch_size,
            evaluations_per_epoch: e.training.evaluations_per_epoch,
        };
        let mut batches = ChaCha8Rng::seed_from_u64(derive_seed(e.seed, &["batches", "baseline"]));
        let (_, mut result) = train_model(
            &model,
            init,
            (&data.train, &()),
            (&data.test, &()),
            0.0,
            &settings,
            &mut batches,
        )?;
        result.peak_resident_bytes = crate::engine::provenance::peak_resident_bytes();
        Ok(result)
    }
}
