//! IDX files (MNIST, Fashion-MNIST), gzip-compressed.
//!
//! Layout: magic `00 00 08 <ndim>` (type `0x08` = unsigned byte), then `ndim` big-endian
//! `u32` dimensions, then the data in row-major order. The decompressed length must be
//! exactly the header plus the product of the dimensions (checked before allocating, so a
//! hostile header cannot make us allocate more than it delivers).

use std::io::Read;

use ndarray::{Array1, Array2};

use crate::{DataError, Dataset};

/// Largest decompressed payload accepted (1 GiB): far above MNIST-sized data.
const MAX_PAYLOAD: usize = 1 << 30;

/// A decoded IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (`[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// The values, row-major.
    pub data: Vec<u8>,
}

fn malformed(origin: &str, reason: impl Into<String>) -> DataError {
    DataError::Malformed {
        path: origin.to_string(),
        line: 0,
        reason: reason.into(),
    }
}

/// Decodes a gzip-compressed IDX file held in memory.
pub fn parse_idx_gz(bytes: &[u8], origin: &str) -> Result<IdxArray, DataError> {
    if bytes.len() < 2 || bytes[0] != 0x1f || bytes[1] != 0x8b {
        return Err(malformed(origin, "not a gzip file (bad magic)"));
    }
    read_idx(flate2::read::GzDecoder::new(bytes), origin)
}

/// Decodes an uncompressed IDX file held in memory.
pub fn parse_idx(bytes: &[u8], origin: &str) -> Result<IdxArray, DataError> {
    read_idx(bytes, origin)
}

fn read_idx(mut reader: impl Read, origin: &str) -> Result<IdxArray, DataError> {
    let read_err = |what: &str, e: std::io::Error| malformed(origin, format!("{what}: {e}"));
    let mut magic = [0u8; 4];
    reader
        .read_exact(&mut magic)
        .map_err(|e| read_err("reading the IDX magic", e))?;
    if magic[0] != 0 || magic[1] != 0 {
        return Err(malformed(
            origin,
            format!(
                "bad IDX magic {:02x}{:02x}{:02x}{:02x}",
                magic[0], magic[1], magic[2], magic[3]
            ),
        ));
    }
    if magic[2] != 0x08 {
        return Err(malformed(
            origin,
            format!(
                "IDX data type 0x{:02x} is not supported (only 0x08, unsigned byte)",
                magic[2]
            ),
        ));
    }
    let ndim = usize::from(magic[3]);
    if ndim == 0 {
        return Err(malformed(origin, "IDX file with 0 dimensions"));
    }
    let mut dims = Vec::with_capacity(ndim);
    for i in 0..ndim {
        let mut d = [0u8; 4];
        reader
            .read_exact(&mut d)
            .map_err(|e| read_err(&format!("reading dimension {i}"), e))?;
        dims.push(u32::from_be_bytes(d) as usize);
    }
    let len = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_PAYLOAD)
        .ok_or_else(|| malformed(origin, format!("IDX dimensions {dims:?} are too large")))?;
    let mut data = Vec::new();
    (&mut reader)
        .take(len as u64)
        .read_to_end(&mut data)
        .map_err(|e| read_err("reading the IDX data", e))?;
    if data.len() != len {
        return Err(malformed(
            origin,
            format!(
                "truncated: dimensions {dims:?} need {len} bytes of data, found {}",
                data.len()
            ),
        ));
    }
    let mut extra = [0u8; 1];
    match reader.read(&mut extra) {
        Ok(0) => {}
        Ok(_) => {
            return Err(malformed(
                origin,
                format!("trailing bytes after the {len} bytes of data of dimensions {dims:?}"),
            ));
        }
        Err(e) => return Err(read_err("reading past the IDX data", e)),
    }
    Ok(IdxArray { dims, data })
}

/// Images and labels as a [`Dataset`]: one row per image (pixels scaled to `[0, 1]`,
/// row-major, named `x0`, `x1`, …), `y` the label as a class index. Checks that the
/// images have ≥ 2 dimensions, the labels 1, and that their counts agree.
pub fn images_and_labels(
    images: &IdxArray,
    labels: &IdxArray,
    origin: &str,
) -> Result<Dataset, DataError> {
    if images.dims.len() < 2 {
        return Err(malformed(
            origin,
            format!("images must have ≥ 2 dimensions, found {:?}", images.dims),
        ));
    }
    if labels.dims.len() != 1 {
        return Err(malformed(
            origin,
            format!("labels must have 1 dimension, found {:?}", labels.dims),
        ));
    }
    let n = images.dims[0];
    if labels.dims[0] != n {
        return Err(malformed(
            origin,
            format!("{n} images but {} labels", labels.dims[0]),
        ));
    }
    // With n ≥ 1 the pixel count is bounded by the data actually read, so the
    // feature names below cannot outgrow the file; with n = 0 it was not
    // (dimensions [0, 2, 84281096] asked for 168 million names).
    if n == 0 {
        return Err(malformed(
            origin,
            format!("no images (dimensions {:?})", images.dims),
        ));
    }
    let d = images.dims[1..]
        .iter()
        .try_fold(1usize, |acc, &k| acc.checked_mul(k))
        .filter(|&d| d >= 1 && n.checked_mul(d) == Some(images.data.len()))
        .filter(|_| labels.data.len() == n)
        .ok_or_else(|| {
            malformed(
                origin,
                format!(
                    "image dimensions {:?} do not match {} bytes of pixels and {} labels",
                    images.dims,
                    images.data.len(),
                    labels.data.len()
                ),
            )
        })?;
    let x = Array2::from_shape_vec(
        (n, d),
        images.data.iter().map(|&p| f64::from(p) / 255.0).collect(),
    )
    .map_err(|e| malformed(origin, e.to_string()))?;
    let y = Array1::from_iter(labels.data.iter().map(|&l| f64::from(l)));
    Ok(Dataset {
        feature_names: (0..d).map(|i| format!("x{i}")).collect(),
        x,
        y,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `cargo xtask fuzz` (target idx): zero images of 2 × 84281096
    /// pixels parse, and building their feature names took gigabytes.
    #[test]
    fn empty_image_sets_with_huge_dimensions_are_errors() {
        let images = parse_idx(
            &[0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 2, 5, 6, 7, 8],
            "images.idx",
        )
        .unwrap();
        let labels = parse_idx(&[0, 0, 8, 1, 0, 0, 0, 0], "labels.idx").unwrap();
        let e = images_and_labels(&images, &labels, "images.idx")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("images.idx:0: no images"), "{e}");
        // Images whose stored pixels do not match their dimensions (the
        // fields are public) are refused too, as are zero-pixel images.
        let short = IdxArray {
            dims: vec![1, u32::MAX as usize, u32::MAX as usize],
            data: vec![0; 4],
        };
        let one = IdxArray {
            dims: vec![1],
            data: vec![0],
        };
        assert!(images_and_labels(&short, &one, "s").is_err());
        let flat = IdxArray {
            dims: vec![1, 0],
            data: Vec::new(),
        };
        assert!(images_and_labels(&flat, &one, "f").is_err());
    }

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn parses_and_checks_dimensions() {
        let a = parse_idx(&idx(&[2, 2, 2], &[0, 255, 1, 2, 3, 4, 5, 6]), "t").unwrap();
        assert_eq!(a.dims, [2, 2, 2]);
        let l = parse_idx(&idx(&[2], &[3, 9]), "l").unwrap();
        let ds = images_and_labels(&a, &l, "t").unwrap();
        assert_eq!((ds.n(), ds.d()), (2, 4));
        assert_eq!(ds.x[[0, 1]], 1.0);
        assert_eq!(ds.y.to_vec(), [3.0, 9.0]);
        let e = parse_idx(&idx(&[2, 2, 2], &[0; 7]), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated"), "{e}");
        let e = parse_idx(&idx(&[1], &[0, 0]), "t").unwrap_err().to_string();
        assert!(e.contains("trailing"), "{e}");
        let mut bad = idx(&[1], &[0]);
        bad[2] = 0x0d;
        assert!(
            parse_idx(&bad, "t")
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
        let l3 = parse_idx(&idx(&[3], &[1, 2, 3]), "l").unwrap();
        assert!(images_and_labels(&a, &l3, "t").is_err());
        assert!(parse_idx(&idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), "t").is_err());
        assert!(
            parse_idx_gz(&idx(&[1], &[0]), "t")
                .unwrap_err()
                .to_string()
                .contains("gzip")
        );
    }
}
