//! Figure 5's cells: one method trained on the dataset, with its curve, its
//! final evaluation and, for (11), Proposition 1's network checked on the
//! test rows.

use std::time::Instant;

use ndarray::Array2;
use pathreg_core::Regularizer;
use pathreg_core::multiclass::{
    ConvexModel, Grouping, ImageSet, MapCheck, Model, NetworkModel, NetworkShape, check_map,
    to_network,
};
use pathreg_core::unconstrained::SampledArrangements;
use pathreg_data::Dataset;
use pathreg_data::registry;
use pathreg_data::split::Split;
use pathreg_solvers::Optimizer;
use pathreg_solvers::multiclass::{
    Evaluation, ImageCurvePoint, ImageTrainSettings, Prepared, evaluate, train_images,
};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::manifest::{ImagesExperiment, Method, MethodName, Scaling};
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
pub(super) struct ImageData {
    pub train: ImageSet,
    pub test: ImageSet,
    /// `(file, sha256)` of every file read.
    pub files: Vec<(String, String)>,
    pub load_s: f64,
}

/// Loads the official split of the experiment's dataset, subsamples and
/// scales it.
pub(super) fn load(
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
pub(super) struct MapReport {
    /// Sub-networks of the mapped network (the non-zero blocks).
    pub subnetworks: usize,
    /// Its path regularizer `Σ_{s,k,c} ‖Z^s_kc‖_F` (without β).
    pub path_regularizer: f64,
    /// The comparison with the convex model on the test rows.
    pub check: MapCheck,
}

/// One method's result (cached as the `images` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct MethodResult {
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
        let params = serde_json::json!({
            "seed": experiment.seed, "data": experiment.data, "model": experiment.model,
            "training": experiment.training, "method": method,
        });
        Ok(Self {
            experiment,
            method,
            data: None,
            key: CacheKey::new(STAGE, VERSION, &params, &refs),
        })
    }

    fn optimizer(&self) -> Optimizer {
        let lr = self.method.lr;
        match self.method.name {
            MethodName::ConvexAdam | MethodName::Adam => Optimizer::adam(lr),
            MethodName::Adagrad => Optimizer::adagrad(lr),
            MethodName::Adadelta => Optimizer::adadelta(lr),
            MethodName::ConvexSgd
            | MethodName::ConvexSgdOneVsRest
            | MethodName::Sgd
            | MethodName::SgdWeightDecay => Optimizer::Sgd {
                lr,
                momentum: self.experiment.training.momentum,
            },
        }
    }

    fn train<M: Model>(
        &self,
        model: &M,
        params: Vec<f32>,
        data: &ImageData,
        prepared: (&M::Prepared, &M::Prepared),
    ) -> Result<(Vec<f32>, MethodResult), PipelineError> {
        let t = &self.experiment.training;
        let settings = ImageTrainSettings {
            optimizer: self.optimizer(),
            epochs: t.epochs,
            batch_size: t.batch_size,
            evaluations_per_epoch: t.evaluations_per_epoch,
        };
        let lambda = self.experiment.model.lambda;
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(
            self.experiment.seed,
            &["batches", self.method.name.key()],
        ));
        let trained = train_images(
            model,
            params,
            Prepared {
                set: &data.train,
                prepared: prepared.0,
            },
            Prepared {
                set: &data.test,
                prepared: prepared.1,
            },
            lambda,
            &settings,
            &mut rng,
            &|_| {},
        )?;
        let train = evaluate(model, &trained.params, &data.train, prepared.0, lambda);
        let test = evaluate(model, &trained.params, &data.test, prepared.1, lambda);
        Ok((
            trained.params,
            MethodResult {
                curve: trained.curve,
                epochs_run: trained.epochs_run,
                diverged: trained.diverged,
                time_s: trained.time_s,
                train,
                test,
                parameters: model.parameters(),
                prepare_s: 0.0,
                map: None,
                peak_resident_bytes: None,
            },
        ))
    }

    fn convex(&self, data: &ImageData, grouping: Grouping) -> Result<MethodResult, PipelineError> {
        let m = &self.experiment.model;
        let mut rng =
            ChaCha8Rng::seed_from_u64(derive_seed(self.experiment.seed, &["arrangements"]));
        let arrangements = SampledArrangements::sample(&mut rng, m.k, data.train.d(), m.m1)?;
        let model = ConvexModel::new(&arrangements, CLASSES, grouping, m.beta, m.m2, m.lambda)?;
        let start = Instant::now();
        let train_masks = model.prepare(&data.train)?;
        let test_masks = model.prepare(&data.test)?;
        let prepare_s = start.elapsed().as_secs_f64();
        let zeros = vec![0.0f32; model.parameters()];
        let (params, mut result) = self.train(&model, zeros, data, (&train_masks, &test_masks))?;
        let mapped = to_network(&model, &params)?;
        let rows: Vec<usize> = (0..data.test.n()).collect();
        result.map = Some(MapReport {
            subnetworks: mapped.model.shape().k,
            path_regularizer: mapped.path_regularizer,
            check: check_map(&model, &params, &mapped, &data.test, &test_masks, &rows),
        });
        result.prepare_s = prepare_s;
        Ok(result)
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
        Ok(self.train(&model, init, data, (&(), &()))?.1)
    }
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
            MethodName::SgdWeightDecay => self.network(data, Regularizer::WeightDecay),
            _ => self.network(data, Regularizer::Path),
        }?;
        result.peak_resident_bytes = crate::engine::provenance::peak_resident_bytes();
        Ok(result)
    }
}
