//! The UCI collection of Fernández-Delgado et al. (JMLR 2014), in its own format.
//!
//! Each dataset folder `<name>/` holds
//! - `<name>.txt`: `key= value` lines — `n_entradas` (features), `n_clases` (classes),
//!   `n_arquivos` (1, or 2 for a dataset shipped as separate train and test files),
//!   `fich1=`, `fich2=` (the data files), `n_patrons1=`, `n_patrons2=` (their rows);
//!   other keys are ignored;
//! - `<name>_R.dat` (the `fichN` files): tab-separated, a header line (`\tf1 … fd\tclase`),
//!   then one row per pattern: a row index, `d` (already standardised) features and the
//!   class, an integer from 0;
//! - `conxuntos.dat`: one train/test partition (two lines of 0-based row indices), and
//!   `conxuntos_kfold.dat`: four such pairs (4-fold cross-validation).

use ndarray::{Array1, Array2};

use crate::DataError;

/// The metadata of `<name>.txt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UciInfo {
    /// `n_entradas`: features.
    pub n_inputs: usize,
    /// `n_clases`: classes.
    pub n_classes: usize,
    /// `fich1`, `fich2`, …: data files with their `n_patronsN` row counts when given.
    pub files: Vec<(String, Option<usize>)>,
}

/// One parsed data file.
#[derive(Debug, Clone, PartialEq)]
pub struct UciTable {
    /// Feature names from the header (`f1` … `fd`).
    pub feature_names: Vec<String>,
    /// `n × d` features.
    pub x: Array2<f64>,
    /// Class of each row, `0..n_classes`.
    pub classes: Vec<usize>,
}

fn malformed(origin: &str, line: u64, reason: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: origin.to_string(),
        line,
        reason: reason.into(),
    }
}

/// Parses `<name>.txt`.
pub fn parse_info(text: &str, origin: &str) -> Result<UciInfo, DataError> {
    let mut values: Vec<(String, String, u64)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            malformed(
                origin,
                line_no,
                format!("expected `key= value`, found {line:?}"),
            )
        })?;
        values.push((key.trim().to_string(), value.trim().to_string(), line_no));
    }
    let get = |key: &str| values.iter().find(|(k, _, _)| k == key);
    let number = |key: &str| -> Result<Option<usize>, DataError> {
        match get(key) {
            None => Ok(None),
            Some((_, v, line)) => v.parse::<usize>().map(Some).map_err(|_| {
                malformed(
                    origin,
                    *line,
                    format!("{key}: {v:?} is not a non-negative integer"),
                )
            }),
        }
    };
    let required = |key: &str| -> Result<usize, DataError> {
        number(key)?.ok_or_else(|| malformed(origin, 0, format!("missing key {key}")))
    };
    let n_inputs = required("n_entradas")?;
    let n_classes = required("n_clases")?;
    let n_files = required("n_arquivos")?;
    if n_inputs == 0 {
        return Err(malformed(origin, 0, "n_entradas must be ≥ 1"));
    }
    if n_classes < 2 {
        return Err(malformed(
            origin,
            0,
            format!("n_clases = {n_classes}: need ≥ 2 classes"),
        ));
    }
    if n_files == 0 || n_files > 16 {
        return Err(malformed(
            origin,
            0,
            format!("n_arquivos = {n_files}: expected 1 or 2"),
        ));
    }
    let mut files = Vec::with_capacity(n_files);
    for k in 1..=n_files {
        let key = format!("fich{k}");
        let (_, name, line) =
            get(&key).ok_or_else(|| malformed(origin, 0, format!("missing key {key}")))?;
        if name.is_empty() || name.contains(['/', '\\']) || name == "." || name == ".." {
            return Err(malformed(
                origin,
                *line,
                format!("{key}: {name:?} is not a plain file name"),
            ));
        }
        files.push((name.clone(), number(&format!("n_patrons{k}"))?));
    }
    Ok(UciInfo {
        n_inputs,
        n_classes,
        files,
    })
}

/// Parses a tab-separated `_R.dat` file with `n_inputs` features and classes in
/// `0..n_classes`. Errors name the file and line.
pub fn parse_dat(
    text: &str,
    origin: &str,
    n_inputs: usize,
    n_classes: usize,
) -> Result<UciTable, DataError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines
        .next()
        .ok_or_else(|| malformed(origin, 0, "empty file"))?;
    let mut names: Vec<&str> = header.split('\t').map(str::trim).collect();
    if names.first() == Some(&"") {
        names.remove(0);
    }
    // Checked: `n_entradas` may be as large as `usize::MAX`.
    if n_inputs.checked_add(1) != Some(names.len()) {
        return Err(malformed(
            origin,
            1,
            format!(
                "header has {} columns, expected {} features and the class",
                names.len(),
                n_inputs
            ),
        ));
    }
    let feature_names: Vec<String> = names[..n_inputs].iter().map(|s| s.to_string()).collect();
    let mut x = Vec::new();
    let mut classes = Vec::new();
    for (i, line) in lines {
        let line_no = i as u64 + 1;
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        if fields.len() != n_inputs + 2 {
            return Err(malformed(
                origin,
                line_no,
                format!(
                    "{} fields, expected {} (index, {n_inputs} features, class)",
                    fields.len(),
                    n_inputs + 2
                ),
            ));
        }
        for (j, field) in fields[1..=n_inputs].iter().enumerate() {
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => x.push(v),
                _ => {
                    return Err(malformed(
                        origin,
                        line_no,
                        format!("feature {}: {field:?} is not a finite number", j + 1),
                    ));
                }
            }
        }
        let class_field = fields[n_inputs + 1];
        let class = class_field
            .parse::<f64>()
            .ok()
            .filter(|c| c.fract() == 0.0 && *c >= 0.0 && *c < n_classes as f64)
            .ok_or_else(|| {
                malformed(
                    origin,
                    line_no,
                    format!("class {class_field:?} is not an integer in 0..{n_classes}"),
                )
            })?;
        classes.push(class as usize);
    }
    if classes.is_empty() {
        return Err(malformed(origin, 0, "no data rows"));
    }
    let x = Array2::from_shape_vec((classes.len(), n_inputs), x)
        .map_err(|e| malformed(origin, 0, e.to_string()))?;
    Ok(UciTable {
        feature_names,
        x,
        classes,
    })
}

/// One train/test partition of row indices (0-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fold {
    /// Training rows.
    pub train: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

/// Parses `conxuntos.dat` / `conxuntos_kfold.dat`: pairs of lines (train, then test) of
/// whitespace-separated 0-based indices `< n`; a pair may not share an index.
pub fn parse_folds(text: &str, origin: &str, n: usize) -> Result<Vec<Fold>, DataError> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.is_empty() || !lines.len().is_multiple_of(2) {
        return Err(malformed(
            origin,
            0,
            format!(
                "{} lines: expected pairs of lines (train indices, test indices)",
                lines.len()
            ),
        ));
    }
    let parse_line = |i: usize, line: &str| -> Result<Vec<usize>, DataError> {
        line.split_whitespace()
            .map(|t| {
                t.parse::<usize>().ok().filter(|&v| v < n).ok_or_else(|| {
                    malformed(
                        origin,
                        i as u64 + 1,
                        format!("{t:?} is not a row index below {n}"),
                    )
                })
            })
            .collect()
    };
    let mut folds = Vec::with_capacity(lines.len() / 2);
    for pair in 0..lines.len() / 2 {
        let train = parse_line(2 * pair, lines[2 * pair])?;
        let test = parse_line(2 * pair + 1, lines[2 * pair + 1])?;
        let mut seen = vec![false; n];
        for &i in train.iter().chain(&test) {
            if std::mem::replace(&mut seen[i], true) {
                return Err(malformed(
                    origin,
                    2 * pair as u64 + 1,
                    format!("row {i} appears twice in partition {pair}"),
                ));
            }
        }
        folds.push(Fold { train, test });
    }
    Ok(folds)
}

/// How labels are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelKind {
    /// Two classes: class 0 → −1, class 1 → +1.
    Binary,
    /// `classes` classes: the label is the class index `0..classes`.
    MultiClass {
        /// Number of classes.
        classes: usize,
    },
    /// Real-valued labels (regression, user CSV files).
    Real,
}

/// Labels from class indices: ±1 for two classes, the index otherwise.
pub fn encode_labels(classes: &[usize], n_classes: usize) -> (Array1<f64>, LabelKind) {
    if n_classes == 2 {
        (
            classes
                .iter()
                .map(|&c| if c == 0 { -1.0 } else { 1.0 })
                .collect(),
            LabelKind::Binary,
        )
    } else {
        (
            classes.iter().map(|&c| c as f64).collect(),
            LabelKind::MultiClass { classes: n_classes },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_data() {
        let info = parse_info("n_entradas= 2\nn_clases= 2\nn_arquivos= 2\nfich1= a_train_R.dat\nn_patrons1= 2\nfich2= a_test_R.dat\nn_patrons2= 1\n", "a.txt").unwrap();
        assert_eq!(info.n_inputs, 2);
        assert_eq!(
            info.files,
            [
                ("a_train_R.dat".into(), Some(2)),
                ("a_test_R.dat".into(), Some(1))
            ]
        );
        assert!(
            parse_info(
                "n_entradas= 2\nn_clases= 2\nn_arquivos= 1\nfich1= ../x\n",
                "a.txt"
            )
            .is_err()
        );
        let e = parse_info("n_entradas= x\n", "a.txt")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.txt:1:"), "{e}");
        let t = parse_dat(
            "\tf1\tf2\tclase\n1\t0.5\t-1\t1\n2\t2\t3\t0\n",
            "a.dat",
            2,
            2,
        )
        .unwrap();
        assert_eq!(t.classes, [1, 0]);
        assert_eq!(t.x[[1, 1]], 3.0);
        assert_eq!(t.feature_names, ["f1", "f2"]);
        let e = parse_dat("\tf1\tf2\tclase\n1\t0.5\t-1\t2\n", "a.dat", 2, 2)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.dat:2: class"), "{e}");
        let e = parse_dat("\tf1\tf2\tclase\n1\t0.5\t1\n", "a.dat", 2, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 fields"), "{e}");
        let e = parse_dat("\tf1\tf2\tclase\n1\tnan\t1\t1\n", "a.dat", 2, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("feature 1"), "{e}");
        // `n_entradas= 18446744073709551615` overflowed `n_inputs + 1`
        // (a panic where overflow is checked).
        let e = parse_dat("\tf1\tclase\n1\t0\t1\n", "a.dat", usize::MAX, 2)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.dat:1: header has 2 columns"), "{e}");
    }

    #[test]
    fn folds() {
        let f = parse_folds("0 2 \n1 \n", "c", 3).unwrap();
        assert_eq!(
            f,
            [Fold {
                train: vec![0, 2],
                test: vec![1]
            }]
        );
        assert!(parse_folds("0 1\n1\n", "c", 3).is_err());
        assert!(parse_folds("0 5\n1\n", "c", 3).is_err());
        assert!(parse_folds("0 1\n", "c", 3).is_err());
        let (y, kind) = encode_labels(&[0, 1, 1], 2);
        assert_eq!(
            (y.to_vec(), kind),
            (vec![-1.0, 1.0, 1.0], LabelKind::Binary)
        );
    }
}
