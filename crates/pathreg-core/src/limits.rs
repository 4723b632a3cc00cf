//! The limit on what one constructor may allocate from sizes a user chose.
//!
//! Every constructor of this crate (and of `pathreg-data`) that allocates from
//! user-given sizes (`n`, `d`, `K`, `m1`, `m2`, …) first computes the bytes it
//! is about to allocate, with saturating arithmetic, and refuses with
//! [`CoreError::TooLarge`] beyond [`MAX_ALLOCATION_BYTES`] instead of letting
//! the allocator abort the process. Each has a public `*_bytes` estimate (e.g.
//! [`crate::ParallelNetwork::parameter_bytes`]) so that a caller can check a
//! configuration before any work starts.

use crate::CoreError;

/// The most bytes one constructor allocates from user-given sizes: 16 GiB.
///
/// The largest allocations of the paper's experiments are far below it (the
/// masks of Table 3's convex model on MNIST, two `n × K·m1` arrays with
/// `n = 60000`, `K = 40`, `m1 = 100`, take about 4 GB); sizes of 10⁷–10⁹,
/// typos in a manifest, are far above it.
pub const MAX_ALLOCATION_BYTES: u64 = 16 << 30;

/// Bytes of an array of `elem`-byte elements with the given dimensions,
/// saturating at `u64::MAX` (which is over any limit).
pub fn array_bytes(elem: usize, dims: &[usize]) -> u64 {
    dims.iter()
        .fold(elem as u64, |acc, &d| acc.saturating_mul(d as u64))
}

/// The sum of `parts`, saturating at `u64::MAX`.
pub fn total_bytes(parts: &[u64]) -> u64 {
    parts.iter().fold(0u64, |acc, &b| acc.saturating_add(b))
}

/// `Err(CoreError::TooLarge)` when `bytes` exceeds [`MAX_ALLOCATION_BYTES`];
/// `what` names the allocation and its sizes in the message.
pub fn check_allocation(what: impl FnOnce() -> String, bytes: u64) -> Result<(), CoreError> {
    if bytes <= MAX_ALLOCATION_BYTES {
        return Ok(());
    }
    Err(CoreError::TooLarge(format!(
        "{} would allocate {}, over the limit of {} (MAX_ALLOCATION_BYTES)",
        what(),
        describe_bytes(u128::from(bytes)),
        describe_bytes(u128::from(MAX_ALLOCATION_BYTES)),
    )))
}

/// `"123456789 bytes (117.7 MiB)"`; a saturated count reads as "more than".
pub fn describe_bytes(bytes: u128) -> String {
    if bytes >= u128::from(u64::MAX) {
        return format!("more than {} bytes", u64::MAX);
    }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut value = bytes as f64;
    let mut unit = "";
    for u in units {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if unit.is_empty() {
        format!("{bytes} bytes")
    } else {
        format!("{bytes} bytes ({value:.1} {unit})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_saturate_instead_of_overflowing() {
        assert_eq!(array_bytes(8, &[3, 4]), 96);
        assert_eq!(array_bytes(8, &[]), 8);
        assert_eq!(array_bytes(8, &[usize::MAX, 2]), u64::MAX);
        assert_eq!(total_bytes(&[u64::MAX, 1]), u64::MAX);
        assert_eq!(total_bytes(&[1, 2, 3]), 6);
    }

    #[test]
    fn the_refusal_names_the_allocation_the_bytes_and_the_limit() {
        assert!(check_allocation(|| "x".into(), MAX_ALLOCATION_BYTES).is_ok());
        let err = check_allocation(|| "a 10⁹ × 10⁹ matrix".into(), u64::MAX)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a 10⁹ × 10⁹ matrix"), "{err}");
        assert!(err.contains("MAX_ALLOCATION_BYTES"), "{err}");
        assert!(err.contains("17179869184 bytes (16.0 GiB)"), "{err}");
        assert_eq!(describe_bytes(1000), "1000 bytes");
        assert_eq!(describe_bytes(3 << 20), "3145728 bytes (3.0 MiB)");
    }
}
