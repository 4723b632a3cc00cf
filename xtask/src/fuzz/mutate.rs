//! Structure-aware mutations of seed inputs: byte-level edits every format
//! gets, and edits that know the format — numeric tokens and lines of text,
//! keys, values and tables of TOML, values of JSON, IDX and CIFAR headers and
//! records, tar headers (with their checksum recomputed so the edit reaches
//! the reader), gzip headers and trailers, and integer fields of binary
//! entries. A gzip member is usually decompressed, mutated inside and
//! compressed again, so the edits reach the format it wraps.

use std::io::{Read, Write};
use std::ops::Range;

use rand::seq::IndexedRandom;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;

/// What a member's bytes are, which decides the edits it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML text (experiment and dataset manifests).
    Toml,
    /// JSON text (the hash lock).
    Json,
    /// Other text: CSV, the UCI files.
    Text,
    /// An uncompressed IDX file.
    Idx,
    /// A gzip-compressed IDX file.
    IdxGz,
    /// CIFAR-10 binary records.
    Cifar,
    /// A gzip-compressed tar archive.
    TarGz,
    /// A binary payload (cache entries).
    Binary,
    /// A file that must exist but that the target does not read (a data
    /// file a manifest names): never mutated.
    Fixed,
}

/// One file of an input.
#[derive(Debug, Clone)]
pub struct Member {
    /// File name, as the target reads it.
    pub name: String,
    /// How to mutate it.
    pub format: Format,
    /// Content.
    pub bytes: Vec<u8>,
}

impl Member {
    /// A member named `name`.
    pub fn new(name: &str, format: Format, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            name: name.to_string(),
            format,
            bytes: bytes.into(),
        }
    }
}

/// One input of a target: one or more files.
#[derive(Debug, Clone)]
pub struct Input {
    /// The files, each written under its name before the target runs.
    pub members: Vec<Member>,
}

/// Largest member a mutation may produce.
const MAX_MEMBER: usize = 1 << 20;

/// Values that break numeric fields of text: zero, signs, the limits of
/// `f64`, `i64`, `u32` and `u64` and just beyond, non-finite spellings, and
/// near-misses of number syntax.
const BOUNDARY_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "2",
    "0.5",
    "1.0",
    "1e308",
    "-1e308",
    "1e309",
    "1e-320",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "9999999999999",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "65536",
    "",
    "+1",
    "00",
    "1_000",
    "0x10",
    "1e",
    ".",
];

/// TOML values of every type, and the boundary values of each.
const TOML_VALUES: &[&str] = &[
    "\"text\"",
    "\"\"",
    "'literal'",
    "'''multi\nline'''",
    "0",
    "-1",
    "1",
    "1.5",
    "1e308",
    "-1e308",
    "nan",
    "inf",
    "-inf",
    "9999999999999",
    "9223372036854775807",
    "-9223372036854775808",
    "true",
    "false",
    "[]",
    "[1, 2]",
    "[0.1, 1e308, nan]",
    "[\"a\", \"b\"]",
    "[[1], [2]]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "1979-05-27T07:32:00Z",
    "\"csv:x.csv\"",
    "\"uci:balloons\"",
    "\"mnist\"",
    "\"../x\"",
    "\"/abs/x\"",
    "\"\\u00e9\"",
];

/// JSON values of every type, and boundary numbers.
const JSON_VALUES: &[&str] = &[
    "null",
    "0",
    "-1",
    "1e308",
    "1e400",
    "18446744073709551616",
    "-9223372036854775809",
    "\"x\"",
    "\"\"",
    "\"\\ud800\"",
    "[]",
    "[1]",
    "{}",
    "{\"a\": 1}",
    "true",
];

/// Bytes and strings that trip tokenizers: quotes, escapes, a BOM, multi-byte
/// characters (byte offsets inside them), line-ending variants, NUL, invalid
/// UTF-8, comment and table markers.
const SPECIAL_TOKENS: &[&[u8]] = &[
    b"\"",
    b"'",
    b"\\",
    "\u{feff}".as_bytes(),
    "é".as_bytes(),
    "😀".as_bytes(),
    "\u{2028}".as_bytes(),
    b"\r",
    b"\r\n",
    b"\0",
    b"\xff",
    b"\xc3",
    b"\t",
    b"#",
    b"=",
    b"[",
    b"]",
    b"{",
    b",",
    b"\n\n",
];

/// Separators of the text formats and what may replace them.
const SEPARATORS: &[&[u8]] = &[b",", b"\t", b" ", b"=", b";", b"\t\t", b",,", b""];

/// Integers at the edges of counts, sizes and bit widths.
const INTERESTING: &[u64] = &[
    0,
    1,
    2,
    7,
    8,
    9,
    10,
    16,
    28,
    31,
    32,
    63,
    64,
    65,
    127,
    128,
    255,
    256,
    511,
    512,
    513,
    1024,
    3073,
    4096,
    32767,
    65535,
    65536,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    1 << 53,
    1 << 61,
    1 << 62,
    i64::MAX as u64,
    1 << 63,
    u64::MAX - 1,
    u64::MAX,
];

/// Hostile tar member names.
const TAR_NAMES: &[&str] = &[
    "../evil",
    "/abs/evil",
    "a/../../evil",
    "./",
    ".",
    "",
    "a\\..\\..\\evil",
    "C:\\evil",
    "dir/",
    "a/b/c/d/e/f/g",
    "cifar-10-batches-bin/data_batch_1.bin",
    "cifar-10-batches-bin/test_batch.bin",
    "x\0y",
    "..",
    "a//b",
];

/// Hostile link targets.
const TAR_LINKS: &[&str] = &[
    "../../etc/passwd",
    "/etc/passwd",
    "a",
    "../a",
    "",
    "x/../../y",
    ".",
    "cifar-10-batches-bin/data_batch_1.bin",
];

/// Tar type flags: regular, links, devices, folder, FIFO, contiguous, PAX,
/// GNU long names and sparse files, and junk.
const TAR_TYPES: &[u8] = b"0\x001234567xgLKSVz";

/// A mutated copy of one of `seeds` (non-empty): 0 to 8 stacked edits, each
/// on one member, sometimes splicing in the same member of another seed.
pub fn mutate(rng: &mut ChaCha8Rng, seeds: &[Input]) -> Input {
    let Some(seed) = seeds.choose(rng) else {
        return Input {
            members: Vec::new(),
        };
    };
    let mut input = seed.clone();
    let mutable: Vec<usize> = (0..input.members.len())
        .filter(|&m| input.members[m].format != Format::Fixed)
        .collect();
    if mutable.is_empty() || rng.random_bool(0.03) {
        return input;
    }
    let mut rounds = 1;
    while rounds < 8 && rng.random_bool(0.5) {
        rounds += 1;
    }
    for _ in 0..rounds {
        let m = mutable[rng.random_range(0..mutable.len())];
        let name = input.members[m].name.clone();
        // The same file of another seed: by name, else by place and format.
        let format = input.members[m].format;
        let other: Vec<u8> = seeds
            .choose(rng)
            .and_then(|s| {
                s.members
                    .iter()
                    .find(|o| o.name == name)
                    .or_else(|| s.members.get(m).filter(|o| o.format == format))
            })
            .map_or_else(|| input.members[m].bytes.clone(), |o| o.bytes.clone());
        let member = &mut input.members[m];
        edit(rng, member.format, &mut member.bytes, &other);
        member.bytes.truncate(MAX_MEMBER);
    }
    input
}

/// One edit of `bytes` of format `format`; `other` is a same-kind file to splice from.
fn edit(rng: &mut ChaCha8Rng, format: Format, bytes: &mut Vec<u8>, other: &[u8]) {
    let aware = rng.random_bool(0.65);
    match format {
        Format::Toml if aware => {
            if rng.random_bool(0.6) {
                toml_edit(rng, bytes, other);
            } else {
                text_edit(rng, bytes, other);
            }
        }
        Format::Json if aware => {
            if rng.random_bool(0.4) {
                json_edit(rng, bytes);
            } else {
                text_edit(rng, bytes, other);
            }
        }
        Format::Text if aware => text_edit(rng, bytes, other),
        Format::Idx if aware => idx_edit(rng, bytes),
        Format::Cifar if aware => cifar_edit(rng, bytes),
        Format::Binary if aware => word_edit(rng, bytes),
        Format::IdxGz => gz_edit(rng, bytes, other, Inner::Idx),
        Format::TarGz => gz_edit(rng, bytes, other, Inner::Tar),
        _ => byte_edit(rng, bytes, other),
    }
}

/// What a gzip member wraps.
#[derive(Clone, Copy)]
enum Inner {
    Idx,
    Tar,
}

fn pos(rng: &mut ChaCha8Rng, len: usize) -> usize {
    rng.random_range(0..=len)
}

/// A non-empty range inside `0..len` (`len > 0`), usually short.
fn span(rng: &mut ChaCha8Rng, len: usize) -> Range<usize> {
    let longest = if rng.random_bool(0.9) {
        len.min(64)
    } else {
        len
    };
    let n = rng.random_range(1..=longest.max(1));
    let start = rng.random_range(0..=len - n.min(len));
    start..(start + n).min(len)
}

/// Byte-level edits: bit flips, interesting bytes, inserted random bytes,
/// deleted or duplicated ranges, a splice with `other`, truncation, and
/// interesting integers (1, 2, 4 or 8 bytes, either endianness).
fn byte_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, other: &[u8]) {
    match rng.random_range(0..8) {
        0 => {
            for _ in 0..rng.random_range(1..=8) {
                if !b.is_empty() {
                    let i = rng.random_range(0..b.len());
                    b[i] ^= 1 << rng.random_range(0..8);
                }
            }
        }
        1 => {
            const BYTES: &[u8] = b"\x00\x01\x7f\x80\xff\n\t\"\\=[.-";
            for _ in 0..rng.random_range(1..=4) {
                if !b.is_empty() {
                    let i = rng.random_range(0..b.len());
                    b[i] = *BYTES.choose(rng).unwrap_or(&0);
                }
            }
        }
        2 => {
            let mut extra = vec![0u8; rng.random_range(1..=32)];
            rng.fill_bytes(&mut extra);
            let at = pos(rng, b.len());
            b.splice(at..at, extra);
        }
        3 if !b.is_empty() => {
            let r = span(rng, b.len());
            b.drain(r);
        }
        4 if !b.is_empty() => {
            let r = span(rng, b.len());
            let piece = b[r].to_vec();
            let copies = if rng.random_bool(0.9) {
                rng.random_range(1..=4)
            } else {
                rng.random_range(5..=64)
            };
            let at = pos(rng, b.len());
            b.splice(at..at, piece.repeat(copies));
        }
        5 => {
            let keep = pos(rng, b.len());
            let from = pos(rng, other.len());
            b.truncate(keep);
            b.extend_from_slice(&other[from..]);
        }
        6 => {
            let at = pos(rng, b.len());
            b.truncate(at);
        }
        _ => {
            let value = *INTERESTING.choose(rng).unwrap_or(&0);
            let width = *[1usize, 2, 4, 8].choose(rng).unwrap_or(&4);
            let at = pos(rng, b.len().saturating_sub(width));
            put_int(rng, b, at, value, width);
        }
    }
}

/// Writes the low `width` bytes of `value` at `at` (growing `b` if needed),
/// little- or big-endian at random.
fn put_int(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, at: usize, value: u64, width: usize) {
    let le = value.to_le_bytes();
    let mut bytes = le[..width].to_vec();
    if rng.random_bool(0.5) {
        bytes.reverse();
    }
    if b.len() < at + width {
        b.resize(at + width, 0);
    }
    b[at..at + width].copy_from_slice(&bytes);
}

/// The lines of `b`, each with its `\n` when it has one.
fn lines(b: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < b.len() {
        out.push(start..b.len());
    }
    out
}

/// The numeric tokens of `b`: a digit (or a sign or dot before one) not
/// preceded by a letter, then digits, dots, exponents and `_`.
fn numbers(b: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let starts = b[i].is_ascii_digit()
            || (matches!(b[i], b'-' | b'+' | b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        let after_word = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if starts && !after_word {
            let start = i;
            i += 1;
            while i < b.len()
                && (b[i].is_ascii_digit()
                    || matches!(b[i], b'.' | b'_' | b'e' | b'E')
                    || (matches!(b[i], b'-' | b'+') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            out.push(start..i);
        } else {
            i += 1;
        }
    }
    out
}

/// Text edits: a numeric token replaced by a boundary value, a line deleted,
/// duplicated, swapped or taken from `other`, a separator swapped, or a
/// special token inserted.
fn text_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, other: &[u8]) {
    let ls = lines(b);
    match rng.random_range(0..8) {
        0..=2 => {
            let tokens = numbers(b);
            if let Some(t) = tokens.choose(rng) {
                let value = BOUNDARY_NUMBERS.choose(rng).unwrap_or(&"0");
                b.splice(t.clone(), value.bytes());
            } else {
                byte_edit(rng, b, other);
            }
        }
        3 if !ls.is_empty() => {
            let l = ls[rng.random_range(0..ls.len())].clone();
            b.drain(l);
        }
        4 if !ls.is_empty() => {
            let l = ls[rng.random_range(0..ls.len())].clone();
            let line = with_newline(&b[l.clone()]);
            let copies = if rng.random_bool(0.9) {
                rng.random_range(1..=3)
            } else {
                rng.random_range(4..=64)
            };
            b.splice(l.end..l.end, line.repeat(copies));
        }
        5 if ls.len() >= 2 => {
            let i = rng.random_range(0..ls.len());
            let j = rng.random_range(0..ls.len());
            let (a, c) = (i.min(j), i.max(j));
            if a != c {
                let first = with_newline(&b[ls[a].clone()]);
                let second = with_newline(&b[ls[c].clone()]);
                b.splice(ls[c].clone(), first);
                b.splice(ls[a].clone(), second);
            }
        }
        6 => {
            let theirs = lines(other);
            if let Some(l) = theirs.choose(rng) {
                let line = with_newline(&other[l.clone()]);
                let at = ls.choose(rng).map_or(0, |l| l.start);
                b.splice(at..at, line);
            }
        }
        _ => {
            if rng.random_bool(0.5) {
                let found: Vec<usize> = (0..b.len())
                    .filter(|&i| matches!(b[i], b',' | b'\t' | b' ' | b'='))
                    .collect();
                if let Some(&i) = found.choose(rng) {
                    let with: &[u8] = SEPARATORS.choose(rng).copied().unwrap_or(b",");
                    b.splice(i..i + 1, with.iter().copied());
                    return;
                }
            }
            let token: &[u8] = SPECIAL_TOKENS.choose(rng).copied().unwrap_or(b"\"");
            let at = pos(rng, b.len());
            b.splice(at..at, token.iter().copied());
        }
    }
}

fn with_newline(line: &[u8]) -> Vec<u8> {
    let mut out = line.to_vec();
    if out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out
}

/// Whether `line` is a TOML `key = value` line (not a comment or table header).
fn is_key_line(line: &[u8]) -> bool {
    let t = line.trim_ascii_start();
    !t.is_empty() && !matches!(t[0], b'#' | b'[') && t.contains(&b'=')
}

fn is_header_line(line: &[u8]) -> bool {
    line.trim_ascii_start().first() == Some(&b'[')
}

/// TOML edits: a key dropped, duplicated, moved, renamed or taken from
/// `other`, a value replaced by one of another type, an array element
/// dropped, duplicated or nested, a table header dropped, duplicated or renamed.
fn toml_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, other: &[u8]) {
    let ls = lines(b);
    let keys: Vec<Range<usize>> = ls
        .iter()
        .filter(|l| is_key_line(&b[(*l).clone()]))
        .cloned()
        .collect();
    let headers: Vec<Range<usize>> = ls
        .iter()
        .filter(|l| is_header_line(&b[(*l).clone()]))
        .cloned()
        .collect();
    let Some(key) = keys.choose(rng).cloned() else {
        text_edit(rng, b, other);
        return;
    };
    let line = b[key.clone()].to_vec();
    let eq = line.iter().position(|&c| c == b'=').unwrap_or(0);
    match rng.random_range(0..9) {
        0 => {
            b.drain(key);
        }
        1 => {
            let at = ls.choose(rng).map_or(key.end, |l| l.end);
            b.splice(at..at, with_newline(&line));
        }
        2 | 3 => {
            let value = TOML_VALUES.choose(rng).unwrap_or(&"0");
            let mut replaced = line[..=eq].to_vec();
            replaced.push(b' ');
            replaced.extend_from_slice(value.as_bytes());
            replaced.push(b'\n');
            b.splice(key, replaced);
        }
        4 => {
            let theirs: Vec<Range<usize>> = lines(other)
                .into_iter()
                .filter(|l| is_key_line(&other[l.clone()]))
                .collect();
            if let Some(l) = theirs.choose(rng) {
                let at = ls.choose(rng).map_or(0, |l| l.end);
                b.splice(at..at, with_newline(&other[l.clone()]));
            }
        }
        5 => {
            // Array edits inside the value.
            let value = &line[eq + 1..];
            let (Some(open), Some(close)) = (
                value.iter().position(|&c| c == b'['),
                value.iter().rposition(|&c| c == b']'),
            ) else {
                return byte_edit(rng, b, other);
            };
            if close <= open {
                return;
            }
            let inner = &value[open + 1..close];
            let items: Vec<&[u8]> = inner.split(|&c| c == b',').collect();
            let new_inner: Vec<u8> = match rng.random_range(0..4) {
                0 => Vec::new(),
                1 => {
                    let i = rng.random_range(0..items.len());
                    let mut v: Vec<&[u8]> = items.clone();
                    v.remove(i);
                    v.join(&b","[..])
                }
                2 => {
                    let i = rng.random_range(0..items.len());
                    let copies = rng.random_range(1..=16);
                    let mut v: Vec<&[u8]> = items.clone();
                    for _ in 0..copies {
                        v.insert(i, items[i]);
                    }
                    v.join(&b","[..])
                }
                _ => [b"[".as_slice(), inner, b"]"].concat(),
            };
            let mut replaced = line[..=eq + 1 + open].to_vec();
            replaced.extend_from_slice(&new_inner);
            replaced.extend_from_slice(&line[eq + 1 + close..]);
            b.splice(key, replaced);
        }
        6 => {
            let name_end = line[..eq].trim_ascii_end().len();
            let suffix: &[u8] = [b"x".as_slice(), b".y", b"_", b"\"\""]
                .choose(rng)
                .copied()
                .unwrap_or(b"x");
            let mut renamed = line[..name_end].to_vec();
            renamed.extend_from_slice(suffix);
            renamed.extend_from_slice(&line[name_end..]);
            b.splice(key, renamed);
        }
        7 => {
            // Move the key under another table.
            let at = headers.choose(rng).map_or(0, |h| h.end);
            let moved = with_newline(&line);
            if at >= key.end {
                b.splice(at..at, moved);
                b.drain(key);
            } else if at <= key.start {
                b.drain(key);
                b.splice(at..at, moved);
            }
        }
        _ => {
            let Some(h) = headers.choose(rng).cloned() else {
                return text_edit(rng, b, other);
            };
            let header = with_newline(&b[h.clone()]);
            match rng.random_range(0..3) {
                0 => {
                    b.drain(h);
                }
                1 => {
                    let at = ls.choose(rng).map_or(0, |l| l.end);
                    b.splice(at..at, header);
                }
                _ => {
                    let close = header
                        .iter()
                        .position(|&c| c == b']')
                        .unwrap_or(header.len());
                    let mut renamed = header[..close].to_vec();
                    renamed.extend_from_slice(b"x");
                    renamed.extend_from_slice(&header[close..]);
                    b.splice(h, renamed);
                }
            }
        }
    }
}

/// JSON edits on `"key": value` lines: the value replaced by one of another
/// type, or the line dropped or duplicated.
fn json_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) {
    let ls: Vec<Range<usize>> = lines(b)
        .into_iter()
        .filter(|l| b[l.clone()].windows(3).any(|w| w == b"\": "))
        .collect();
    let Some(l) = ls.choose(rng).cloned() else {
        return;
    };
    let line = b[l.clone()].to_vec();
    match rng.random_range(0..4) {
        0 => {
            b.drain(l);
        }
        1 => {
            b.splice(l.end..l.end, with_newline(&line));
        }
        _ => {
            let colon = line.windows(3).position(|w| w == b"\": ").unwrap_or(0) + 3;
            let comma = line.trim_ascii_end().ends_with(b",");
            let value = JSON_VALUES.choose(rng).unwrap_or(&"null");
            let mut replaced = line[..colon].to_vec();
            replaced.extend_from_slice(value.as_bytes());
            if comma {
                replaced.push(b',');
            }
            replaced.push(b'\n');
            b.splice(l, replaced);
        }
    }
}

/// The dimensions of an IDX header, if `b` holds a whole header.
fn idx_dims(b: &[u8]) -> Option<Vec<usize>> {
    let ndim = usize::from(*b.get(3)?);
    (0..ndim)
        .map(|i| {
            let w = b.get(4 + 4 * i..8 + 4 * i)?;
            Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]) as usize)
        })
        .collect()
}

/// IDX edits: the magic (zero bytes, type, dimension count), one dimension
/// set to a boundary value, the count rewritten with the payload resized to
/// match (a valid file of another size), the payload truncated or extended,
/// or a dimension inserted or removed.
fn idx_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) {
    if b.len() < 4 {
        b.resize(4, 0);
    }
    match rng.random_range(0..6) {
        0 => match rng.random_range(0..3) {
            0 => b[rng.random_range(0..2)] = *[1u8, 8, 0xff].choose(rng).unwrap_or(&1),
            1 => {
                b[2] = *[0x08u8, 0x09, 0x0b, 0x0c, 0x0d, 0x0e, 0x00, 0xff]
                    .choose(rng)
                    .unwrap_or(&8)
            }
            _ => b[3] = *[0u8, 1, 2, 3, 4, 5, 255].choose(rng).unwrap_or(&0),
        },
        1 | 2 => {
            let ndim = usize::from(b[3]).max(1);
            let i = rng.random_range(0..ndim);
            let payload = b.len().saturating_sub(4 + 4 * ndim) as u64;
            let value = match rng.random_range(0..3) {
                0 => payload,
                1 => payload + 1,
                _ => *INTERESTING.choose(rng).unwrap_or(&0) & 0xffff_ffff,
            };
            let at = 4 + 4 * i;
            if b.len() < at + 4 {
                b.resize(at + 4, 0);
            }
            b[at..at + 4].copy_from_slice(&(value as u32).to_be_bytes());
        }
        3 => {
            let Some(dims) = idx_dims(b) else { return };
            let Some(&first) = dims.first() else { return };
            let count = rng.random_range(0..=first + 2);
            let per: usize = dims[1..].iter().product();
            let Some(len) = count.checked_mul(per).filter(|&l| l <= MAX_MEMBER) else {
                return;
            };
            b[4..8].copy_from_slice(&(count as u32).to_be_bytes());
            let header = 4 + 4 * dims.len();
            b.resize(header + len, 0x80);
        }
        4 => {
            if rng.random_bool(0.5) {
                let at = pos(rng, b.len());
                b.truncate(at.max(4));
            } else {
                let n = rng.random_range(1..=8);
                b.extend(std::iter::repeat_n(0u8, n));
            }
        }
        _ => {
            let ndim = usize::from(b[3]);
            if rng.random_bool(0.5) || ndim == 0 {
                b[3] = b[3].wrapping_add(1);
                let at = (4 + 4 * ndim).min(b.len());
                let value = *[1u32, 2, 28, 0xffff_ffff].choose(rng).unwrap_or(&1);
                b.splice(at..at, value.to_be_bytes());
            } else {
                b[3] -= 1;
                let at = (4 + 4 * (ndim - 1)).min(b.len());
                let end = (at + 4).min(b.len());
                b.drain(at..end);
            }
        }
    }
}

/// CIFAR edits: a label set out of range, truncation at or near a record
/// boundary, a record duplicated or removed, a partial record appended.
fn cifar_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) {
    const RECORD: usize = pathreg_data::cifar::RECORD;
    let records = b.len() / RECORD;
    match rng.random_range(0..5) {
        0 if records > 0 => {
            let i = rng.random_range(0..records);
            b[i * RECORD] = *[0u8, 9, 10, 11, 128, 255].choose(rng).unwrap_or(&10);
        }
        1 => {
            let cut = rng.random_range(0..=records) * RECORD;
            let jitter = [0isize, -1, 1].choose(rng).copied().unwrap_or(0);
            let at = cut.saturating_add_signed(jitter).min(b.len());
            b.truncate(at);
        }
        2 if records > 0 => {
            let i = rng.random_range(0..records);
            let record = b[i * RECORD..(i + 1) * RECORD].to_vec();
            b.splice(i * RECORD..i * RECORD, record);
        }
        3 if records > 0 => {
            let i = rng.random_range(0..records);
            b.drain(i * RECORD..(i + 1) * RECORD);
        }
        _ => {
            let n = rng.random_range(1..RECORD);
            b.extend(std::iter::repeat_n(7u8, n));
        }
    }
}

/// Little-endian integer fields of binary entries: a 4- or 8-byte word at a
/// 4-byte-aligned offset of the first 64 bytes (where headers, counts and
/// length prefixes live) or at any offset, set to an interesting value.
fn word_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) {
    let width = if rng.random_bool(0.6) { 8 } else { 4 };
    let at = if rng.random_bool(0.7) {
        4 * rng.random_range(0..16usize)
    } else {
        pos(rng, b.len().saturating_sub(width))
    };
    let value = match rng.random_range(0..4) {
        0 => b.len() as u64,
        1 => (b.len() as u64).wrapping_sub(at as u64),
        _ => *INTERESTING.choose(rng).unwrap_or(&0),
    };
    if b.len() < at + width {
        b.resize(at + width, 0);
    }
    b[at..at + width].copy_from_slice(&value.to_le_bytes()[..width]);
}

/// Gzip member edits: usually the content (decompressed, edited as `inner`,
/// compressed again with a varied header), else the gzip header or trailer,
/// else raw bytes.
fn gz_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>, other: &[u8], inner: Inner) {
    let roll = rng.random_range(0..100);
    if roll < 60
        && let Some(mut raw) = gunzip(b)
    {
        let other_raw = gunzip(other).unwrap_or_default();
        match inner {
            Inner::Idx if rng.random_bool(0.7) => idx_edit(rng, &mut raw),
            Inner::Tar if rng.random_bool(0.75) => tar_edit(rng, &mut raw),
            _ => byte_edit(rng, &mut raw, &other_raw),
        }
        raw.truncate(MAX_MEMBER);
        *b = gzip(rng, &raw);
    } else if roll < 85 {
        gzip_header_edit(rng, b);
    } else {
        byte_edit(rng, b, other);
    }
}

/// The decompressed content of a gzip member (at most [`MAX_MEMBER`] bytes).
fn gunzip(b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b)
        .take(MAX_MEMBER as u64)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

/// `raw` gzip-compressed, with a file name, a modification time and a level
/// chosen at random.
pub fn gzip(rng: &mut ChaCha8Rng, raw: &[u8]) -> Vec<u8> {
    let mut builder = flate2::GzBuilder::new().mtime(rng.random());
    if rng.random_bool(0.5) {
        builder = builder.filename("member");
    }
    if rng.random_bool(0.1) {
        builder = builder.comment("fuzz").extra(vec![1, 2, 3, 4]);
    }
    let level = flate2::Compression::new(rng.random_range(0..=9));
    let mut encoder = builder.write(Vec::new(), level);
    match encoder.write_all(raw) {
        Ok(()) => encoder.finish().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// Gzip header and trailer edits: flags, time, extra flags and OS bytes,
/// compression method, magic, CRC, size, a cut trailer, trailing garbage or
/// a second member.
fn gzip_header_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) {
    if b.len() < 18 {
        b.resize(18, 0);
    }
    let n = b.len();
    match rng.random_range(0..8) {
        0 => {
            b[3] = *[0u8, 1, 2, 4, 8, 16, 0x1f, 0xe0, 0xff]
                .choose(rng)
                .unwrap_or(&0)
        }
        1 => rng.fill_bytes(&mut b[4..8]),
        2 => b[8 + rng.random_range(0..2)] = rng.random(),
        3 => b[2] = *[0u8, 7, 9, 0xff].choose(rng).unwrap_or(&0),
        4 => b[rng.random_range(0..2)] ^= 0xff,
        5 => b[n - 8 + rng.random_range(0..4)] ^= 1 << rng.random_range(0..8),
        6 => {
            let value = *INTERESTING.choose(rng).unwrap_or(&0) as u32;
            b[n - 4..].copy_from_slice(&value.to_le_bytes());
        }
        _ => match rng.random_range(0..3) {
            0 => b.truncate(n - rng.random_range(1..=8)),
            1 => b.extend_from_slice(b"\x00garbage"),
            _ => {
                let copy = b.clone();
                b.extend_from_slice(&copy);
            }
        },
    }
}

/// The offsets of the header blocks of a tar stream (stops at the end marker
/// or at an unreadable size).
fn tar_headers(b: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut off = 0usize;
    while off + 512 <= b.len() {
        let header = &b[off..off + 512];
        if header.iter().all(|&c| c == 0) {
            break;
        }
        out.push(off);
        let Some(size) = octal(&header[124..136]) else {
            break;
        };
        let Some(next) = size
            .checked_add(511)
            .map(|s| s / 512 * 512)
            .and_then(|s| s.checked_add(off + 512))
        else {
            break;
        };
        off = next;
    }
    out
}

fn octal(field: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    usize::from_str_radix(digits, 8).ok()
}

/// Writes `value` NUL-padded into `field`.
fn put_field(field: &mut [u8], value: &[u8]) {
    field.fill(0);
    let n = value.len().min(field.len());
    field[..n].copy_from_slice(&value[..n]);
}

/// Tar edits on one member's header (name, ustar prefix, type, link target,
/// size, mode and times, magic), with the header checksum usually recomputed
/// so that the reader accepts the edit, or block-level edits: a member
/// duplicated or removed, the end marker dropped.
fn tar_edit(rng: &mut ChaCha8Rng, b: &mut Vec<u8>) {
    let headers = tar_headers(b);
    let Some(&off) = headers.choose(rng) else {
        return byte_edit(rng, b, &[]);
    };
    let choice = rng.random_range(0..9);
    if choice >= 7 {
        let end = headers
            .iter()
            .find(|&&h| h > off)
            .copied()
            .unwrap_or_else(|| tar_end(b, off));
        let entry = b[off..end.min(b.len())].to_vec();
        if choice == 7 {
            let at = *headers.choose(rng).unwrap_or(&0);
            b.splice(at..at, entry);
        } else if rng.random_bool(0.5) {
            b.drain(off..end.min(b.len()));
        } else {
            let last = tar_end(b, *headers.last().unwrap_or(&0));
            b.truncate(last);
        }
        return;
    }
    let h = &mut b[off..off + 512];
    match choice {
        0 => put_field(
            &mut h[0..100],
            TAR_NAMES.choose(rng).unwrap_or(&"").as_bytes(),
        ),
        1 => put_field(
            &mut h[345..500],
            [b"..".as_slice(), b"/abs", b"a/b", b""]
                .choose(rng)
                .copied()
                .unwrap_or(b""),
        ),
        2 => h[156] = *TAR_TYPES.choose(rng).unwrap_or(&b'0'),
        3 => put_field(
            &mut h[157..257],
            TAR_LINKS.choose(rng).unwrap_or(&"").as_bytes(),
        ),
        4 => {
            let current = octal(&h[124..136]).unwrap_or(0) as u64;
            let value = match rng.random_range(0..4) {
                0 => current.saturating_sub(1),
                1 => current + 1,
                _ => *INTERESTING.choose(rng).unwrap_or(&0),
            };
            if value < 0o77777777777 || rng.random_bool(0.5) {
                put_field(&mut h[124..136], format!("{value:011o}").as_bytes());
            } else {
                // Base-256 size (GNU): high bit set, big-endian.
                h[124] = 0x80;
                h[125..128].fill(0);
                h[128..136].copy_from_slice(&value.to_be_bytes());
            }
        }
        5 => {
            let field = [100..108, 108..116, 116..124, 136..148]
                .choose(rng)
                .cloned()
                .unwrap_or(100..108);
            let junk = [b"7777777".as_slice(), b"\xff\xff", b"-1", b"", b"99999999"]
                .choose(rng)
                .copied()
                .unwrap_or(b"");
            put_field(&mut h[field], junk);
        }
        _ => put_field(
            &mut h[257..265],
            [b"ustar\x0000".as_slice(), b"ustar  \0", b"junkjunk"]
                .choose(rng)
                .copied()
                .unwrap_or(b""),
        ),
    }
    if rng.random_bool(0.9) {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&c| u32::from(c)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }
}

/// Where the member whose header is at `off` ends (its data rounded up to blocks).
fn tar_end(b: &[u8], off: usize) -> usize {
    let size = b.get(off + 124..off + 136).and_then(octal).unwrap_or(0);
    off.saturating_add(512)
        .saturating_add(size.div_ceil(512).saturating_mul(512))
        .min(b.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn finds_numbers_lines_and_tar_headers() {
        let text = b"a = 1.5e-3\nf12\t-4\n";
        let found: Vec<&[u8]> = numbers(text).into_iter().map(|r| &text[r]).collect();
        assert_eq!(found, [b"1.5e-3".as_slice(), b"-4"]);
        assert_eq!(lines(b"x\ny"), [0..2, 2..3]);
        let mut builder = tar::Builder::new(Vec::new());
        for name in ["a", "b"] {
            let mut header = tar::Header::new_gnu();
            header.set_size(600);
            builder
                .append_data(&mut header, name, &[1u8; 600][..])
                .unwrap();
        }
        let tar = builder.into_inner().unwrap();
        assert_eq!(tar_headers(&tar), [0, 1536]);
    }

    #[test]
    fn mutations_are_reproducible_and_bounded() {
        let seeds = vec![Input {
            members: vec![
                Member::new("m.toml", Format::Toml, "[a]\nb = [1, 2]\nc = \"x\"\n"),
                Member::new(
                    "x.gz",
                    Format::TarGz,
                    gzip(&mut ChaCha8Rng::seed_from_u64(0), b"tar"),
                ),
            ],
        }];
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..500)
                .map(|_| mutate(&mut rng, &seeds).members[0].bytes.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert!(run(4).iter().all(|m| m.len() <= MAX_MEMBER));
    }
}
