//! The experiment kinds: the one list of what a manifest's `kind` may name.
//! A kind is a folder with its manifest (raw TOML types that check
//! themselves into valid types), its run (cells built on the engine) and its
//! report (tables and figures); adding one is a new folder and one line in
//! [`KINDS`].

pub mod classification;
pub mod images;
pub mod lowrank;
pub mod sparsity;
pub mod spectrum;
pub mod spiral;
pub mod stacking;
pub mod table2;

use crate::PipelineError;
use crate::engine::Experiment;
use crate::manifest::ManifestFile;
use crate::manifest::budget::Limits;

/// One experiment kind.
pub struct Kind {
    /// The manifest's `kind` value.
    pub name: &'static str,
    /// The cache stages its runs write (for `clean --stage`).
    pub stages: &'static [&'static str],
    /// Reads and validates a manifest of this kind, and checks what it asks
    /// for against the limits.
    pub load: LoadManifest,
}

/// A kind's reader: a manifest file, checked against the limits, becomes its experiment.
pub type LoadManifest = fn(&ManifestFile, Limits) -> Result<Box<dyn Experiment>, PipelineError>;

/// Every kind this version runs.
pub const KINDS: &[Kind] = &[
    Kind {
        name: table2::KIND,
        stages: table2::STAGES,
        load: table2::load,
    },
    Kind {
        name: lowrank::KIND,
        stages: lowrank::STAGES,
        load: lowrank::load,
    },
    Kind {
        name: spectrum::KIND,
        stages: spectrum::STAGES,
        load: spectrum::load,
    },
    Kind {
        name: classification::KIND,
        stages: classification::STAGES,
        load: classification::load,
    },
    Kind {
        name: images::KIND,
        stages: images::STAGES,
        load: images::load,
    },
    Kind {
        name: stacking::KIND,
        stages: stacking::STAGES,
        load: stacking::load,
    },
    Kind {
        name: spiral::KIND,
        stages: spiral::STAGES,
        load: spiral::load,
    },
    Kind {
        name: sparsity::KIND,
        stages: sparsity::STAGES,
        load: sparsity::load,
    },
];

/// The kind `file` names, or a positioned error listing the known ones.
pub fn kind_of(file: &ManifestFile) -> Result<&'static Kind, PipelineError> {
    let kind = file.kind()?;
    KINDS
        .iter()
        .find(|k| k.name == kind.get_ref())
        .ok_or_else(|| {
            let known: Vec<&str> = KINDS.iter().map(|k| k.name).collect();
            crate::manifest::Validator::new(file).error(
                kind.span(),
                "kind",
                format!(
                    "unknown experiment kind {:?}; known: {known:?}",
                    kind.get_ref()
                ),
            )
        })
}

/// Every cache stage any kind writes, each once, in registry order.
pub fn cache_stages() -> Vec<&'static str> {
    let mut stages: Vec<&'static str> = Vec::new();
    for stage in KINDS.iter().flat_map(|k| k.stages) {
        if !stages.contains(stage) {
            stages.push(stage);
        }
    }
    stages
}
