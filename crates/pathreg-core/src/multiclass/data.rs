//! Labelled float32 samples of a `C`-class problem, one-hot targets and
//! argmax accuracy.

use ndarray::{Array2, ArrayView2};

use crate::CoreError;

/// `n` samples in `R^d` (float32, one per row) with class labels `0..C`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSet {
    x: Array2<f32>,
    labels: Vec<usize>,
    classes: usize,
}

impl ImageSet {
    /// Samples `x` (`n × d`) with `labels` (each `< classes`).
    pub fn new(x: Array2<f32>, labels: Vec<usize>, classes: usize) -> Result<Self, CoreError> {
        if x.nrows() != labels.len() {
            return Err(CoreError::Shape(format!(
                "{} samples but {} labels",
                x.nrows(),
                labels.len()
            )));
        }
        if classes < 2 {
            return Err(CoreError::Shape(format!(
                "a classification problem needs at least 2 classes, got {classes}"
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
            return Err(CoreError::Shape(format!(
                "label {bad} is not one of the {classes} classes 0..{}",
                classes - 1
            )));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::Shape(
                "samples contain NaN or infinite values".into(),
            ));
        }
        Ok(Self { x, labels, classes })
    }

    /// Samples, `n × d`.
    pub fn x(&self) -> ArrayView2<'_, f32> {
        self.x.view()
    }
    /// Class of each sample.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }
    /// Number of classes `C`.
    pub fn classes(&self) -> usize {
        self.classes
    }
    /// Number of samples.
    pub fn n(&self) -> usize {
        self.x.nrows()
    }
    /// Number of features.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// The samples `rows`, in that order, as a contiguous `b × d` matrix.
    pub fn gather(&self, rows: &[usize]) -> Array2<f32> {
        let mut out = Array2::zeros((rows.len(), self.d()));
        for (mut dst, &r) in out.rows_mut().into_iter().zip(rows) {
            dst.assign(&self.x.row(r));
        }
        out
    }

    /// One-hot targets of `rows`: `Y[i, c] = 1[label(rows[i]) = c]`
    /// (`b × C`).
    pub fn targets(&self, rows: &[usize]) -> Array2<f32> {
        let mut y = Array2::zeros((rows.len(), self.classes));
        for (i, &r) in rows.iter().enumerate() {
            y[[i, self.labels[r]]] = 1.0;
        }
        y
    }
}

/// The index of each row's largest output (the first on ties): the predicted
/// class.
pub fn argmax_rows(outputs: ArrayView2<f32>) -> Vec<usize> {
    outputs
        .rows()
        .into_iter()
        .map(|row| {
            let mut best = 0;
            for (c, v) in row.iter().enumerate() {
                if *v > row[best] {
                    best = c;
                }
            }
            best
        })
        .collect()
}

/// How many rows of `outputs` predict (by argmax) the class in `labels`.
pub fn correct(outputs: ArrayView2<f32>, labels: &[usize]) -> usize {
    argmax_rows(outputs)
        .iter()
        .zip(labels)
        .filter(|(p, l)| p == l)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn targets_gather_and_argmax() {
        let set = ImageSet::new(
            array![[0.0f32, 1.0], [2.0, 3.0], [4.0, 5.0]],
            vec![2, 0, 1],
            3,
        )
        .unwrap();
        assert_eq!(set.gather(&[2, 0]), array![[4.0f32, 5.0], [0.0, 1.0]]);
        assert_eq!(
            set.targets(&[0, 2]),
            array![[0.0f32, 0.0, 1.0], [0.0, 1.0, 0.0]]
        );
        let out = array![[0.1f32, 0.9, 0.2], [0.5, 0.5, 0.0]];
        assert_eq!(argmax_rows(out.view()), vec![1, 0]);
        assert_eq!(correct(out.view(), &[1, 2]), 1);
    }

    #[test]
    fn bad_labels_and_values_are_errors() {
        let x = array![[0.0f32], [1.0]];
        assert!(ImageSet::new(x.clone(), vec![0, 3], 3).is_err());
        assert!(ImageSet::new(x.clone(), vec![0], 3).is_err());
        assert!(ImageSet::new(x, vec![0, 0], 1).is_err());
        assert!(ImageSet::new(array![[f32::NAN]], vec![0], 2).is_err());
    }
}
