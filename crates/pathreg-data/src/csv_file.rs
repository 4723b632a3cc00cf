//! User data as CSV: feature columns, then the label column. A first row that
//! is not entirely numeric is taken as the header.

use std::path::Path;

use ndarray::{Array1, Array2};

use crate::{DataError, Dataset};

/// Reads a CSV dataset. Ragged rows, non-numbers, non-finite values, a file with
/// fewer than two columns, and an empty file are errors naming the file and line.
pub fn read_csv(path: &Path) -> Result<Dataset, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_csv(&text, &path.display().to_string())
}

/// Parses CSV text; `source` names the origin in error messages.
pub fn parse_csv(text: &str, source: &str) -> Result<Dataset, DataError> {
    let malformed = |line: u64, reason: String| DataError::Malformed {
        path: source.to_string(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut header: Option<Vec<String>> = None;
    let mut values: Vec<f64> = Vec::new();
    let mut width: Option<usize> = None;
    let mut rows = 0usize;
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line());
            malformed(line, e.to_string())
        })?;
        let line = record.position().map_or(index as u64 + 1, |p| p.line());
        if record.iter().all(|f| f.is_empty()) {
            continue;
        }
        let parsed: Vec<Result<f64, _>> = record.iter().map(str::parse::<f64>).collect();
        if index == 0 && parsed.iter().any(Result::is_err) {
            header = Some(record.iter().map(str::to_string).collect());
            width = Some(record.len());
            continue;
        }
        let expected = *width.get_or_insert(record.len());
        if record.len() != expected {
            return Err(malformed(
                line,
                format!("expected {expected} fields, found {}", record.len()),
            ));
        }
        for (column, (field, value)) in record.iter().zip(parsed).enumerate() {
            match value {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(malformed(
                        line,
                        format!("column {}: {field:?} is not a finite number", column + 1),
                    ));
                }
            }
        }
        rows += 1;
    }
    let width = width.unwrap_or(0);
    if rows == 0 {
        return Err(malformed(0, "no data rows".into()));
    }
    if width < 2 {
        return Err(malformed(
            0,
            "need at least one feature column and the label column".into(),
        ));
    }
    let d = width - 1;
    let mut x = Array2::zeros((rows, d));
    let mut y = Array1::zeros(rows);
    for (i, row) in values.chunks_exact(width).enumerate() {
        for a in 0..d {
            x[[i, a]] = row[a];
        }
        y[i] = row[d];
    }
    let feature_names = match header {
        Some(names) => names[..d].to_vec(),
        None => (0..d).map(|a| format!("x{a}")).collect(),
    };
    Ok(Dataset {
        feature_names,
        x,
        y,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_with_and_without_header() {
        let with = parse_csv("a,b,label\n1,2,3\n4,5.5,-6\n", "t.csv").unwrap();
        assert_eq!(with.feature_names, ["a", "b"]);
        assert_eq!(with.x[[1, 1]], 5.5);
        assert_eq!(with.y[1], -6.0);
        let without = parse_csv("1,2,3\n4,5,6\n", "t.csv").unwrap();
        assert_eq!(without.feature_names, ["x0", "x1"]);
        assert_eq!(without.n(), 2);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = parse_csv("1,2,3\n4,5\n", "data/my.csv")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("data/my.csv:2:"), "{err}");
        assert!(err.contains("expected 3 fields"), "{err}");
        let err = parse_csv("a,b\n1,2\n3,x\n", "f.csv")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("f.csv:3:") && err.contains("\"x\""),
            "{err}"
        );
        let err = parse_csv("", "empty.csv").unwrap_err().to_string();
        assert!(
            err.contains("empty.csv") && err.contains("no data rows"),
            "{err}"
        );
        let err = parse_csv("1\n2\n", "one.csv").unwrap_err().to_string();
        assert!(err.contains("label column"), "{err}");
        let err = parse_csv("1,inf\n", "inf.csv").unwrap_err().to_string();
        assert!(err.contains("not a finite number"), "{err}");
    }

    #[test]
    fn to_csv_round_trips_bit_exactly() {
        let ds = parse_csv(
            "p,q,y\n0.1,-2.5e-17,3\n1e300,7,0.30000000000000004\n",
            "r.csv",
        )
        .unwrap();
        let again = parse_csv(&ds.to_csv(), "again.csv").unwrap();
        assert_eq!(ds, again);
    }

    #[test]
    fn read_csv_reports_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_csv(&dir.path().join("nope.csv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.csv"), "{err}");
    }
}
