//! Train/test splits and preprocessing.

use ndarray::{Array1, Axis};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::{DataError, Dataset};

/// How to split a dataset into train and test sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Split {
    /// Seeded split stratified by class: in each class (in increasing class order), the
    /// rows are shuffled with one `ChaCha8Rng::seed_from_u64(seed)` stream and
    /// `round(test_fraction · n_class)` go to the test set. Both sets keep the original
    /// row order. For real-valued labels the split is a plain seeded shuffle.
    /// The paper's UCI protocol is `test_fraction = 0.2`. Pools all files of the dataset.
    Stratified {
        /// Fraction of each class in the test set, in `[0, 1)`.
        test_fraction: f64,
        /// Seed.
        seed: u64,
    },
    /// The published split: MNIST's / Fashion-MNIST's / CIFAR-10's train and test files,
    /// or a UCI dataset shipped as two files (`fich1` train, `fich2` test).
    Official,
    /// UCI only: the collection's `conxuntos.dat` partition (line 1 train, line 2 test).
    UciConxuntos,
    /// UCI only: fold `fold` (0–3) of `conxuntos_kfold.dat`.
    UciKfold {
        /// Fold index.
        fold: usize,
    },
    /// Everything in the training set; the test set is empty.
    None,
}

impl Split {
    /// The paper's 80 %/20 % stratified split with this seed.
    pub fn paper(seed: u64) -> Split {
        Split::Stratified {
            test_fraction: 0.2,
            seed,
        }
    }
}

impl std::fmt::Display for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Split::Stratified {
                test_fraction,
                seed,
            } => {
                write!(f, "stratified, test fraction {test_fraction}, seed {seed}")
            }
            Split::Official => write!(f, "official train/test files"),
            Split::UciConxuntos => write!(f, "conxuntos.dat partition"),
            Split::UciKfold { fold } => write!(f, "conxuntos_kfold.dat fold {fold}"),
            Split::None => write!(f, "no split (all rows in train)"),
        }
    }
}

/// Row indices `(train, test)` of a seeded split stratified by `classes` (see
/// [`Split::Stratified`]).
pub fn stratified_indices(
    classes: &[usize],
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    check_fraction(test_fraction)?;
    let n_classes = classes.iter().max().map_or(0, |&m| m + 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &c) in classes.iter().enumerate() {
        by_class[c].push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut is_test = vec![false; classes.len()];
    for mut rows in by_class {
        rows.shuffle(&mut rng);
        let k = (test_fraction * rows.len() as f64).round() as usize;
        for &r in rows.iter().take(k.min(rows.len())) {
            is_test[r] = true;
        }
    }
    Ok(partition(&is_test))
}

/// Row indices `(train, test)` of a plain seeded split: `round(test_fraction · n)` rows
/// drawn by a `ChaCha8Rng::seed_from_u64(seed)` shuffle go to the test set.
pub fn random_indices(
    n: usize,
    test_fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    check_fraction(test_fraction)?;
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let k = (test_fraction * n as f64).round() as usize;
    let mut is_test = vec![false; n];
    for &r in rows.iter().take(k.min(n)) {
        is_test[r] = true;
    }
    Ok(partition(&is_test))
}

fn check_fraction(f: f64) -> Result<(), DataError> {
    if !(0.0..1.0).contains(&f) {
        return Err(DataError::Invalid(format!(
            "test fraction must be in [0, 1), got {f}"
        )));
    }
    Ok(())
}

fn partition(is_test: &[bool]) -> (Vec<usize>, Vec<usize>) {
    let (test, train): (Vec<usize>, Vec<usize>) = (0..is_test.len()).partition(|&i| is_test[i]);
    (train, test)
}

/// The rows `rows` of `data`, in that order.
pub fn select_rows(data: &Dataset, rows: &[usize]) -> Dataset {
    Dataset {
        feature_names: data.feature_names.clone(),
        x: data.x.select(Axis(0), rows),
        y: data.y.select(Axis(0), rows),
    }
}

/// Feature preprocessing, fitted on the training set and applied to both sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Preprocess {
    /// Leave features as they are (the UCI collection is already standardised;
    /// images are in `[0, 1]`).
    #[default]
    None,
    /// Subtract the training mean of each feature.
    Center,
    /// Subtract the training mean and divide by the training standard deviation
    /// (population, `1/n`); constant features are only centred.
    Standardize,
}

/// Applies `how` to `train` and `test` with statistics of `train`.
pub fn preprocess(how: Preprocess, train: &mut Dataset, test: &mut Dataset) {
    if how == Preprocess::None || train.n() == 0 {
        return;
    }
    let mean: Array1<f64> = train
        .x
        .mean_axis(Axis(0))
        .unwrap_or_else(|| Array1::zeros(train.d()));
    let scale: Array1<f64> = if how == Preprocess::Standardize {
        train.x.std_axis(Axis(0), 0.0).mapv(|s| {
            if s > 1e-12 * (1.0 + s.abs()) && s.is_finite() {
                s
            } else {
                1.0
            }
        })
    } else {
        Array1::ones(train.d())
    };
    for ds in [train, test] {
        for mut row in ds.x.rows_mut() {
            row -= &mean;
            row /= &scale;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_keeps_class_proportions_and_is_seeded() {
        let classes: Vec<usize> = (0..100).map(|i| usize::from(i % 4 == 0)).collect();
        let (train, test) = stratified_indices(&classes, 0.2, 7).unwrap();
        assert_eq!(train.len() + test.len(), 100);
        assert_eq!(test.iter().filter(|&&i| classes[i] == 1).count(), 5);
        assert_eq!(test.iter().filter(|&&i| classes[i] == 0).count(), 15);
        assert_eq!(stratified_indices(&classes, 0.2, 7).unwrap().1, test);
        assert_ne!(stratified_indices(&classes, 0.2, 8).unwrap().1, test);
        assert!(test.windows(2).all(|w| w[0] < w[1]));
        assert!(stratified_indices(&classes, 1.0, 7).is_err());
    }

    #[test]
    fn standardize_uses_train_statistics() {
        let mk = |v: Vec<f64>| Dataset {
            feature_names: vec!["a".into(), "b".into()],
            x: ndarray::Array2::from_shape_vec((v.len() / 2, 2), v).unwrap(),
            y: Array1::zeros(0),
        };
        let mut train = mk(vec![1.0, 5.0, 3.0, 5.0]);
        let mut test = mk(vec![2.0, 6.0]);
        preprocess(Preprocess::Standardize, &mut train, &mut test);
        assert_eq!(train.x.as_slice().unwrap(), &[-1.0, 0.0, 1.0, 0.0]);
        assert_eq!(test.x.as_slice().unwrap(), &[0.0, 1.0]);
    }
}
