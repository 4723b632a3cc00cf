//! `kind = "spectrum"` manifests (Figure 7): which datasets' training
//! matrices to take the spectra of, and whether to center them first.

use serde::Deserialize;
use toml::Spanned;

use crate::PipelineError;
use crate::manifest::{Check, ManifestFile, Validator};

/// A validated spectrum experiment.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpectrumExperiment {
    /// Output folder name under `outputs/`.
    pub name: String,
    /// Free text shown in table.md.
    pub description: String,
    /// The datasets and the centering.
    pub spectrum: SpectrumSpec,
}

/// `[spectrum]`, validated.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SpectrumSpec {
    /// Registry names, e.g. `mnist`, `fashion-mnist`, `cifar10`, `uci:ionosphere`.
    pub datasets: Vec<String>,
    /// Subtract the column means before computing the spectrum.
    pub center: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    #[serde(rename = "kind")]
    _kind: Spanned<String>,
    #[serde(default)]
    description: String,
    spectrum: RawSpectrum,
}

/// `[spectrum]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpectrum {
    datasets: Spanned<Vec<String>>,
    #[serde(default)]
    center: bool,
}

impl Check for RawSpectrum {
    type Valid = SpectrumSpec;

    fn check(&self, v: &Validator<'_>) -> Result<SpectrumSpec, PipelineError> {
        let datasets = self.datasets.get_ref();
        if datasets.is_empty() {
            return Err(v.error(
                self.datasets.span(),
                "spectrum.datasets",
                "must list at least one dataset",
            ));
        }
        for name in datasets {
            v.dataset_name(name, self.datasets.span(), "spectrum.datasets")?;
        }
        Ok(SpectrumSpec {
            datasets: datasets.clone(),
            center: self.center,
        })
    }
}

/// Parses and validates a spectrum manifest.
pub fn parse(file: &ManifestFile) -> Result<SpectrumExperiment, PipelineError> {
    let raw: RawManifest = file.parse()?;
    let v = Validator::new(file);
    Ok(SpectrumExperiment {
        name: v.name(&raw.name)?,
        description: raw.description,
        spectrum: raw.spectrum.check(&v)?,
    })
}
