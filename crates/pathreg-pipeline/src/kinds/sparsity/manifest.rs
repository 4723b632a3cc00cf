//! `kind = "sparsity_path"` manifests: one two-class dataset and split, the
//! convex model's sampled arrangements, a decreasing list of β, and the ADMM
//! tolerances, validated into a [`SparsityPathExperiment`].

use std::path::PathBuf;

use pathreg_data::split::Preprocess;
use pathreg_solvers::AdmmSettings;
use serde::Deserialize;
use toml::Spanned;

use crate::PipelineError;
use crate::manifest::sections::{PREPROCESS_CHOICES, RawAdmm, serialize_preprocess};
use crate::manifest::{ManifestFile, Validator};

/// A validated regularization-path experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SparsityPathExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in table.md.
    pub description: String,
    /// Seed of the arrangements (with the data's content and the split seed).
    pub seed: u64,
    /// Registry name or `csv:<path>` (relative to the manifest).
    pub dataset: String,
    /// The manifest's folder, against which a `csv:` path resolves.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Seed of the stratified train/test split.
    pub split_seed: u64,
    /// Fraction of each class held out for testing.
    pub test_fraction: f64,
    /// Feature preprocessing fitted on the training rows.
    #[serde(serialize_with = "serialize_preprocess")]
    pub preprocess: Preprocess,
    /// Sampled arrangements (triples) of the convex model.
    pub k: usize,
    /// First-layer width per arrangement.
    pub m1: usize,
    /// Second-layer width of the network (it scales β in (21)).
    pub m2: usize,
    /// Strictly decreasing regularization strengths: the path runs from the
    /// sparsest solution down, each solve warm-started at the previous one.
    pub betas: Vec<f64>,
    /// ADMM's tolerances and cap, per β.
    pub admm: AdmmSettings,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    #[serde(rename = "kind")]
    _kind: Spanned<String>,
    #[serde(default)]
    description: String,
    seed: Spanned<u64>,
    data: RawData,
    model: RawModel,
    #[serde(default)]
    admm: RawAdmm,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    dataset: Spanned<String>,
    split_seed: u64,
    test_fraction: Option<Spanned<f64>>,
    preprocess: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    #[serde(rename = "K")]
    k: Spanned<usize>,
    m1: Spanned<usize>,
    m2: Spanned<usize>,
    betas: Spanned<Vec<f64>>,
}

/// Parses and validates a sparsity-path manifest.
pub fn parse(file: &ManifestFile) -> Result<SparsityPathExperiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    let dataset = raw.data.dataset.get_ref().clone();
    v.dataset_name(&dataset, raw.data.dataset.span(), "data.dataset")?;
    let betas = raw.model.betas.get_ref().clone();
    if betas.is_empty() {
        return Err(v.error(
            raw.model.betas.span(),
            "model.betas",
            "must list at least one β",
        ));
    }
    if let Some(bad) = betas.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
        return Err(v.error(
            raw.model.betas.span(),
            "model.betas",
            format!("every β must be positive and finite, got {bad}"),
        ));
    }
    if betas.windows(2).any(|w| w[1] >= w[0]) {
        return Err(v.error(
            raw.model.betas.span(),
            "model.betas",
            "must decrease strictly (the path starts at the sparsest solution and warm-starts each next β)",
        ));
    }
    let admm = raw.admm.check("admm", &v)?;
    Ok(SparsityPathExperiment {
        name: v.name(&raw.name)?,
        description: raw.description,
        seed: *raw.seed.get_ref(),
        dataset,
        base_dir: v.base_dir().to_path_buf(),
        split_seed: raw.data.split_seed,
        test_fraction: v.fraction(&raw.data.test_fraction, "data.test_fraction", 0.2)?,
        preprocess: v.choice(
            &raw.data.preprocess,
            "data.preprocess",
            &PREPROCESS_CHOICES,
            PREPROCESS_CHOICES[0].1,
        )?,
        k: v.positive_usize(&raw.model.k, "model.K")?,
        m1: v.positive_usize(&raw.model.m1, "model.m1")?,
        m2: v.positive_usize(&raw.model.m2, "model.m2")?,
        betas,
        admm,
    })
}
