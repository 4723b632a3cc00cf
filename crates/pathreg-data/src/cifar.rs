//! CIFAR-10, binary version: `cifar-10-binary.tar.gz` holds
//! `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`, each a sequence of
//! 3073-byte records (1 label byte 0–9, then 1024 red, 1024 green, 1024 blue pixel bytes,
//! row-major 32×32).
//!
//! The batches are read straight from the (verified) archive, through
//! [`crate::archive::visit_tar_gz`], which refuses unsafe members; nothing is written
//! to disk.

use std::io::Read;
use std::path::Path;

use ndarray::{Array1, Array2};

use crate::{DataError, Dataset};

/// Bytes per record: 1 label + 3·32·32 pixels.
pub const RECORD: usize = 1 + PIXELS;
/// Pixel bytes per image.
pub const PIXELS: usize = 3 * 32 * 32;
/// Records per batch file of the canonical archive.
pub const BATCH_RECORDS: usize = 10_000;

fn malformed(origin: &str, reason: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: origin.to_string(),
        line: 0,
        reason: reason.into(),
    }
}

/// Decodes records into `(pixels scaled to [0, 1], labels)`; appends to `x` and `y`.
/// The length must be a positive multiple of [`RECORD`], and every label ≤ 9.
pub fn parse_records(
    bytes: &[u8],
    origin: &str,
    x: &mut Vec<f64>,
    y: &mut Vec<f64>,
) -> Result<usize, DataError> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD) {
        return Err(malformed(
            origin,
            format!(
                "{} bytes is not a positive multiple of the {RECORD}-byte record",
                bytes.len()
            ),
        ));
    }
    let n = bytes.len() / RECORD;
    x.reserve(n * PIXELS);
    y.reserve(n);
    for (i, record) in bytes.chunks_exact(RECORD).enumerate() {
        let label = record[0];
        if label > 9 {
            return Err(malformed(
                origin,
                format!("record {i}: label {label} is not in 0..=9"),
            ));
        }
        y.push(f64::from(label));
        x.extend(record[1..].iter().map(|&p| f64::from(p) / 255.0));
    }
    Ok(n)
}

/// Records as a [`Dataset`] (features `x0` … `x3071`, channel-major as stored).
pub fn records_dataset(bytes: &[u8], origin: &str) -> Result<Dataset, DataError> {
    let mut x = Vec::new();
    let mut y = Vec::new();
    let n = parse_records(bytes, origin, &mut x, &mut y)?;
    to_dataset(n, x, y, origin)
}

fn to_dataset(n: usize, x: Vec<f64>, y: Vec<f64>, origin: &str) -> Result<Dataset, DataError> {
    Ok(Dataset {
        feature_names: (0..PIXELS).map(|i| format!("x{i}")).collect(),
        x: Array2::from_shape_vec((n, PIXELS), x).map_err(|e| malformed(origin, e.to_string()))?,
        y: Array1::from(y),
    })
}

/// Reads the train (`data_batch_1.bin` … `data_batch_5.bin`, in that order) and test
/// (`test_batch.bin`) sets from a CIFAR-10 binary `.tar.gz` stream. Each batch must hold
/// exactly `records_per_batch` records (10 000 in the canonical archive); missing or
/// duplicate batches are errors.
pub fn read_tar_gz<R: Read>(
    reader: R,
    origin: &str,
    records_per_batch: usize,
) -> Result<(Dataset, Dataset), DataError> {
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    let mut batches: Vec<Option<Vec<u8>>> = vec![None; names.len()];
    let expected = records_per_batch * RECORD;
    crate::archive::visit_tar_gz(reader, origin, |path: &Path, member, size| {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Ok(());
        };
        let Some(i) = names.iter().position(|n| *n == name) else {
            return Ok(());
        };
        let what = format!("{origin} member {}", path.display());
        if batches[i].is_some() {
            return Err(malformed(&what, "duplicate batch"));
        }
        if size != expected as u64 {
            return Err(malformed(
                &what,
                format!(
                    "{size} bytes, expected {expected} ({records_per_batch} records of {RECORD} bytes)"
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(expected);
        member
            .take(expected as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| malformed(&what, format!("reading: {e}")))?;
        if bytes.len() != expected {
            return Err(malformed(
                &what,
                format!("truncated: {} of {expected} bytes", bytes.len()),
            ));
        }
        batches[i] = Some(bytes);
        Ok(())
    })?;
    let mut train_x = Vec::new();
    let mut train_y = Vec::new();
    let mut train_n = 0;
    for (name, batch) in names.iter().zip(&batches).take(5) {
        let bytes = batch
            .as_ref()
            .ok_or_else(|| malformed(origin, format!("no member {name}")))?;
        train_n += parse_records(
            bytes,
            &format!("{origin} member {name}"),
            &mut train_x,
            &mut train_y,
        )?;
    }
    let test_bytes = batches[5]
        .as_ref()
        .ok_or_else(|| malformed(origin, "no member test_batch.bin"))?;
    let test = records_dataset(test_bytes, &format!("{origin} member test_batch.bin"))?;
    Ok((to_dataset(train_n, train_x, train_y, origin)?, test))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records() {
        let mut bytes = vec![0u8; 2 * RECORD];
        bytes[0] = 3;
        bytes[1] = 255;
        bytes[RECORD] = 9;
        let ds = records_dataset(&bytes, "t").unwrap();
        assert_eq!((ds.n(), ds.d()), (2, 3072));
        assert_eq!(ds.y.to_vec(), [3.0, 9.0]);
        assert_eq!(ds.x[[0, 0]], 1.0);
        assert!(records_dataset(&bytes[..RECORD + 5], "t").is_err());
        bytes[RECORD] = 10;
        assert!(
            records_dataset(&bytes, "t")
                .unwrap_err()
                .to_string()
                .contains("label 10")
        );
    }
}
