//! The validation toolkit every kind's manifest uses: positioned errors
//! (`file:line:column: key: reason`) and the checks that recur (required,
//! positive, fraction, choice, forbidden keys, names, dataset names).

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::ManifestFile;
use crate::PipelineError;

/// A raw manifest section that checks itself into its valid type (the
/// `Params` → `ValidParams` pattern): every default resolved, every value
/// checked, every error positioned.
pub trait Check {
    /// The validated section.
    type Valid;
    /// Validates the section, naming the key and position of the first problem.
    fn check(&self, v: &Validator<'_>) -> Result<Self::Valid, PipelineError>;
}

/// Positions errors in one manifest file.
pub struct Validator<'a> {
    file: &'a ManifestFile,
}

impl<'a> Validator<'a> {
    /// A validator for `file`.
    pub fn new(file: &'a ManifestFile) -> Self {
        Self { file }
    }

    /// The manifest's folder, against which relative paths resolve.
    pub fn base_dir(&self) -> &'a Path {
        self.file.path.parent().unwrap_or(Path::new("."))
    }

    /// An error at `span` (an empty span at 0: position unknown) for `key`.
    pub fn error(&self, span: Range<usize>, key: &str, reason: impl Into<String>) -> PipelineError {
        let (line, column) = if span.is_empty() && span.start == 0 {
            (0, 0)
        } else {
            line_column(&self.file.text, span.start)
        };
        PipelineError::Manifest {
            path: self.file.path.clone(),
            line,
            column,
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    /// Rejects a key that only the data source `source` uses.
    pub fn forbid<T>(
        &self,
        value: &Option<Spanned<T>>,
        key: &str,
        source: &str,
    ) -> Result<(), PipelineError> {
        match value {
            Some(v) => Err(self.error(
                v.span(),
                key,
                format!("only used with source = \"{source}\""),
            )),
            None => Ok(()),
        }
    }

    /// A key that this configuration requires (reported at its table).
    pub fn required<'v, T>(
        &self,
        value: &'v Option<Spanned<T>>,
        table_span: Range<usize>,
        key: &str,
    ) -> Result<&'v Spanned<T>, PipelineError> {
        value
            .as_ref()
            .ok_or_else(|| self.error(table_span, key, "is required for this data source"))
    }

    /// An integer ≥ 1.
    pub fn positive_usize(
        &self,
        value: &Spanned<usize>,
        key: &str,
    ) -> Result<usize, PipelineError> {
        if *value.get_ref() == 0 {
            return Err(self.error(value.span(), key, "must be at least 1"));
        }
        Ok(*value.get_ref())
    }

    /// A positive finite float.
    pub fn positive_f64(&self, value: &Spanned<f64>, key: &str) -> Result<f64, PipelineError> {
        let v = *value.get_ref();
        if v.is_nan() || v <= 0.0 || !v.is_finite() {
            return Err(self.error(
                value.span(),
                key,
                format!("must be a positive finite number, got {v}"),
            ));
        }
        Ok(v)
    }

    /// A fraction in the open interval (0, 1), or `default` when absent.
    pub fn fraction(
        &self,
        value: &Option<Spanned<f64>>,
        key: &str,
        default: f64,
    ) -> Result<f64, PipelineError> {
        match value {
            None => Ok(default),
            Some(f) if *f.get_ref() > 0.0 && *f.get_ref() < 1.0 => Ok(*f.get_ref()),
            Some(f) => Err(self.error(
                f.span(),
                key,
                format!("must be in (0, 1), got {}", f.get_ref()),
            )),
        }
    }

    /// A value in [0, 1), or `default` when absent.
    pub fn momentum(
        &self,
        value: &Option<Spanned<f64>>,
        key: &str,
        default: f64,
    ) -> Result<f64, PipelineError> {
        match value {
            None => Ok(default),
            Some(m) if (0.0..1.0).contains(m.get_ref()) => Ok(*m.get_ref()),
            Some(m) => Err(self.error(
                m.span(),
                key,
                format!("must be in [0, 1), got {}", m.get_ref()),
            )),
        }
    }

    /// One of `choices` (manifest spelling → value); `default` when absent.
    pub fn choice<T: Copy>(
        &self,
        value: &Option<Spanned<String>>,
        key: &str,
        choices: &[(&str, T)],
        default: T,
    ) -> Result<T, PipelineError> {
        let Some(value) = value else {
            return Ok(default);
        };
        self.one_of(value, key, choices)
    }

    /// One of `choices` (manifest spelling → value).
    pub fn one_of<T: Copy>(
        &self,
        value: &Spanned<String>,
        key: &str,
        choices: &[(&str, T)],
    ) -> Result<T, PipelineError> {
        match choices.iter().find(|(name, _)| *name == value.get_ref()) {
            Some((_, v)) => Ok(*v),
            None => {
                let names: Vec<String> = choices.iter().map(|(n, _)| format!("{n:?}")).collect();
                let listed = match names.as_slice() {
                    [one] => one.clone(),
                    [init @ .., last] => format!("{} or {last}", init.join(", ")),
                    [] => String::new(),
                };
                Err(self.error(
                    value.span(),
                    key,
                    format!("{:?}: use {listed}", value.get_ref()),
                ))
            }
        }
    }

    /// The experiment's name: it names the folder under `outputs/`.
    pub fn name(&self, name: &Spanned<String>) -> Result<String, PipelineError> {
        let text = name.get_ref();
        if text.is_empty()
            || !text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(self.error(
                name.span(),
                "name",
                "must be non-empty and use only letters, digits, '-' and '_' (it names the folder under outputs/)",
            ));
        }
        Ok(text.clone())
    }

    /// A registry dataset name (`uci:ionosphere`, `mnist`, …) or `csv:<path>`.
    pub fn dataset_name(
        &self,
        name: &str,
        span: Range<usize>,
        key: &str,
    ) -> Result<(), PipelineError> {
        let known = pathreg_data::registry::names().unwrap_or_default();
        if name.starts_with("csv:") || known.iter().any(|k| k == name) {
            return Ok(());
        }
        Err(self.error(
            span,
            key,
            format!("unknown dataset {name:?}; known: {}", known.join(", ")),
        ))
    }
}

/// A TOML syntax or type error, positioned, naming the key it is about
/// (for a missing field, the table it is missing from and the field).
pub fn toml_error(file: &ManifestFile, e: &toml::de::Error) -> PipelineError {
    let (line, column) = e
        .span()
        .map_or((0, 0), |s| line_column(&file.text, s.start));
    let mut key = e.span().map(|s| key_at(&file.text, s)).unwrap_or_default();
    if let Some(field) = quoted_after(e.message(), "missing field ") {
        key = if key.is_empty() {
            field
        } else {
            format!("{key}.{field}")
        };
    }
    PipelineError::Manifest {
        path: file.path.clone(),
        line,
        column,
        key,
        reason: e.message().trim_end().to_string(),
    }
}

/// The text between backticks after `prefix` in `message`, e.g. the field of
/// "missing field `beta`".
fn quoted_after(message: &str, prefix: &str) -> Option<String> {
    let rest = message.split(prefix).nth(1)?.strip_prefix('`')?;
    Some(rest.split('`').next()?.to_string())
}

/// The dotted key whose key or value holds `span` in `text` (array items as
/// `[i]`), or "" when none does or the text does not parse.
fn key_at(text: &str, span: Range<usize>) -> String {
    if span.is_empty() {
        return String::new();
    }
    let Ok(root) = toml::de::DeTable::parse(text) else {
        return String::new();
    };
    let mut path = Vec::new();
    if !descend_table(root.get_ref(), &span, &mut path) {
        return String::new();
    }
    path.join(".").replace(".[", "[")
}

fn holds(outer: Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Pushes onto `path` the keys down to the one holding `span`; a table's
/// span is only its header, so tables are searched whatever their span.
fn descend_table(
    table: &toml::de::DeTable<'_>,
    span: &Range<usize>,
    path: &mut Vec<String>,
) -> bool {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        if descend_value(value.get_ref(), span, path)
            || holds(key.span(), span)
            || holds(value.span(), span)
        {
            return true;
        }
        path.pop();
    }
    false
}

fn descend_value(
    value: &toml::de::DeValue<'_>,
    span: &Range<usize>,
    path: &mut Vec<String>,
) -> bool {
    match value {
        toml::de::DeValue::Table(table) => descend_table(table, span, path),
        toml::de::DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(format!("[{i}]"));
                if descend_value(item.get_ref(), span, path) || holds(item.span(), span) {
                    return true;
                }
                path.pop();
            }
            false
        }
        _ => false,
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Raw {
        name: String,
        model: Model,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Model {
        m1: usize,
        beta: f64,
    }

    fn parse(text: &str) -> Result<Raw, PipelineError> {
        ManifestFile {
            path: PathBuf::from("x.toml"),
            text: text.to_string(),
        }
        .parse::<Raw>()
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn toml_errors_name_their_key() {
        let ok = parse("name = \"a\"\n[model]\nm1 = 3\nbeta = 1.0\n").unwrap();
        assert_eq!(
            (ok.name.as_str(), ok.model.m1, ok.model.beta),
            ("a", 3, 1.0)
        );
        let e = error("name = \"a\"\n[model]\nm1 = \"three\"\nbeta = 1.0\n");
        assert!(e.starts_with("x.toml:3:6: model.m1: invalid type"), "{e}");
        let e = error("name = \"a\"\n[model]\nm1 = 3\nbeta = 1.0\ngamma = 2\n");
        assert!(
            e.starts_with("x.toml:5:1: model.gamma: unknown field"),
            "{e}"
        );
        let e = error("name = \"a\"\n[model]\nm1 = 3\n");
        assert!(e.contains(": model.beta: missing field `beta`"), "{e}");
        let e = error("[model]\nm1 = 3\nbeta = 1.0\n");
        assert!(e.contains(": name: missing field `name`"), "{e}");
    }
}
