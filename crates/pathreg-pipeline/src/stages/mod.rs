//! Stages several kinds share: loading the training data (teacher networks,
//! CSV files, pinned datasets) and hyperplane arrangements (exact or sampled,
//! cached and reused by every cell with the same data).

pub mod arrangements;
pub mod data;
