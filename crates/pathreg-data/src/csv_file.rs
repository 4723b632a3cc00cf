//! User data as CSV: feature columns, then the label column. A first row that
//! is not entirely numeric is taken as the header.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use ndarray::{Array1, Array2};

use crate::{DataError, Dataset};

/// The largest CSV file [`read_csv`] (and the registry's `csv:<path>`) reads:
/// 1 GiB.
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Reads a CSV dataset. Ragged rows, non-numbers, non-finite values, a file with
/// fewer than two columns, and an empty file are errors naming the file and line;
/// so is anything [`read_csv_bytes`] refuses.
pub fn read_csv(path: &Path) -> Result<Dataset, DataError> {
    let origin = path.display().to_string();
    let text = String::from_utf8(read_csv_bytes(path)?).map_err(|e| DataError::Malformed {
        path: origin.clone(),
        line: 1 + e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count() as u64,
        reason: "not UTF-8 text".into(),
    })?;
    parse_csv(&text, &origin)
}

/// The bytes of the file at `path`, which must be a regular file (or a link
/// to one) of at most [`MAX_CSV_BYTES`]: a directory, a device such as
/// `/dev/zero`, a FIFO or a socket is refused before it is opened, and the
/// cap is enforced while reading too (a file that grows). Errors name the
/// file and the reason.
pub fn read_csv_bytes(path: &Path) -> Result<Vec<u8>, DataError> {
    let origin = path.display().to_string();
    let refuse = |kind: ErrorKind, reason: String| DataError::Io {
        path: origin.clone(),
        source: std::io::Error::new(kind, reason),
    };
    let io = |source| DataError::Io {
        path: origin.clone(),
        source,
    };
    let not_regular = |file_type: std::fs::FileType| {
        refuse(
            ErrorKind::InvalidInput,
            format!(
                "{}, not a regular file: a CSV dataset must be a file",
                describe_file_type(file_type)
            ),
        )
    };
    let too_large = |size: u64| {
        refuse(
            ErrorKind::FileTooLarge,
            format!(
                "{size} bytes or more, over the limit of {MAX_CSV_BYTES} bytes for a CSV dataset \
                 (MAX_CSV_BYTES)"
            ),
        )
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    if meta.len() > MAX_CSV_BYTES {
        return Err(too_large(meta.len()));
    }
    let file = File::open(path).map_err(io)?;
    // The path may have been replaced since it was looked at.
    let meta = file.metadata().map_err(io)?;
    if !meta.is_file() {
        return Err(not_regular(meta.file_type()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_CSV_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_CSV_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, for error messages.
fn describe_file_type(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_dir() {
        "a directory"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
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

    #[test]
    fn read_csv_refuses_what_is_not_a_regular_file() {
        // /dev/zero used to be read until memory ran out.
        let err = read_csv(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(
            err.starts_with("/dev/zero: a character device, not a regular file"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = read_csv(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a directory, not a regular file"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        // A link to a regular file is read.
        let file = dir.path().join("data.csv");
        std::fs::write(&file, "a,y\n1,2\n").unwrap();
        let link = dir.path().join("link.csv");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_csv(&link).unwrap().n(), 1);
        let link_to_device = dir.path().join("zero.csv");
        std::os::unix::fs::symlink("/dev/zero", &link_to_device).unwrap();
        assert!(read_csv(&link_to_device).is_err());
    }

    #[test]
    fn read_csv_refuses_files_over_the_size_cap() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.csv");
        // A sparse file: no disk space, but over the cap.
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(MAX_CSV_BYTES + 1).unwrap();
        let err = read_csv(&big).unwrap_err().to_string();
        assert!(err.contains("big.csv"), "{err}");
        assert!(err.contains("MAX_CSV_BYTES"), "{err}");
        let err = read_csv_bytes(&big).unwrap_err();
        assert!(
            matches!(&err, DataError::Io { source, .. } if source.kind() == ErrorKind::FileTooLarge),
            "{err}"
        );
        let bad = dir.path().join("latin1.csv");
        std::fs::write(&bad, b"a,y\n\xe9,1\n").unwrap();
        let err = read_csv(&bad).unwrap_err().to_string();
        assert!(err.contains("latin1.csv:2:"), "{err}");
        assert!(
            err.contains("latin1.csv") && err.contains("not UTF-8"),
            "{err}"
        );
    }
}
