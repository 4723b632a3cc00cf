//! Reading what a run left on disk: results.csv (as written by
//! `pathreg_report::write_csv`: RFC 4180 quoting) and run.json.

use std::path::{Path, PathBuf};

use crate::PipelineError;

/// A results.csv: its header and rows of text fields.
pub(super) struct Records {
    path: PathBuf,
    header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

fn split_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

impl Records {
    /// Reads `path`; every row must have the header's width.
    pub fn read(path: &Path) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|source| PipelineError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut lines = text.lines().filter(|l| !l.is_empty());
        let header = split_line(lines.next().unwrap_or_default());
        let rows: Vec<Vec<String>> = lines.map(split_line).collect();
        if let Some((i, row)) = rows
            .iter()
            .enumerate()
            .find(|(_, r)| r.len() != header.len())
        {
            return Err(PipelineError::ReportInput {
                path: path.to_path_buf(),
                reason: format!(
                    "row {} has {} fields, the header {}",
                    i + 2,
                    row.len(),
                    header.len()
                ),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    fn index(&self, column: &str) -> Result<usize, PipelineError> {
        self.header
            .iter()
            .position(|h| h == column)
            .ok_or_else(|| PipelineError::ReportInput {
                path: self.path.clone(),
                reason: format!("no column {column:?}"),
            })
    }

    /// The text of `column` in every row.
    pub fn texts(&self, column: &str) -> Result<Vec<&str>, PipelineError> {
        let i = self.index(column)?;
        Ok(self.rows.iter().map(|r| r[i].as_str()).collect())
    }

    /// `column` as numbers (`NaN` where a field is not one).
    pub fn numbers(&self, column: &str) -> Result<Vec<f64>, PipelineError> {
        Ok(self
            .texts(column)?
            .into_iter()
            .map(|t| t.parse().unwrap_or(f64::NAN))
            .collect())
    }
}

/// run.json, when the run left one.
pub(super) fn run_json(dir: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(dir.join("run.json")).ok()?).ok()
}
