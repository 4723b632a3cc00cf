//! Real data from the mirror folder (`PATHREG_MIRROR`, else `<workspace>/../shared/datasets`).
//! Each test prints a note and passes when no mirror exists.

mod common;

use std::time::Instant;

use pathreg_data::download::{Mirror, Obtained, no_progress, verify_file};
use pathreg_data::manifest::builtin;
use pathreg_data::registry::{DataConfig, fetch, load, names};
use pathreg_data::split::{Preprocess, Split};
use pathreg_data::uci::LabelKind;

fn config(mirror: &std::path::Path, data: &std::path::Path) -> DataConfig {
    DataConfig {
        mirror: Some(Mirror::Dir(mirror.to_path_buf())),
        download: false,
        ..DataConfig::new(data)
    }
}

#[test]
fn every_pin_matches_the_mirror() {
    let Some(mirror) = common::mirror_dir() else {
        return;
    };
    let mut checked = 0;
    for m in builtin().unwrap() {
        if m.name == "cifar10" {
            continue; // not in the mirror
        }
        for f in &m.files {
            verify_file(&mirror.join(f.relative_path()), &f.pin).unwrap();
            checked += 1;
        }
    }
    assert_eq!(checked, 84 + 8);
}

#[test]
fn uci_shapes_labels_and_splits() {
    let Some(mirror) = common::mirror_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(&mirror, tmp.path());
    let uci: Vec<String> = names()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("uci:"))
        .collect();
    assert_eq!(uci.len(), 21);
    // (n, d) from the paper's Table 3 / the collection's <name>.txt.
    let expected = [
        ("uci:ionosphere", 351, 33),
        ("uci:musk-1", 476, 166),
        ("uci:trains", 10, 29),
        ("uci:acute-nephritis", 120, 6),
    ];
    cfg.split = Some(Split::None);
    for (name, n, d) in expected {
        let ds = load(name, &cfg).unwrap();
        assert_eq!(
            (ds.train.n(), ds.train.d(), ds.test.n()),
            (n, d, 0),
            "{name}"
        );
    }
    for name in &uci {
        let ds = load(name, &cfg).unwrap();
        assert_eq!(ds.labels, LabelKind::Binary, "{name}");
        assert!(ds.train.y.iter().all(|&v| v == 1.0 || v == -1.0), "{name}");
        assert_eq!(ds.files.len(), 2, "{name}: info and data file");
    }
    // The paper's 80/20 stratified split, seeded.
    cfg.split = Some(Split::paper(3));
    let a = load("uci:ionosphere", &cfg).unwrap();
    let pos = |y: &ndarray::Array1<f64>| y.iter().filter(|&&v| v > 0.0).count();
    let all_pos = pos(&a.train.y) + pos(&a.test.y);
    assert_eq!(a.train.n() + a.test.n(), 351);
    let want_test =
        (0.2 * all_pos as f64).round() as usize + (0.2 * (351 - all_pos) as f64).round() as usize;
    assert_eq!(a.test.n(), want_test);
    assert_eq!(pos(&a.test.y), (0.2 * all_pos as f64).round() as usize);
    let b = load("uci:ionosphere", &cfg).unwrap();
    assert_eq!(a.test.x, b.test.x, "same seed, same split");
    cfg.split = Some(Split::paper(4));
    assert_ne!(load("uci:ionosphere", &cfg).unwrap().test.x, a.test.x);
    // The collection's own partitions.
    cfg.split = Some(Split::UciConxuntos);
    let c = load("uci:ionosphere", &cfg).unwrap();
    assert_eq!((c.train.n(), c.test.n()), (176, 175));
    assert_eq!(c.files.len(), 3);
    cfg.split = Some(Split::UciKfold { fold: 3 });
    let k = load("uci:ionosphere", &cfg).unwrap();
    assert!(k.train.n() + k.test.n() <= 351 && k.test.n() > 0);
    cfg.split = Some(Split::UciKfold { fold: 4 });
    assert!(load("uci:ionosphere", &cfg).is_err());
    cfg.split = Some(Split::Official);
    assert!(
        load("uci:ionosphere", &cfg)
            .unwrap_err()
            .to_string()
            .contains("1 file")
    );
    // Standardisation uses the training statistics.
    cfg.split = Some(Split::paper(3));
    cfg.preprocess = Preprocess::Standardize;
    let s = load("uci:musk-1", &cfg).unwrap();
    let mean = s.train.x.mean_axis(ndarray::Axis(0)).unwrap();
    assert!(mean.iter().all(|m| m.abs() < 1e-9));
}

#[test]
fn fashion_mnist_and_mnist() {
    let Some(mirror) = common::mirror_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&mirror, tmp.path());
    let start = Instant::now();
    let f = load("fashion-mnist", &cfg).unwrap();
    let first = start.elapsed();
    assert_eq!((f.train.n(), f.train.d()), (60000, 784));
    assert_eq!((f.test.n(), f.test.d()), (10000, 784));
    assert_eq!(f.labels, LabelKind::MultiClass { classes: 10 });
    for c in 0..10 {
        assert_eq!(
            f.train.y.iter().filter(|&&v| v == c as f64).count(),
            6000,
            "class {c}"
        );
    }
    assert!(f.train.x.iter().all(|&p| (0.0..=1.0).contains(&p)));
    assert!(f.train.x.iter().any(|&p| p == 1.0));
    assert_eq!(f.files.len(), 4);
    let start = Instant::now();
    let again = load("fashion-mnist", &cfg).unwrap();
    let warm = start.elapsed();
    assert_eq!(again.train.y, f.train.y);
    eprintln!(
        "fashion-mnist: first load (copy from mirror, verify, parse) {first:.2?}; \
         load of present files (verify + parse, train and test) {warm:.2?}"
    );
    let m = load("mnist", &cfg).unwrap();
    assert_eq!((m.test.n(), m.test.d()), (10000, 784));
    assert_eq!((m.train.n(), m.train.d()), (60000, 784));
    assert!(
        m.test
            .y
            .iter()
            .all(|&v| (0.0..10.0).contains(&v) && v.fract() == 0.0)
    );
}

#[test]
fn fetch_all_from_the_mirror_then_nothing_twice() {
    let Some(mirror) = common::mirror_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(&mirror, tmp.path());
    let wanted = vec!["uci".to_string(), "mnist".to_string()];
    let first = fetch(&wanted, &cfg, &no_progress).unwrap();
    assert_eq!(first.len(), 84 + 4);
    assert!(
        first
            .iter()
            .all(|r| matches!(r.result, Ok(ref f) if matches!(f.obtained, Obtained::Copied(_))))
    );
    let second = fetch(&wanted, &cfg, &no_progress).unwrap();
    assert!(
        second
            .iter()
            .all(|r| matches!(r.result, Ok(ref f) if f.obtained == Obtained::AlreadyPresent))
    );
    // CIFAR-10 is not in the mirror and downloads are off: a clear error.
    let cifar = fetch(&["cifar10".to_string()], &cfg, &no_progress).unwrap();
    let text = cifar[0].result.as_ref().unwrap_err().to_string();
    assert!(
        text.contains("cifar-10/cifar-10-binary.tar.gz") && text.contains("not in the mirror"),
        "{text}"
    );
    assert!(fetch(&["nope".to_string()], &cfg, &no_progress).is_err());
}

#[test]
fn import_of_a_flat_folder_skips_files_of_other_datasets() {
    let Some(mirror) = common::mirror_dir() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dl = pathreg_data::download::Downloader::new(config(&mirror, tmp.path()).fetch_options());
    let flat = mirror.join("fashion-mnist");
    for m in builtin()
        .unwrap()
        .iter()
        .filter(|m| m.name.contains("mnist"))
    {
        for f in &m.files {
            let got = dl.import(&flat, f, &no_progress).unwrap();
            // MNIST's files have the same names; they are recognised as Fashion-MNIST's.
            assert_eq!(got.is_some(), m.name == "fashion-mnist", "{}", f.label());
        }
    }
}
