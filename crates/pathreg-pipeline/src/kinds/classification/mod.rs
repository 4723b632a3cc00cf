//! `kind = "classification"` (Table 3, Appendix A.1): test accuracy of the
//! non-convex parallel network against its convex counterpart (11) over
//! sampled arrangements, each trained by SGD and by Adam, on named datasets
//! (the UCI collection, MNIST, … or a user CSV) over several seeded
//! stratified train/test splits.
//!
//! Every (dataset, split seed, training seed, optimizer, model) cell is one
//! cached `classification` stage entry ([`protocol::run_cell`]); cells run in
//! parallel and are collected in manifest order, so results do not depend on
//! the thread count. A cell's seeds, cache key and result-hash label come from
//! the data's content, never from the name the manifest gives it.

mod constrained;
pub mod manifest;
mod protocol;
mod report;

use pathreg_data::DataError;
use pathreg_data::registry;
use pathreg_data::split::Split;
use sha2::{Digest, Sha256};

use crate::PipelineError;
use crate::engine::cache::{Cache, CacheKey};
use crate::engine::hashing::HashInput;
use crate::engine::{Report, Run, list_cells};
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;
use crate::stages::data::{Access, files_content_hash, registry_source};
use constrained::{ConstrainedOutcome, run_constrained_cell};
pub use manifest::ClassificationExperiment;
use manifest::ConstrainedSpec;
use protocol::{CellOutcome, ModelKind, SplitData, run_cell};

/// The cache stage of one cell.
pub const STAGE: &str = "classification";
/// Cache schema version of the `classification` stage.
const CLASSIFICATION_VERSION: u32 = 3;
/// Label columns with more distinct values than this are not class labels.
const MAX_CLASSES: usize = 50;
/// The two models of each optimizer, in table order.
const MODELS: [ModelKind; 2] = [ModelKind::Nonconvex, ModelKind::Convex];

/// One cell's coordinates: indices into the splits, the training seeds and
/// the optimizers.
#[derive(Debug, Clone, Copy)]
struct Job {
    split: usize,
    training: usize,
    optimizer: usize,
    model: ModelKind,
}

/// Loads every (dataset, split seed) pair, in manifest order.
fn load_splits(
    experiment: &ClassificationExperiment,
    access: Access,
) -> Result<Vec<SplitData>, PipelineError> {
    let mut splits = Vec::new();
    for name in &experiment.data.datasets {
        for &seed in &experiment.data.split_seeds {
            let mut config = access.config();
            config.seed = seed;
            config.split = Some(Split::Stratified {
                test_fraction: experiment.data.test_fraction,
                seed,
            });
            config.preprocess = experiment.data.preprocess;
            let source = registry_source(name, &experiment.data.base_dir);
            let loaded = registry::load(&source, &config).map_err(|e| access.explain(name, e))?;
            let (train_classes, test_classes, n_classes) =
                class_indices(name, &loaded.train.y, &loaded.test.y)?;
            let content = content_sha256(name, &loaded.files)?;
            let mut hasher = Sha256::new();
            hasher.update(loaded.train.to_csv().as_bytes());
            hasher.update(b"\n--test--\n");
            hasher.update(loaded.test.to_csv().as_bytes());
            splits.push(SplitData {
                name: name.clone(),
                split_seed: seed,
                train_classes,
                test_classes,
                n_classes,
                sha256: hex::encode(hasher.finalize()),
                content,
                files: loaded
                    .files
                    .iter()
                    .map(|f| (f.file.clone(), f.sha256.clone()))
                    .collect(),
                train: loaded.train,
                test: loaded.test,
            });
        }
    }
    Ok(splits)
}

/// The data's content hash ([`files_content_hash`]), which every seed of
/// its cells derives from.
fn content_sha256(
    name: &str,
    files: &[pathreg_data::registry::FileHash],
) -> Result<String, PipelineError> {
    files_content_hash(files).ok_or_else(|| {
        PipelineError::Data(DataError::Invalid(format!(
            "{name}: read from no file, so it has no content to derive the cells' seeds from"
        )))
    })
}

/// Class indices `0..C` of the training and test labels: the rank of each
/// label among the distinct values of both sets (so ±1 gives −1 → 0, +1 → 1).
fn class_indices(
    name: &str,
    train: &ndarray::Array1<f64>,
    test: &ndarray::Array1<f64>,
) -> Result<(Vec<usize>, Vec<usize>, usize), PipelineError> {
    let mut distinct: Vec<f64> = Vec::new();
    for &v in train.iter().chain(test) {
        if !distinct.contains(&v) {
            distinct.push(v);
            if distinct.len() > MAX_CLASSES {
                return Err(PipelineError::Data(DataError::Invalid(format!(
                    "{name}: the labels take more than {MAX_CLASSES} distinct values; a classification \
                     experiment needs class labels"
                ))));
            }
        }
    }
    if distinct.len() < 2 {
        return Err(PipelineError::Data(DataError::Invalid(format!(
            "{name}: the labels take {} distinct value(s); classification needs at least two classes",
            distinct.len()
        ))));
    }
    distinct.sort_by(f64::total_cmp);
    let index = |y: &ndarray::Array1<f64>| -> Vec<usize> {
        y.iter()
            .map(|v| distinct.iter().position(|d| d == v).unwrap_or(0))
            .collect()
    };
    Ok((index(train), index(test), distinct.len()))
}

fn jobs(experiment: &ClassificationExperiment, splits: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    for split in 0..splits {
        for training in 0..experiment.data.training_seeds.len() {
            for optimizer in 0..experiment.optimizers.len() {
                for model in MODELS {
                    jobs.push(Job {
                        split,
                        training,
                        optimizer,
                        model,
                    });
                }
            }
        }
    }
    jobs
}

/// The cell's cache key: everything that determines its result (the data by
/// its content and its split's rows, not by its name).
fn cell_key(experiment: &ClassificationExperiment, split: &SplitData, job: &Job) -> CacheKey {
    let optimizer = &experiment.optimizers[job.optimizer];
    let grid = match job.model {
        ModelKind::Nonconvex => &optimizer.nonconvex_lr,
        ModelKind::Convex => &optimizer.convex_lr,
    };
    let params = serde_json::json!({
        "split_seed": split.split_seed,
        "training_seed": experiment.data.training_seeds[job.training],
        "seed": experiment.seed,
        "validation_fraction": experiment.data.validation_fraction,
        "model": experiment.model,
        "training": experiment.training,
        "optimizer": optimizer.kind,
        "kind": job.model,
        "grid": grid,
    });
    CacheKey::new(
        STAGE,
        CLASSIFICATION_VERSION,
        &params,
        &[&split.content, &split.sha256],
    )
}

/// The cell's coordinates after `data`: split, training seed, optimizer, model.
fn coordinates(experiment: &ClassificationExperiment, split: &SplitData, job: &Job) -> String {
    format!(
        "split={} training={} {} {}",
        split.split_seed,
        experiment.data.training_seeds[job.training],
        experiment.optimizers[job.optimizer].kind.name(),
        job.model.name()
    )
}

/// The cell as logs and run.json show it: the data by its manifest name.
fn cell_label(experiment: &ClassificationExperiment, split: &SplitData, job: &Job) -> String {
    format!("{} {}", split.name, coordinates(experiment, split, job))
}

/// The cell's result-hash label: the data by the first 16 hex digits of its
/// content hash, so renaming or moving a file keeps the hashes.
fn hash_label(experiment: &ClassificationExperiment, split: &SplitData, job: &Job) -> String {
    format!(
        "data={} {}",
        &split.content[..16],
        coordinates(experiment, split, job)
    )
}

/// One cell: a split, an optimizer and a model, with its key.
struct JobCell<'a> {
    experiment: &'a ClassificationExperiment,
    split: &'a SplitData,
    job: Job,
}

impl crate::engine::Cell for JobCell<'_> {
    type Output = CellOutcome;

    fn key(&self) -> CacheKey {
        cell_key(self.experiment, self.split, &self.job)
    }

    fn label(&self) -> String {
        cell_label(self.experiment, self.split, &self.job)
    }

    /// Multiply-adds of one epoch over the training rows, per binary model,
    /// times the epoch cap: the shards' balance, not a prediction.
    fn cost(&self) -> f64 {
        let (n, d) = (self.split.train.n() as f64, self.split.train.d() as f64);
        let model = &self.experiment.model;
        let classes = self.split.n_classes.max(2) as f64 - 1.0;
        n * d * (model.k * model.m1) as f64 * self.experiment.training.epochs as f64 * classes
    }

    fn compute(&self, _cache: &Cache) -> Result<CellOutcome, PipelineError> {
        run_cell(
            self.experiment,
            self.split,
            self.experiment.data.training_seeds[self.job.training],
            &self.experiment.optimizers[self.job.optimizer],
            self.job.model,
        )
    }
}

fn job_cells<'a>(
    experiment: &'a ClassificationExperiment,
    splits: &'a [SplitData],
) -> Vec<JobCell<'a>> {
    jobs(experiment, splits.len())
        .into_iter()
        .map(|job| JobCell {
            experiment,
            split: &splits[job.split],
            job,
        })
        .collect()
}

/// A `[constrained]` cell: program (21) by ADMM on one split and training
/// seed (no optimizer, no learning rate).
struct ConstrainedJobCell<'a> {
    experiment: &'a ClassificationExperiment,
    spec: &'a ConstrainedSpec,
    split: &'a SplitData,
    training: usize,
}

impl ConstrainedJobCell<'_> {
    /// The split and training seed, as [`coordinates`] writes them.
    fn coordinates(&self) -> String {
        format!(
            "split={} training={} constrained admm",
            self.split.split_seed, self.experiment.data.training_seeds[self.training]
        )
    }
}

impl crate::engine::Cell for ConstrainedJobCell<'_> {
    type Output = ConstrainedOutcome;

    fn key(&self) -> CacheKey {
        let params = serde_json::json!({
            "split_seed": self.split.split_seed,
            "training_seed": self.experiment.data.training_seeds[self.training],
            "seed": self.experiment.seed,
            "model": self.experiment.model,
            "kind": "constrained",
            "admm_revision": pathreg_solvers::admm::REVISION,
            "admm": self.spec.settings,
        });
        CacheKey::new(
            STAGE,
            CLASSIFICATION_VERSION,
            &params,
            &[&self.split.content, &self.split.sha256],
        )
    }

    fn label(&self) -> String {
        format!("{} {}", self.split.name, self.coordinates())
    }

    /// Multiply-adds of the iteration cap: four `n × d` by `d × 2Km1`
    /// products per iteration and binary model.
    fn cost(&self) -> f64 {
        let (n, d) = (self.split.train.n() as f64, self.split.train.d() as f64);
        let model = &self.experiment.model;
        let classes = self.split.n_classes.max(2) as f64 - 1.0;
        4.0 * n
            * d
            * (2 * model.k * model.m1) as f64
            * self.spec.settings.max_iterations as f64
            * classes
    }

    fn compute(&self, _cache: &Cache) -> Result<ConstrainedOutcome, PipelineError> {
        run_constrained_cell(
            self.experiment,
            self.split,
            self.experiment.data.training_seeds[self.training],
            self.spec,
        )
    }
}

/// Every `[constrained]` cell, split by split (none without the table).
fn constrained_cells<'a>(
    experiment: &'a ClassificationExperiment,
    splits: &'a [SplitData],
) -> Vec<ConstrainedJobCell<'a>> {
    let Some(spec) = &experiment.constrained else {
        return Vec::new();
    };
    splits
        .iter()
        .flat_map(|split| {
            (0..experiment.data.training_seeds.len()).map(move |training| ConstrainedJobCell {
                experiment,
                spec,
                split,
                training,
            })
        })
        .collect()
}

/// A finished `[constrained]` cell at its coordinates.
struct ConstrainedCell {
    split: usize,
    training: usize,
    outcome: ConstrainedOutcome,
    cached: bool,
}

/// The registry name.
pub const KIND: &str = "classification";
/// The cache stages this kind writes.
pub const STAGES: &[&str] = &[STAGE];

/// Reads and validates a manifest of this kind.
pub fn load(
    file: &ManifestFile,
    limits: Limits,
) -> Result<Box<dyn crate::engine::Experiment>, PipelineError> {
    Ok(Box::new(manifest::parse(file, limits)?))
}

impl crate::engine::Experiment for ClassificationExperiment {
    fn name(&self) -> &str {
        &self.name
    }

    fn seed(&self) -> Option<u64> {
        Some(self.seed)
    }

    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError> {
        let splits = run.stage("data", |_| load_splits(self, Access::Fetch))?;
        let outcomes = run.cells(&job_cells(self, &splits))?;
        let cells: Vec<Cell> = jobs(self, splits.len())
            .into_iter()
            .zip(outcomes)
            .map(|(job, computed)| Cell {
                job,
                outcome: computed.value,
                cached: computed.cached,
            })
            .collect();
        let constrained_jobs = constrained_cells(self, &splits);
        let solved = run.cells(&constrained_jobs)?;
        let constrained: Vec<ConstrainedCell> = constrained_jobs
            .iter()
            .zip(solved)
            .map(|(job, computed)| ConstrainedCell {
                split: splits
                    .iter()
                    .position(|s| std::ptr::eq(s, job.split))
                    .unwrap_or_default(),
                training: job.training,
                outcome: computed.value,
                cached: computed.cached,
            })
            .collect();
        let mut rows = hash_inputs(self, &splits, &cells);
        rows.extend(constrained_hash_inputs(&constrained_jobs, &constrained));
        let details = details(self, &splits, &cells, &constrained_jobs, &constrained);
        let wall_s = run.elapsed_s();
        Ok(Report {
            rows,
            details,
            write: Box::new(move |dir| {
                report::write_outputs(dir, self, &splits, &cells, &constrained, wall_s)
            }),
        })
    }

    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError> {
        let splits = load_splits(self, Access::LocalOnly)?;
        let mut listed = list_cells(cache, &job_cells(self, &splits));
        listed.extend(list_cells(cache, &constrained_cells(self, &splits)));
        Ok(listed)
    }
}

/// run.json's details: the experiment, every split and every cell's outcome.
fn details(
    experiment: &ClassificationExperiment,
    splits: &[SplitData],
    cells: &[Cell],
    constrained_jobs: &[ConstrainedJobCell],
    constrained: &[ConstrainedCell],
) -> serde_json::Value {
    let per_cell: Vec<serde_json::Value> = cells
        .iter()
        .map(|c| {
            let split = &splits[c.job.split];
            serde_json::json!({
                "cell": cell_label(experiment, split, &c.job),
                "cached": c.cached,
                "outcome": c.outcome,
            })
        })
        .collect();
    let datasets: Vec<serde_json::Value> = splits
        .iter()
        .map(|s| {
            serde_json::json!({
                "dataset": s.name, "split_seed": s.split_seed, "n_train": s.train.n(),
                "n_test": s.test.n(), "d": s.train.d(), "classes": s.n_classes,
                "content_sha256": s.content, "rows_sha256": s.sha256, "files": s.files,
            })
        })
        .collect();
    let per_constrained: Vec<serde_json::Value> = constrained_jobs
        .iter()
        .zip(constrained)
        .map(|(job, c)| {
            serde_json::json!({
                "cell": crate::engine::Cell::label(job),
                "cached": c.cached,
                "outcome": c.outcome,
            })
        })
        .collect();
    serde_json::json!({
        "experiment": experiment,
        "splits": datasets,
        "cells": per_cell,
        "constrained_cells": per_constrained,
    })
}

/// A finished cell placed at its coordinates.
struct Cell {
    job: Job,
    outcome: CellOutcome,
    cached: bool,
}

fn hash_inputs(
    experiment: &ClassificationExperiment,
    splits: &[SplitData],
    cells: &[Cell],
) -> Vec<HashInput> {
    cells
        .iter()
        .map(|c| {
            let o = &c.outcome;
            let mut values = vec![o.lr];
            values.extend(&o.rejected_lrs);
            values.extend([o.rate_unit, o.train_accuracy, o.test_accuracy, o.objective]);
            for candidate in &o.candidates {
                values.extend([
                    candidate.lr,
                    candidate.validation_accuracy,
                    candidate.validation_loss,
                ]);
            }
            if let Some(check) = &o.convex {
                values.extend([
                    check.mapped_train_accuracy,
                    check.mapped_test_accuracy,
                    check.mapped_test_agreement,
                    check.violation_relative,
                ]);
            }
            HashInput {
                label: hash_label(experiment, &splits[c.job.split], &c.job),
                texts: vec![
                    o.epochs.to_string(),
                    o.reached_full_accuracy.to_string(),
                    o.diverged.to_string(),
                ],
                values,
                headline: o.test_accuracy,
            }
        })
        .collect()
}

fn constrained_hash_inputs(
    jobs: &[ConstrainedJobCell],
    cells: &[ConstrainedCell],
) -> Vec<HashInput> {
    jobs.iter()
        .zip(cells)
        .map(|(job, c)| {
            let o = &c.outcome;
            HashInput {
                label: format!("data={} {}", &job.split.content[..16], job.coordinates()),
                texts: vec![
                    o.iterations.to_string(),
                    o.converged.to_string(),
                    o.active_groups.to_string(),
                ],
                values: vec![
                    o.train_accuracy,
                    o.test_accuracy,
                    o.objective,
                    o.lower_bound,
                    o.relative_gap,
                    o.violation_relative,
                    o.mapped_test_accuracy,
                    o.mapped_test_agreement,
                ],
                headline: o.test_accuracy,
            }
        })
        .collect()
}
