//! The data stage: a [`DataSpec`] and its seed become a [`Dataset`], and the
//! dataset's content hash (which keys every stage that reads it).

use pathreg_core::low_rank::kept_rank;
use pathreg_data::Dataset;
use pathreg_data::csv_file::read_csv;
use pathreg_data::registry::{DataConfig, load};
use pathreg_data::synthetic::{low_rank_teacher_data, teacher_data};
use sha2::{Digest, Sha256};

use crate::PipelineError;
use crate::engine::seeds::derive_seed;
use crate::manifest::sections::{DataSpec, TeacherSpec};

/// The data seed of a cell: from the master seed and its replicate tag
/// (`sweep."data.seed"`), if any.
pub fn data_seed(master_seed: u64, replicate: Option<i64>) -> u64 {
    match replicate {
        None => derive_seed(master_seed, &["data"]),
        Some(tag) => derive_seed(master_seed, &["data", &tag.to_string()]),
    }
}

/// Synthetic teacher data: `x_i ~ N(0, I_d)`, or Figure 4's low-rank data.
pub fn teacher(spec: &TeacherSpec, seed: u64) -> Result<Dataset, PipelineError> {
    let TeacherSpec {
        n,
        d,
        teacher,
        noise,
        rank_fraction,
    } = *spec;
    Ok(match rank_fraction {
        None => teacher_data(n, d, teacher, noise, seed)?.0,
        Some(f) => low_rank_teacher_data(n, d, kept_rank(d, f), teacher, noise, seed)?.0,
    })
}

/// Whether a stage may fetch the data it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Fetch what is missing (mirror, then canonical URL), as a run does.
    Fetch,
    /// Only the data directory: what is not there is an error that names it
    /// (for `list`, which never downloads).
    LocalOnly,
}

impl Access {
    /// The data configuration of the environment (`PATHREG_DATA`,
    /// `PATHREG_MIRROR`), restricted to the data directory for `LocalOnly`.
    pub fn config(self) -> DataConfig {
        let mut config = DataConfig::from_env();
        if self == Access::LocalOnly {
            config.mirror = None;
            config.download = false;
        }
        config
    }

    /// The error of loading `name`: as it is when fetching; when only the
    /// data directory may be read, an error that says the data is not there
    /// and how to fetch it.
    pub fn explain(self, name: &str, error: pathreg_data::DataError) -> PipelineError {
        match self {
            Access::Fetch => PipelineError::Data(error),
            Access::LocalOnly => PipelineError::DataNotLocal {
                dataset: name.to_string(),
                data_dir: DataConfig::default_data_dir(),
                reason: error.to_string(),
            },
        }
    }
}

/// The training rows `spec` names; `seed` drives synthetic data and UCI splits.
pub fn load_data(spec: &DataSpec, seed: u64, access: Access) -> Result<Dataset, PipelineError> {
    match spec {
        DataSpec::Teacher(t) => teacher(t, seed),
        DataSpec::Csv { path } => Ok(read_csv(path)?),
        DataSpec::Dataset {
            name,
            split,
            preprocess,
        } => {
            let mut config = access.config();
            config.seed = seed;
            config.split = split.split();
            config.preprocess = *preprocess;
            Ok(load(name, &config)
                .map_err(|e| access.explain(name, e))?
                .train)
        }
    }
}

/// `path:sha256` of every pinned file of the registry dataset `name`: its
/// identity in cache keys, known without reading the data.
pub fn pins(name: &str) -> Result<Vec<String>, PipelineError> {
    Ok(pathreg_data::registry::files_for(name)?
        .1
        .iter()
        .map(|f| format!("{}:{}", f.path, f.pin.sha256))
        .collect())
}

/// The registry name to load a manifest's dataset `name` by: a `csv:` path
/// resolved against the manifest's folder `base_dir`, any other name as it is.
pub fn registry_source(name: &str, base_dir: &std::path::Path) -> String {
    match name.strip_prefix("csv:") {
        Some(file) => format!("csv:{}", base_dir.join(file).display()),
        None => name.to_string(),
    }
}

/// SHA-256 over the SHA-256s of the files a dataset was read from, in
/// reading order, without their names (a registry dataset's pinned files, a
/// user's CSV): the data's identity wherever results must not depend on the
/// name or path it was given by. `None` for data read from no file.
pub fn files_content_hash(files: &[pathreg_data::registry::FileHash]) -> Option<String> {
    if files.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(b"pathreg/data-content/v1");
    for file in files {
        hasher.update(file.sha256.as_bytes());
    }
    Some(hex::encode(hasher.finalize()))
}

/// SHA-256 of the dataset's CSV form: its identity in every cache key.
pub fn content_hash(dataset: &Dataset) -> String {
    hex::encode(Sha256::digest(dataset.to_csv().as_bytes()))
}
