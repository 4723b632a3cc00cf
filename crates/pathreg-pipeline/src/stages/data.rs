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

/// The training rows `spec` names; `seed` drives synthetic data and UCI splits.
pub fn load_data(spec: &DataSpec, seed: u64) -> Result<Dataset, PipelineError> {
    match spec {
        DataSpec::Teacher(t) => teacher(t, seed),
        DataSpec::Csv { path } => Ok(read_csv(path)?),
        DataSpec::Dataset {
            name,
            split,
            preprocess,
        } => {
            let mut config = DataConfig::from_env();
            config.seed = seed;
            config.split = split.split();
            config.preprocess = *preprocess;
            Ok(load(name, &config)?.train)
        }
    }
}

/// SHA-256 of the dataset's CSV form: its identity in every cache key.
pub fn content_hash(dataset: &Dataset) -> String {
    hex::encode(Sha256::digest(dataset.to_csv().as_bytes()))
}
