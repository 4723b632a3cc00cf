//! Parsers given truncated, corrupted or random bytes return errors, never panic.

mod common;

use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use common::{Member, tar_gz};
use pathreg_data::manifest::Manifest;
use pathreg_data::{cifar, idx, uci};

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_file(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Every parser on one input; results are ignored, panics fail the test.
fn all_parsers(bytes: &[u8]) {
    let _ = idx::parse_idx(bytes, "f");
    let _ = idx::parse_idx_gz(bytes, "f");
    let _ = cifar::records_dataset(bytes, "f");
    let _ = cifar::read_tar_gz(bytes, "f", 2);
    let text = String::from_utf8_lossy(bytes);
    let _ = uci::parse_info(&text, "f");
    let _ = uci::parse_dat(&text, "f", 2, 2);
    let _ = uci::parse_folds(&text, "f", 5);
    let _ = Manifest::parse(&text, "f");
}

fn valid_inputs() -> Vec<Vec<u8>> {
    let images = idx_file(&[3, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    let mut batch = vec![0u8; 2 * cifar::RECORD];
    batch[cifar::RECORD] = 7;
    let names = [
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
        "test_batch.bin",
    ];
    let paths: Vec<String> = names
        .iter()
        .map(|n| format!("cifar-10-batches-bin/{n}"))
        .collect();
    let members: Vec<Member<'_>> = paths.iter().map(|p| Member::File(p, &batch)).collect();
    vec![
        images.clone(),
        gz(&images),
        batch.clone(),
        tar_gz(&members),
        b"n_entradas= 2\nn_clases= 2\nn_arquivos= 1\nfich1= a_R.dat\nn_patrons1= 2\n".to_vec(),
        b"\tf1\tf2\tclase\n1\t0.5\t-1\t1\n2\t2\t3\t0\n".to_vec(),
        b"0 2 4 \n1 3 \n".to_vec(),
        pathreg_data::manifest::BUILTIN[0].1.as_bytes().to_vec(),
    ]
}

#[test]
fn valid_inputs_parse() {
    let v = valid_inputs();
    assert_eq!(idx::parse_idx(&v[0], "f").unwrap().dims, [3, 2, 2]);
    assert_eq!(idx::parse_idx_gz(&v[1], "f").unwrap().data.len(), 12);
    assert_eq!(cifar::records_dataset(&v[2], "f").unwrap().n(), 2);
    let (train, test) = cifar::read_tar_gz(v[3].as_slice(), "f", 2).unwrap();
    assert_eq!((train.n(), test.n(), train.d()), (10, 2, 3072));
    assert_eq!(train.y[1], 7.0);
    assert!(uci::parse_info(std::str::from_utf8(&v[4]).unwrap(), "f").is_ok());
    assert!(uci::parse_dat(std::str::from_utf8(&v[5]).unwrap(), "f", 2, 2).is_ok());
    assert!(uci::parse_folds(std::str::from_utf8(&v[6]).unwrap(), "f", 5).is_ok());
}

#[test]
fn every_truncation_is_an_error_or_a_valid_prefix_never_a_panic() {
    for input in valid_inputs() {
        for len in 0..input.len().min(20_000) {
            all_parsers(&input[..len]);
        }
    }
    // Truncated binary formats must be errors.
    let v = valid_inputs();
    for len in 0..v[0].len() {
        assert!(idx::parse_idx(&v[0][..len], "f").is_err());
    }
    for len in 0..v[1].len() {
        assert!(
            idx::parse_idx_gz(&v[1][..len], "f").is_err(),
            "gz prefix of {len}"
        );
    }
    for len in (0..v[3].len()).step_by(7) {
        assert!(cifar::read_tar_gz(&v[3][..len], "f", 2).is_err());
    }
}

#[test]
fn random_and_corrupted_bytes_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    for _ in 0..3000 {
        let n = rng.random_range(0..300);
        let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
        all_parsers(&bytes);
    }
    // Byte flips in valid inputs, including the gzip and tar headers.
    for input in valid_inputs() {
        for _ in 0..400 {
            let mut b = input.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            all_parsers(&b);
        }
    }
    // IDX headers announcing huge dimensions must not allocate them.
    let huge = idx_file(&[u32::MAX, 60000, 784], &[1, 2, 3]);
    assert!(idx::parse_idx(&huge, "f").is_err());
    assert!(idx::parse_idx_gz(&gz(&huge), "f").is_err());
}

#[test]
fn cifar_archive_checks() {
    let batch = vec![1u8; 2 * cifar::RECORD];
    let names = [
        "test_batch.bin",
        "data_batch_3.bin",
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_5.bin",
        "data_batch_4.bin",
    ];
    let mut labelled: Vec<Vec<u8>> = Vec::new();
    for (i, _) in names.iter().enumerate() {
        let mut b = batch.clone();
        b[0] = i as u8;
        labelled.push(b);
    }
    let paths: Vec<String> = names
        .iter()
        .map(|n| format!("cifar-10-batches-bin/{n}"))
        .collect();
    let members: Vec<Member<'_>> = paths
        .iter()
        .zip(&labelled)
        .map(|(p, b)| Member::File(p, b))
        .collect();
    let (train, test) = cifar::read_tar_gz(tar_gz(&members).as_slice(), "c", 2).unwrap();
    // Train batches in numeric order whatever the archive order: 1, 2, 3, 4, 5.
    let firsts: Vec<f64> = (0..5).map(|k| train.y[2 * k]).collect();
    assert_eq!(firsts, [2.0, 3.0, 1.0, 5.0, 4.0]);
    assert_eq!(test.y[0], 0.0);
    // Missing test batch, wrong batch size, unsafe member.
    let e = cifar::read_tar_gz(tar_gz(&members[1..]).as_slice(), "c", 2).unwrap_err();
    assert!(e.to_string().contains("test_batch.bin"), "{e}");
    assert!(cifar::read_tar_gz(tar_gz(&members).as_slice(), "c", 3).is_err());
    let mut evil = vec![Member::Symlink("cifar-10-batches-bin/x", "/etc/passwd")];
    evil.extend(paths.iter().zip(&labelled).map(|(p, b)| Member::File(p, b)));
    let e = cifar::read_tar_gz(tar_gz(&evil).as_slice(), "c", 2).unwrap_err();
    assert!(e.to_string().contains("refusing member"), "{e}");
}

#[test]
fn safe_extraction_writes_only_inside_the_target() {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("a.tar.gz");
    let dest = tmp.path().join("out");
    std::fs::write(
        &archive,
        tar_gz(&[
            Member::File("./d/a.txt", b"a"),
            Member::Symlink("d/ok", "a.txt"),
        ]),
    )
    .unwrap();
    let got = pathreg_data::archive::extract_tar_gz(&archive, &dest, |_| true).unwrap();
    assert_eq!(got, [std::path::PathBuf::from("d/a.txt")]);
    assert_eq!(std::fs::read(dest.join("d/a.txt")).unwrap(), b"a");
    assert!(!dest.join("d/ok").exists(), "links are never created");
    for evil in [
        Member::File("../escape.txt", b"x"),
        Member::File("/abs.txt", b"x"),
        Member::Symlink("l", "../../x"),
        Member::Hardlink("h", "../x"),
    ] {
        std::fs::write(&archive, tar_gz(&[evil, Member::File("z.txt", b"z")])).unwrap();
        let e = pathreg_data::archive::extract_tar_gz(&archive, &dest, |_| true).unwrap_err();
        assert!(e.to_string().contains("refusing member"), "{e}");
        assert!(!tmp.path().join("escape.txt").exists());
        assert!(
            !dest.join("z.txt").exists(),
            "nothing after the refused member"
        );
    }
}
