//! Figure 5's cells: one method trained on the dataset, with its curve, its
//! final evaluation and, for (11), Proposition 1's network checked on the
//! test rows.

use std::time::Instant;

use ndarray::Array2;
use pathreg_core::Regularizer;
use pathreg_core::multiclass::{
    ConvexModel, Grouping, ImageSet, MapCheck, MappedNetwork, Masks, Model, NetworkModel,
    NetworkShape, check_map, to_network,
};
use pathreg_core::unconstrained::SampledArrangements;
use pathreg_data::Dataset;
use pathreg_data::registry;
use pathreg_data::split::Split;
use pathreg_solvers::multiclass::{
    Evaluation, ImageCurvePoint, ImageTrainSettings, Prepared, evaluate, train_images,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::manifest::{ImageModel, ImagesExperiment, Method, MethodName, Scaling};
use crate::PipelineError;
use crate::engine::Cell;
use crate::engine::cache::{Cache, CacheKey};
use crate::engine::seeds::derive_seed;
use crate::stages::data::Access;

/// The cache stage of one trained method.
pub const STAGE: &str = "images";
/// Cache schema version: bump when a cell computes something different.
const VERSION: u32 = 3;
/// Classes of every dataset of this kind.
const CLASSES: usize = 10;

/// The training and test rows as float32, scaled.
pub(crate) struct ImageData {
    pub train: ImageSet,
    pub test: ImageSet,
    /// `(file, sha256)` of every file read.
    pub files: Vec<(String, String)>,
    pub load_s: f64,
}

/// Loads the official split of the experiment's dataset, subsamples and
/// scales it.
pub(crate) fn load(
    experiment: &ImagesExperiment,
    access: Access,
) -> Result<ImageData, PipelineError> {
    let start = Instant::now();
    let data = &experiment.data;
    let mut config = access.config();
    config.split = Some(Split::Official);
    let loaded =
        registry::load(&data.dataset, &config).map_err(|e| access.explain(&data.dataset, e))?;
    let mut train_rows: Vec<usize> = (0..loaded.train.n()).collect();
    if let Some(keep) = data.train_rows.filter(|&r| r < train_rows.len()) {
        train_rows.shuffle(&mut ChaCha8Rng::seed_from_u64(derive_seed(
            experiment.seed,
            &["train_rows"],
        )));
        train_rows.truncate(keep);
        train_rows.sort_unstable();
    }
    let test_rows: Vec<usize> =
        (0..loaded.test.n().min(data.test_rows.unwrap_or(usize::MAX))).collect();
    let (mut train_x, train_labels) = rows_f32(&loaded.train, &train_rows, &data.dataset)?;
    let (mut test_x, test_labels) = rows_f32(&loaded.test, &test_rows, &data.dataset)?;
    if data.scaling == Scaling::Standardize {
        let count = train_x.len().max(1) as f64;
        let mean = train_x.iter().map(|v| f64::from(*v)).sum::<f64>() / count;
        let var = train_x
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / count;
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        for x in [&mut train_x, &mut test_x] {
            x.mapv_inplace(|v| ((f64::from(v) - mean) / sd) as f32);
        }
    }
    Ok(ImageData {
        train: ImageSet::new(train_x, train_labels, CLASSES)?,
        test: ImageSet::new(test_x, test_labels, CLASSES)?,
        files: loaded
            .files
            .iter()
            .map(|f| (f.file.clone(), f.sha256.clone()))
            .collect(),
        load_s: start.elapsed().as_secs_f64(),
    })
}

/// `rows` of `data` as float32 features and class labels.
fn rows_f32(
    data: &Dataset,
    rows: &[usize],
    name: &str,
) -> Result<(Array2<f32>, Vec<usize>), PipelineError> {
    let x = Array2::from_shape_fn((rows.len(), data.d()), |(i, j)| data.x[[rows[i], j]] as f32);
    let labels = rows
        .iter()
        .map(|&r| {
            let y = data.y[r];
            if y.fract() == 0.0 && (0.0..CLASSES as f64).contains(&y) {
                Ok(y as usize)
            } else {
                Err(PipelineError::Core(pathreg_core::CoreError::Shape(
                    format!(
                        "{name}: row {r} has label {y}, not a class 0..{}",
                        CLASSES - 1
                    ),
                )))
            }
        })
        .collect::<Result<_, _>>()?;
    Ok((x, labels))
}

/// Proposition 1's network for a trained (11), checked on the test rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MapReport {
    /// Sub-networks of the mapped network (the non-zero blocks).
    pub subnetworks: usize,
    /// Its path regularizer `Σ_{s,k,c} ‖Z^s_kc‖_F` (without β).
    pub path_regularizer: f64,
    /// The comparison with the convex model on the test rows.
    pub check: MapCheck,
}

/// What ADMM certified for (21) with vector outputs, on the objective's
/// scale in this kind (MSELoss plus `β` times the group norms: ADMM's
/// `½‖F − Y‖² + β'' Σ‖Z‖` times `2/(nC)`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct ConstrainedReport {
    pub iterations: usize,
    /// Both tolerances were met.
    pub converged: bool,
    /// The restored, feasible iterate's objective.
    pub objective: f64,
    /// The certified lower bound on the optimum over these arrangements.
    pub lower_bound: f64,
    pub relative_gap: f64,
    /// `h/Σ‖Z‖` of the returned point (float64, ADMM's own masks).
    pub violation: f64,
    /// Groups whose norm is not zero, and all groups.
    pub active_groups: usize,
    pub groups: usize,
}

impl MapReport {
    /// `mapped`, the network of `params`, checked against `model` on every
    /// test row.
    fn on_test_rows(
        model: &ConvexModel,
        params: &[f32],
        mapped: &MappedNetwork,
        test: &ImageSet,
        test_masks: &Masks,
    ) -> Self {
        let rows: Vec<usize> = (0..test.n()).collect();
        MapReport {
            subnetworks: mapped.blocks.len(),
            path_regularizer: mapped.path_regularizer,
            check: check_map(model, params, mapped, test, test_masks, &rows),
        }
    }
}

/// One method's result (cached as the `images` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MethodResult {
    pub curve: Vec<ImageCurvePoint>,
    pub epochs_run: usize,
    pub diverged: bool,
    /// Training wall time, seconds (evaluations excluded).
    pub time_s: f64,
    pub train: Evaluation,
    pub test: Evaluation,
    pub parameters: usize,
    /// Masks of (11) on the training and test rows, seconds (0 for networks).
    pub prepare_s: f64,
    pub map: Option<MapReport>,
    /// The constrained program's certificate (`convex_admm` only).
    #[serde(default)]
    pub constrained: Option<ConstrainedReport>,
    /// The process's peak resident memory when the method finished (cells
    /// run in turn, so the largest over a run's methods is its peak).
    pub peak_resident_bytes: Option<u64>,
}

/// One method of the manifest, as a cell of the engine's loop.
pub(super) struct MethodCell<'a> {
    pub experiment: &'a ImagesExperiment,
    pub method: Method,
    pub data: Option<&'a ImageData>,
    key: CacheKey,
}

impl<'a> MethodCell<'a> {
    /// The cell of `method`, keyed by the dataset's pinned files and every
    /// setting the training reads.
    pub fn new(experiment: &'a ImagesExperiment, method: Method) -> Result<Self, PipelineError> {
        let pins = crate::stages::data::pins(&experiment.data.dataset)?;
        let refs: Vec<&str> = pins.iter().map(String::as_str).collect();
        let mut params = serde_json::json!({
            "seed": experiment.seed, "data": experiment.data, "model": experiment.model,
            "training": experiment.training, "method": method,
        });
        // (21)'s cell reads the solver's settings and revision, not the training's.
        if method.name == MethodName::ConvexAdmm {
            params["constrained"] = serde_json::json!(experiment.constrained);
            params["admm_revision"] = serde_json::json!(pathreg_solvers::admm::REVISION);
        }
        Ok(Self {
            experiment,
            method,
            data: None,
            key: CacheKey::new(STAGE, VERSION, &params, &refs),
        })
    }

    fn settings(&self) -> Result<ImageTrainSettings, PipelineError> {
        let t = &self.experiment.training;
        let optimizer = self.method.optimizer(t.momentum).ok_or_else(|| {
            PipelineError::MethodMismatch(format!(
                "{} is not trained by an optimizer",
                self.label()
            ))
        })?;
        Ok(ImageTrainSettings {
            optimizer,
            epochs: t.epochs,
            batch_size: t.batch_size,
            evaluations_per_epoch: t.evaluations_per_epoch,
        })
    }

    /// The arrangements' generator, shared by (11) and (21).
    fn arrangement_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(derive_seed(self.experiment.seed, &["arrangements"]))
    }

    fn batch_rng(&self) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(derive_seed(
            self.experiment.seed,
            &["batches", self.method.name.key()],
        ))
    }

    fn convex(&self, data: &ImageData, grouping: Grouping) -> Result<MethodResult, PipelineError> {
        let trained = train_convex(
            (&data.train, &data.test),
            &self.experiment.model,
            grouping,
            &self.settings()?,
            (self.arrangement_rng(), self.batch_rng()),
        )?;
        Ok(trained.result)
    }

    /// (21) with vector outputs over (11)'s arrangements, by ADMM in
    /// float64 on the whole training set, then evaluated and mapped
    /// (Proposition 1) on the float32 engine like (11).
    fn constrained(&self, data: &ImageData) -> Result<MethodResult, PipelineError> {
        let spec = self.experiment.constrained.ok_or_else(|| {
            PipelineError::MethodMismatch(format!("{} needs [constrained]", self.label()))
        })?;
        let m = &self.experiment.model;
        let train = &data.train;
        let (n, classes) = (train.n(), train.classes());
        let sampled =
            SampledArrangements::sample(&mut self.arrangement_rng(), m.k, train.d(), m.m1)?;
        let x = train.x().mapv(f64::from);
        let mut y = Array2::zeros((n, classes));
        for (i, &label) in train.labels().iter().enumerate() {
            y[[i, label]] = 1.0;
        }
        // MSELoss + β Σ‖Z‖ is (2/(nC)) (½‖F − Y‖² + (nC/2) β Σ‖Z‖).
        let scale = (n * classes) as f64 / 2.0;
        let start = Instant::now();
        let solve = pathreg_solvers::solve_admm_outputs(
            x.view(),
            (y.view(), spec.grouping),
            &sampled,
            m.beta * scale,
            m.m2,
            &spec.settings,
            None,
        )?;
        let time_s = start.elapsed().as_secs_f64();
        let model = ConvexModel::new(&sampled, classes, spec.grouping, m.beta, m.m2, m.lambda)?;
        let params: Vec<f32> = solve.variables.iter().map(|&v| v as f32).collect();
        let start = Instant::now();
        let train_masks = model.prepare(train)?;
        let test_masks = model.prepare(&data.test)?;
        let prepare_s = start.elapsed().as_secs_f64();
        let groups = model.group_norms(&params);
        let last = solve.last;
        let constrained = ConstrainedReport {
            iterations: last.iteration,
            converged: solve.converged,
            objective: last.objective / scale,
            lower_bound: last.lower_bound / scale,
            relative_gap: last.relative_gap,
            violation: last.violation,
            active_groups: groups.iter().filter(|g| **g > 0.0).count(),
            groups: groups.len(),
        };
        let mapped = to_network(&model, &params)?;
        Ok(MethodResult {
            curve: Vec::new(),
            epochs_run: 0,
            diverged: false,
            time_s,
            train: evaluate(&model, &params, train, &train_masks, m.lambda),
            test: evaluate(&model, &params, &data.test, &test_masks, m.lambda),
            parameters: model.parameters(),
            prepare_s,
            map: Some(MapReport::on_test_rows(
                &model,
                &params,
                &mapped,
                &data.test,
                &test_masks,
            )),
            constrained: Some(constrained),
            peak_resident_bytes: None,
        })
    }

    fn network(
        &self,
        data: &ImageData,
        regularizer: Regularizer,
    ) -> Result<MethodResult, PipelineError> {
        let m = &self.experiment.model;
        let shape = NetworkShape {
            d: data.train.d(),
            k: m.k,
            m1: m.m1,
            m2: m.m2,
            classes: CLASSES,
        };
        let model = NetworkModel::new(shape, regularizer, m.beta)?;
        // Every optimizer starts from the same network.
        let init = model.pytorch_uniform(&mut ChaCha8Rng::seed_from_u64(derive_seed(
            self.experiment.seed,
            &["init"],
        )));
        let (_, result) = train_model(
            &model,
            init,
            (&data.train, &()),
            (&data.test, &()),
            m.lambda,
            &self.settings()?,
            &mut self.batch_rng(),
        )?;
        Ok(result)
    }
}

/// Trains `model` from `params` on the training rows (with their
/// precomputation), recording test accuracy, and evaluates it on both sets.
pub(crate) fn train_model<M: Model>(
    model: &M,
    params: Vec<f32>,
    train: (&ImageSet, &M::Prepared),
    test: (&ImageSet, &M::Prepared),
    lambda: f64,
    settings: &ImageTrainSettings,
    batches: &mut ChaCha8Rng,
) -> Result<(Vec<f32>, MethodResult), PipelineError> {
    let trained = train_images(
        model,
        params,
        Prepared {
            set: train.0,
            prepared: train.1,
        },
        Prepared {
            set: test.0,
            prepared: test.1,
        },
        lambda,
        settings,
        batches,
        &|_| {},
    )?;
    let train_evaluation = evaluate(model, &trained.params, train.0, train.1, lambda);
    let test_evaluation = evaluate(model, &trained.params, test.0, test.1, lambda);
    Ok((
        trained.params,
        MethodResult {
            curve: trained.curve,
            epochs_run: trained.epochs_run,
            diverged: trained.diverged,
            time_s: trained.time_s,
            train: train_evaluation,
            test: test_evaluation,
            parameters: model.parameters(),
            prepare_s: 0.0,
            map: None,
            constrained: None,
            peak_resident_bytes: None,
        },
    ))
}

/// A trained (11): the program, its variables, its masks on both sets and
/// the result with Proposition 1's network checked on the test rows.
pub(crate) struct TrainedConvex {
    pub model: ConvexModel,
    pub params: Vec<f32>,
    pub mapped: MappedNetwork,
    pub train_masks: Masks,
    pub test_masks: Masks,
    pub result: MethodResult,
}

/// Samples `model.K` arrangements of the training features with the first
/// generator, trains (11) from zero with the batches of the second, and
/// maps the solution to its network (Proposition 1), checked on the test rows.
pub(crate) fn train_convex(
    (train, test): (&ImageSet, &ImageSet),
    model: &ImageModel,
    grouping: Grouping,
    settings: &ImageTrainSettings,
    (mut arrangements, mut batches): (ChaCha8Rng, ChaCha8Rng),
) -> Result<TrainedConvex, PipelineError> {
    let sampled = SampledArrangements::sample(&mut arrangements, model.k, train.d(), model.m1)?;
    let convex = ConvexModel::new(
        &sampled,
        train.classes(),
        grouping,
        model.beta,
        model.m2,
        model.lambda,
    )?;
    let start = Instant::now();
    let train_masks = convex.prepare(train)?;
    let test_masks = convex.prepare(test)?;
    let prepare_s = start.elapsed().as_secs_f64();
    let zeros = vec![0.0f32; convex.parameters()];
    let (params, mut result) = train_model(
        &convex,
        zeros,
        (train, &train_masks),
        (test, &test_masks),
        model.lambda,
        settings,
        &mut batches,
    )?;
    let mapped = to_network(&convex, &params)?;
    result.map = Some(MapReport::on_test_rows(
        &convex,
        &params,
        &mapped,
        test,
        &test_masks,
    ));
    result.prepare_s = prepare_s;
    Ok(TrainedConvex {
        model: convex,
        params,
        mapped,
        train_masks,
        test_masks,
        result,
    })
}

impl Cell for MethodCell<'_> {
    type Output = MethodResult;

    fn key(&self) -> CacheKey {
        self.key.clone()
    }

    fn label(&self) -> String {
        format!(
            "{} {}",
            self.experiment.data.dataset,
            self.method.name.key()
        )
    }

    fn compute(&self, _cache: &Cache) -> Result<MethodResult, PipelineError> {
        let data = self
            .data
            .ok_or_else(|| PipelineError::MissingData(self.label()))?;
        let mut result = match self.method.name {
            MethodName::ConvexSgd | MethodName::ConvexAdam => self.convex(data, Grouping::Joint),
            MethodName::ConvexSgdOneVsRest => self.convex(data, Grouping::OneVsRest),
            MethodName::ConvexAdmm => self.constrained(data),
            MethodName::SgdWeightDecay => self.network(data, Regularizer::WeightDecay),
            _ => self.network(data, Regularizer::Path),
        }?;
        result.peak_resident_bytes = crate::engine::provenance::peak_resident_bytes();
        Ok(result)
    }
}
