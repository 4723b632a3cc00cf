//! Experiment manifests: TOML files in `experiments/`, read once and checked
//! by their kind into a typed, validated experiment before any work starts.
//! Every error names the file, the line and column, the key and the reason.
//!
//! - [`toolkit`]: positioned errors and the recurring checks, and the
//!   [`Check`] trait by which a raw section becomes its valid type;
//! - [`sections`]: the sections several kinds share (`[data]`, `[model]`,
//!   `[arrangements]`, `[convex]`);
//! - [`sweep`]: `[sweep]` lists expanded to cells (cartesian product and zip).

pub mod budget;
pub mod sections;
pub mod sweep;
pub mod toolkit;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::PipelineError;
pub use toolkit::{Check, Validator, toml_error};

/// A manifest file as read: its path (for messages and relative paths) and text.
#[derive(Debug, Clone)]
pub struct ManifestFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its content.
    pub text: String,
}

impl ManifestFile {
    /// Reads `path`.
    pub fn read(path: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
        })
    }

    /// The manifest's `kind`, with its position.
    pub fn kind(&self) -> Result<Spanned<String>, PipelineError> {
        #[derive(Deserialize)]
        struct KindOnly {
            kind: Spanned<String>,
        }
        let found: KindOnly = toml::from_str(&self.text).map_err(|e| toml_error(self, &e))?;
        Ok(found.kind)
    }

    /// Deserializes the whole manifest into a kind's raw type.
    pub fn parse<'de, T: Deserialize<'de>>(&'de self) -> Result<T, PipelineError> {
        toml::from_str(&self.text).map_err(|e| toml_error(self, &e))
    }
}
