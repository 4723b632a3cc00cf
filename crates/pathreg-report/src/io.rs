//! CSV and Parquet I/O through polars.

use std::path::Path;

use polars::prelude::{
    self as pl, CsvWriter, DataFrame, DataType, ParquetReader, ParquetWriter, SerReader, SerWriter,
};

use crate::atomic::write_atomic;
use crate::{Column, ReportError, Table};

fn polars_err(path: &Path, e: impl std::fmt::Display) -> ReportError {
    ReportError::Polars {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// Converts a [`Table`] to a polars data frame; `path` only labels errors.
fn to_data_frame(table: &Table, path: &Path) -> Result<DataFrame, ReportError> {
    let columns: Vec<pl::Column> = table
        .columns()
        .map(|(name, col)| {
            let name = pl::PlSmallStr::from_str(name);
            match col {
                Column::F64(v) => pl::Column::new(name, v.as_slice()),
                Column::I64(v) => pl::Column::new(name, v.as_slice()),
                Column::Str(v) => pl::Column::new(name, v.as_slice()),
                Column::Bool(v) => pl::Column::new(name, v.as_slice()),
            }
        })
        .collect();
    DataFrame::new(table.n_rows(), columns).map_err(|e| polars_err(path, e))
}

/// Writes `table` as CSV (comma-separated, one header row) to `path`, atomically.
///
/// Floats are written in the shortest representation that parses back to the same `f64`
/// (e.g. `0.1`, `1e-10`, `NaN`, `inf`), so values survive a round trip bit-exactly; booleans are
/// `true`/`false`; strings are quoted only when needed.
///
/// # Errors
/// [`ReportError::Polars`] if serialisation fails, [`ReportError::Io`] if the file cannot be
/// written.
pub fn write_csv(table: &Table, path: &Path) -> Result<(), ReportError> {
    let bytes = csv_bytes(table, path)?;
    write_atomic(path, &bytes)
}

/// Serialises `table` to CSV bytes; `path` only labels errors.
fn csv_bytes(table: &Table, path: &Path) -> Result<Vec<u8>, ReportError> {
    let mut df = to_data_frame(table, path)?;
    let mut buf = Vec::new();
    CsvWriter::new(&mut buf)
        .include_header(true)
        .finish(&mut df)
        .map_err(|e| polars_err(path, e))?;
    Ok(buf)
}

/// Writes `table` as a Parquet file to `path`, atomically (polars' default compression).
///
/// # Errors
/// [`ReportError::Polars`] if serialisation fails, [`ReportError::Io`] if the file cannot be
/// written.
pub fn write_parquet(table: &Table, path: &Path) -> Result<(), ReportError> {
    let mut df = to_data_frame(table, path)?;
    let mut buf = Vec::new();
    ParquetWriter::new(&mut buf)
        .finish(&mut df)
        .map_err(|e| polars_err(path, e))?;
    write_atomic(path, &buf)
}

/// Reads a Parquet file into a [`Table`].
///
/// Float columns become [`Column::F64`] (`f32` is widened), integer columns [`Column::I64`],
/// string columns [`Column::Str`] and boolean columns [`Column::Bool`].
///
/// # Errors
/// [`ReportError::Io`] if the file cannot be opened, [`ReportError::Polars`] if it is not valid
/// Parquet, [`ReportError::UnsupportedColumn`] for other column types (or integers outside the
/// `i64` range) and [`ReportError::NullValues`] for columns with nulls.
pub fn read_parquet(path: &Path) -> Result<Table, ReportError> {
    let file = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
    let df = ParquetReader::new(file)
        .finish()
        .map_err(|e| polars_err(path, e))?;
    from_data_frame(&df, path)
}

fn from_data_frame(df: &DataFrame, path: &Path) -> Result<Table, ReportError> {
    let mut table = Table::new();
    for col in df.columns() {
        let name = col.name().as_str();
        let nulls = col.null_count();
        if nulls > 0 {
            return Err(ReportError::NullValues {
                path: path.to_path_buf(),
                name: name.to_owned(),
                nulls,
            });
        }
        let unsupported = || ReportError::UnsupportedColumn {
            path: path.to_path_buf(),
            name: name.to_owned(),
            dtype: col.dtype().to_string(),
        };
        let null_err = || ReportError::NullValues {
            path: path.to_path_buf(),
            name: name.to_owned(),
            nulls: 1,
        };
        let dtype = col.dtype();
        let column = if dtype.is_float() {
            let cast = col
                .cast(&DataType::Float64)
                .map_err(|e| polars_err(path, e))?;
            let ca = cast.f64().map_err(|e| polars_err(path, e))?;
            Column::F64(ca.into_no_null_iter().collect())
        } else if dtype.is_integer() {
            let cast = col.cast(&DataType::Int64).map_err(|_| unsupported())?;
            if cast.null_count() > 0 {
                return Err(unsupported());
            }
            let ca = cast.i64().map_err(|e| polars_err(path, e))?;
            Column::I64(ca.into_no_null_iter().collect())
        } else if matches!(dtype, DataType::String) {
            let ca = col.str().map_err(|e| polars_err(path, e))?;
            let values: Option<Vec<String>> = ca.iter().map(|v| v.map(str::to_owned)).collect();
            Column::Str(values.ok_or_else(null_err)?)
        } else if matches!(dtype, DataType::Boolean) {
            let ca = col.bool().map_err(|e| polars_err(path, e))?;
            let values: Option<Vec<bool>> = ca.iter().collect();
            Column::Bool(values.ok_or_else(null_err)?)
        } else {
            return Err(unsupported());
        };
        table.push_column(name, column)?;
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Floats chosen to stress shortest-representation printing.
    const TRICKY: [f64; 9] = [
        0.1,
        1.0 / 3.0,
        -2.5e-300,
        1e21,
        f64::MIN_POSITIVE,
        5e-324,
        f64::MAX,
        0.0,
        123_456_789.123_456_78,
    ];

    fn sample_table() -> Table {
        let n = TRICKY.len();
        Table::new()
            .with_column("x", Column::F64(TRICKY.to_vec()))
            .unwrap()
            .with_column(
                "seed",
                Column::I64((0..n as i64).map(|i| i * 1_000_000_007 - 3).collect()),
            )
            .unwrap()
            .with_column(
                "method",
                Column::Str(
                    (0..n)
                        .map(|i| format!("m{i}, \"quoted\" ünïcode"))
                        .collect(),
                ),
            )
            .unwrap()
            .with_column("ok", Column::Bool((0..n).map(|i| i % 2 == 0).collect()))
            .unwrap()
    }

    #[test]
    fn csv_has_header_and_round_trips_floats_bit_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/t.csv");
        let table = sample_table();
        write_csv(&table, &path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("x,seed,method,ok"));
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len(), TRICKY.len());
        for (row, expected) in rows.iter().zip(TRICKY) {
            let first = row.split(',').next().unwrap();
            let parsed: f64 = first.parse().unwrap();
            assert_eq!(
                parsed.to_bits(),
                expected.to_bits(),
                "{first} vs {expected}"
            );
        }
        // Second row: 1/3, seed 1_000_000_004, quoted string with escaped quotes, false.
        assert_eq!(
            rows[1],
            format!(
                "{},1000000004,\"m1, \"\"quoted\"\" ünïcode\",false",
                1.0_f64 / 3.0
            )
        );
        assert!(rows[0].ends_with(",true"));
    }

    #[test]
    fn csv_writes_non_finite_floats_parseably() {
        let t = Table::new()
            .with_column("v", Column::F64(vec![f64::NAN, f64::INFINITY, -0.0]))
            .unwrap();
        let text = String::from_utf8(csv_bytes(&t, Path::new("mem")).unwrap()).unwrap();
        let vals: Vec<f64> = text.lines().skip(1).map(|l| l.parse().unwrap()).collect();
        assert!(vals[0].is_nan());
        assert_eq!(vals[1], f64::INFINITY);
        assert_eq!(vals[2], 0.0);
    }

    fn assert_tables_bit_equal(a: &Table, b: &Table) {
        assert_eq!(a.column_names(), b.column_names());
        for ((_, ca), (name, cb)) in a.columns().zip(b.columns()) {
            match (ca, cb) {
                (Column::F64(x), Column::F64(y)) => {
                    let xb: Vec<u64> = x.iter().map(|v| v.to_bits()).collect();
                    let yb: Vec<u64> = y.iter().map(|v| v.to_bits()).collect();
                    assert_eq!(xb, yb, "column {name}");
                }
                _ => assert_eq!(ca, cb, "column {name}"),
            }
        }
    }

    #[test]
    fn parquet_round_trip_is_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let mut table = sample_table();
        table
            .push_column(
                "special",
                Column::F64(vec![
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    -0.0,
                    1.0,
                    2.0,
                    3.0,
                    4.0,
                    5.0,
                ]),
            )
            .unwrap();
        write_parquet(&table, &path).unwrap();
        let back = read_parquet(&path).unwrap();
        assert_tables_bit_equal(&table, &back);
        assert_eq!(back.n_rows(), TRICKY.len());
        // Sanity check that the comparison can fail.
        let other = Table::new()
            .with_column("x", Column::F64(vec![0.0]))
            .unwrap();
        assert_ne!(other, back);
    }

    #[test]
    fn parquet_round_trip_of_empty_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("empty.parquet");
        let table = Table::new()
            .with_column("a", Column::F64(vec![]))
            .unwrap()
            .with_column("b", Column::Str(vec![]))
            .unwrap();
        write_parquet(&table, &path).unwrap();
        assert_eq!(read_parquet(&path).unwrap(), table);
    }

    #[test]
    fn read_parquet_reports_missing_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.parquet");
        assert!(matches!(
            read_parquet(&missing),
            Err(ReportError::Io { .. })
        ));
        let corrupt = dir.path().join("corrupt.parquet");
        std::fs::write(&corrupt, b"definitely not parquet").unwrap();
        let err = read_parquet(&corrupt).unwrap_err();
        assert!(matches!(err, ReportError::Polars { .. }), "{err:?}");
        assert!(err.to_string().contains("corrupt.parquet"));
    }
}
