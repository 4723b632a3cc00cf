//! Hyperplane arrangements of a three-layer parallel network (Appendix A.8,
//! A.10): for each first-layer neuron a ReLU mask `D1_j`, a sign pattern
//! `I ∈ {±1}^{m1}` of the second-layer weights, and a second-layer mask `D2`.
//!
//! A [`Triple`] is stored canonically: neurons sorted by `(D1_j, I_j)` (triples
//! that differ by a permutation of the m1 neurons describe the same set of
//! functions), and `D2_ii = 0` on *dead* rows where every neuron's `D1_j` is
//! zero (the second-layer pre-activation is identically zero there, so both
//! choices give the same constraint set and the same block of X̃).

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};

use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;

use crate::CoreError;
use crate::limits::{
    MAX_ALLOCATION_BYTES, array_bytes, check_allocation, describe_bytes, total_bytes,
};
use crate::lp::strictly_feasible;

/// A subset of the samples `{i : D_ii = 1}` of a diagonal 0/1 matrix `D`, as a bitset.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mask {
    words: Box<[u64]>,
}

impl Mask {
    /// The empty mask over `n` samples.
    pub fn zeros(n: usize) -> Self {
        Self {
            words: vec![0; n.div_ceil(64)].into_boxed_slice(),
        }
    }

    /// The mask `{i : keep[i]}`.
    pub fn from_bools(keep: impl IntoIterator<Item = bool>, n: usize) -> Self {
        let mut mask = Self::zeros(n);
        for (i, b) in keep.into_iter().enumerate().take(n) {
            if b {
                mask.insert(i);
            }
        }
        mask
    }

    /// Whether sample `i` is in the set (`D_ii = 1`).
    pub fn contains(&self, i: usize) -> bool {
        self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Adds sample `i`.
    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Removes sample `i`.
    pub fn remove(&mut self, i: usize) {
        self.words[i / 64] &= !(1 << (i % 64));
    }

    /// Number of samples in the set.
    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The 64-bit words, little-endian bit order.
    pub fn words(&self) -> &[u64] {
        &self.words
    }
}

/// One first-layer neuron of a triple: its ReLU mask `D1_j` and the sign `I_j`
/// of its second-layer weight (`true` for +1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NeuronPattern {
    /// `D1_j`.
    pub d1: Mask,
    /// `I_j = +1` when true, `−1` when false.
    pub positive: bool,
}

impl NeuronPattern {
    /// `I_j` as ±1.
    pub fn sign(&self) -> f64 {
        if self.positive { 1.0 } else { -1.0 }
    }
}

/// A triple `(D1_1..D1_m1, I, D2)` in canonical form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Triple {
    neurons: Box<[NeuronPattern]>,
    d2: Mask,
}

impl Triple {
    /// Canonicalizes: sorts the neurons and clears `D2` on dead rows.
    pub fn new(mut neurons: Vec<NeuronPattern>, mut d2: Mask, n: usize) -> Self {
        neurons.sort();
        for i in 0..n {
            if !neurons.iter().any(|p| p.d1.contains(i)) {
                d2.remove(i);
            }
        }
        Self {
            neurons: neurons.into_boxed_slice(),
            d2,
        }
    }

    /// The triple that gates `W1 ∈ R^{d×m1}` and `w2 ∈ R^{m1}` make on `x`:
    /// `D1_j = 1[X w1_j > 0]`, `I_j = sign(w2_j)`,
    /// `D2 = 1[Σ_j w2_j (X w1_j)+ > 0]`.
    pub fn from_gates(x: ArrayView2<f64>, w1: ArrayView2<f64>, w2: &[f64]) -> Self {
        let n = x.nrows();
        let pre1 = x.dot(&w1);
        let mut pre2 = vec![0.0; n];
        let neurons: Vec<NeuronPattern> = (0..w2.len())
            .map(|j| {
                let col = pre1.column(j);
                for (i, v) in col.iter().enumerate() {
                    pre2[i] += w2[j] * v.max(0.0);
                }
                NeuronPattern {
                    d1: Mask::from_bools(col.iter().map(|v| *v > 0.0), n),
                    positive: w2[j] > 0.0,
                }
            })
            .collect();
        let d2 = Mask::from_bools(pre2.iter().map(|v| *v > 0.0), n);
        Self::new(neurons, d2, n)
    }

    /// The m1 neuron patterns, sorted.
    pub fn neurons(&self) -> &[NeuronPattern] {
        &self.neurons
    }

    /// `D2`.
    pub fn d2(&self) -> &Mask {
        &self.d2
    }

    /// Whether row `i` is dead (every `D1_j` is zero there).
    pub fn is_dead_row(&self, i: usize) -> bool {
        !self.neurons.iter().any(|p| p.d1.contains(i))
    }
}

/// How an arrangement set was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrangementMode {
    /// Every realizable triple (full-dimensional cone), enumerated exactly.
    Exact,
    /// Triples read off randomly drawn Gaussian networks.
    Sampled,
}

/// A validated, sorted, duplicate-free set of triples for data with `n` samples
/// and networks with `m1` first-layer neurons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrangementSet {
    n: usize,
    m1: usize,
    mode: ArrangementMode,
    triples: Vec<Triple>,
}

/// Upper limit on the number of neuron-pattern groups exact enumeration will visit.
pub const MAX_EXACT_GROUPS: u128 = 20_000_000;

/// Upper limit on the estimated LP work ([`EnumerationEstimate::work`]) of
/// exact enumeration, in tableau-entry updates: 2·10¹².
///
/// Calibrated on a 2-core machine, where enumerations ran at 0.002–0.31 ns of
/// wall time per estimated unit (the estimate bounds the LPs, which real data
/// stays 3–500× below; the top of that range is m1 = 1, where the bound is
/// closest): an accepted enumeration takes at most about 10 minutes there,
/// most take seconds. Measured: Table 2 (n = 5, d = 2, m1 = 3) is estimated at
/// 3·10⁸ units and runs in 0.04 s; Figure 4 (n = 15, d ≤ 6, m1 = 1) at most
/// 2.5·10⁹, 0.6 s; n = 6, d = 4, m1 = 3 at 3·10¹¹, 14 s. Refused within
/// milliseconds: n = 6, d = 10, m1 = 3 (3·10¹², about 30 s), n = 6, d = 100,
/// m1 = 3 (1.7·10¹⁴, over half an hour) and n = 30, d = 2, m1 = 3
/// (9·10¹⁵, over 5 minutes; also 17 TiB estimated).
pub const MAX_EXACT_WORK: u128 = 2_000_000_000_000;

/// Upper limit on the estimated peak memory ([`EnumerationEstimate::bytes`])
/// of exact enumeration: [`MAX_ALLOCATION_BYTES`].
pub const MAX_EXACT_BYTES: u128 = MAX_ALLOCATION_BYTES as u128;

/// Fixed cost of one LP (allocating the tableau, verifying the witness), in
/// units of LP work.
const LP_OVERHEAD: u128 = 1000;

/// What [`ArrangementSet::enumerate_exact`] would cost, estimated in closed
/// form without enumerating anything (see [`exact_enumeration_estimate`]).
/// All counts saturate at `u128::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnumerationEstimate {
    /// Samples (rows that are not identically zero, when measured on data).
    pub n: usize,
    /// Features.
    pub d: usize,
    /// First-layer width.
    pub m1: usize,
    /// First-layer regions: the closed form `2 Σ_{k<min(n,d)} C(n−1, k)` (the
    /// count for data in general position, an upper bound for any data) or
    /// the count measured on the data.
    pub regions: u128,
    /// Neuron-pattern groups, the multisets of m1 of the `2·regions`
    /// (region, sign) pairs: `C(2·regions + m1 − 1, m1)`.
    pub groups: u128,
    /// Upper bound on the strict-feasibility LPs of both layers. In the second
    /// layer a group whose neurons all have one sign determines every
    /// second-layer sign (at most `1 + 2n` LPs); any other group's search has
    /// at most as many nodes per depth `k` as `k` hyperplanes through the
    /// origin of `R^{d·m1}` have regions, `2 Σ_{j<d·m1} C(k−1, j)`, and at most
    /// two LPs per node.
    pub lps: u128,
    /// Upper bound on the triples (the leaves of those searches).
    pub triples: u128,
    /// Estimated LP work, in tableau-entry updates: `lps` times the dense
    /// tableau of the largest LP, `(D + 2) × (rows + D + 2)` with `D` the
    /// dimension and `rows ≤ (m1 + 1) n` the constraints, times
    /// `2 min(rows, D + 1) + 1` pivots, plus a fixed cost per LP.
    pub work: u128,
    /// Estimated peak memory in bytes: the regions, the groups, and the
    /// triples (bounded as above) with their sorting.
    pub bytes: u128,
}

impl EnumerationEstimate {
    /// `Err(CoreError::TooLarge)` naming the estimates and the limits when the
    /// groups exceed [`MAX_EXACT_GROUPS`], the work [`MAX_EXACT_WORK`] or the
    /// bytes [`MAX_EXACT_BYTES`].
    pub fn check(&self) -> Result<(), CoreError> {
        refuse_if_over(
            || {
                format!(
                    "exact enumeration for n = {}, d = {}, m1 = {} ({} first-layer regions, \
                     at most {} LPs)",
                    self.n, self.d, self.m1, self.regions, self.lps
                )
            },
            Some(self.groups),
            self.work,
            self.bytes,
        )
    }
}

/// The cost of exact enumeration ([`ArrangementSet::enumerate_exact`]) of `n`
/// samples in `R^d` with `m1` first-layer neurons, for any data of that shape,
/// in closed form (no enumeration; microseconds for any sizes): the regions
/// are bounded by `2 Σ_{k<min(n,d)} C(n−1, k)`
/// ([`crate::low_rank::closed_form_regions`]). `enumerate_exact` checks the
/// same estimate with the regions and non-zero rows it measures, which is never
/// larger, so a configuration that passes [`EnumerationEstimate::check`] here
/// is not refused at run time.
pub fn exact_enumeration_estimate(n: usize, d: usize, m1: usize) -> EnumerationEstimate {
    estimate_with_regions(n, d, m1, region_bound(n, n.min(d)))
}

/// [`exact_enumeration_estimate`] with a known number of first-layer regions.
fn estimate_with_regions(n: usize, d: usize, m1: usize, regions: u128) -> EnumerationEstimate {
    let (first_lps, first_work, first_bytes) = first_layer_cost(n, d, regions);
    let (nn, mm) = (n as u128, m1 as u128);
    let dim = (d as u128).saturating_mul(mm);
    let pairs = regions.saturating_mul(2);
    let groups = multiset_count(pairs, mm);
    // Groups whose neurons share one sign: all-positive or all-negative multisets.
    let one_sign = multiset_count(regions, mm).saturating_mul(2).min(groups);
    let mixed = groups - one_sign;
    let mixed_lps = cells_up_to(nn, dim).saturating_mul(2).saturating_add(1);
    let second_lps = sat_sum(&[
        one_sign.saturating_mul(nn.saturating_mul(2).saturating_add(1)),
        mixed.saturating_mul(mixed_lps),
    ]);
    let triples = one_sign.saturating_add(mixed.saturating_mul(cells(nn, dim)));
    let rows = mm.saturating_add(1).saturating_mul(nn);
    let words = nn.div_ceil(64);
    let triple_bytes = sat_sum(&[
        mm.saturating_mul(24).saturating_add(16),
        mm.saturating_add(1).saturating_mul(words * 8 + 16),
        112,
    ]);
    let group_bytes = mm.saturating_mul(8).saturating_add(64);
    EnumerationEstimate {
        n,
        d,
        m1,
        regions,
        groups,
        lps: first_lps.saturating_add(second_lps),
        triples,
        work: first_work.saturating_add(second_lps.saturating_mul(lp_work(dim, rows))),
        bytes: sat_sum(&[
            first_bytes,
            groups.saturating_mul(group_bytes),
            triples.saturating_mul(triple_bytes),
        ]),
    }
}

/// LPs, work and bytes of [`first_layer_patterns`] on `n` rows in `R^d` with
/// `regions` regions: a search of depth n with at most `2 Σ_{j<d} C(k−1, j)`
/// nodes at depth k and two LPs per node, each in dimension d with at most n
/// constraints.
fn first_layer_cost(n: usize, d: usize, regions: u128) -> (u128, u128, u128) {
    let (nn, dd) = (n as u128, d as u128);
    let lps = cells_up_to(nn, dd).saturating_mul(2).saturating_add(1);
    let words = nn.div_ceil(64);
    // The sign vectors, the masks, and the (region, sign) pairs.
    let per_region = sat_sum(&[nn.saturating_add(40), 3 * (words * 8 + 32)]);
    (
        lps,
        lps.saturating_mul(lp_work(dd, nn)),
        regions.saturating_mul(per_region),
    )
}

/// Work of one strict-feasibility LP in dimension `dim` with `rows`
/// constraints (see [`EnumerationEstimate::work`]).
fn lp_work(dim: u128, rows: u128) -> u128 {
    let entries = dim
        .saturating_add(2)
        .saturating_mul(sat_sum(&[rows, dim, 2]));
    let pivots = rows.min(dim.saturating_add(1)).saturating_mul(2) + 1;
    entries.saturating_mul(pivots).saturating_add(LP_OVERHEAD)
}

/// `Err(CoreError::TooLarge)` when `groups`, `work` or `bytes` exceeds its
/// limit; `subject` says what was estimated.
fn refuse_if_over(
    subject: impl FnOnce() -> String,
    groups: Option<u128>,
    work: u128,
    bytes: u128,
) -> Result<(), CoreError> {
    let mut over = Vec::new();
    if let Some(groups) = groups.filter(|g| *g > MAX_EXACT_GROUPS) {
        over.push(format!(
            "{groups} neuron-pattern groups (limit MAX_EXACT_GROUPS = {MAX_EXACT_GROUPS})"
        ));
    }
    if work > MAX_EXACT_WORK {
        over.push(format!(
            "{work} units of LP work (limit MAX_EXACT_WORK = {MAX_EXACT_WORK})"
        ));
    }
    if bytes > MAX_EXACT_BYTES {
        over.push(format!(
            "{} of memory (limit MAX_EXACT_BYTES = {})",
            describe_bytes(bytes),
            describe_bytes(MAX_EXACT_BYTES)
        ));
    }
    if over.is_empty() {
        return Ok(());
    }
    Err(CoreError::TooLarge(format!(
        "{} is estimated at {}: use sampled arrangements",
        subject(),
        over.join(" and ")
    )))
}

const MAGIC: &[u8; 8] = b"PRARRSET";
const FORMAT_VERSION: u32 = 1;

impl ArrangementSet {
    /// Samples with `n`, `m1`, the given mode and the triples; sorts and deduplicates.
    pub fn from_triples(
        n: usize,
        m1: usize,
        mode: ArrangementMode,
        triples: impl IntoIterator<Item = Triple>,
    ) -> Result<Self, CoreError> {
        let set: BTreeSet<Triple> = triples.into_iter().collect();
        for t in &set {
            if t.neurons.len() != m1 || t.d2.words.len() != n.div_ceil(64) {
                return Err(CoreError::Arrangement(format!(
                    "triple does not match n = {n}, m1 = {m1}"
                )));
            }
        }
        Ok(Self {
            n,
            m1,
            mode,
            triples: set.into_iter().collect(),
        })
    }

    /// Number of samples n.
    pub fn n(&self) -> usize {
        self.n
    }
    /// First-layer width m1.
    pub fn m1(&self) -> usize {
        self.m1
    }
    /// Exact or sampled.
    pub fn mode(&self) -> ArrangementMode {
        self.mode
    }
    /// Number of triples P.
    pub fn len(&self) -> usize {
        self.triples.len()
    }
    /// Whether there are no triples.
    pub fn is_empty(&self) -> bool {
        self.triples.is_empty()
    }
    /// The triples, in canonical order.
    pub fn triples(&self) -> &[Triple] {
        &self.triples
    }

    /// Bytes [`Self::sample`] allocates for `draws` draws on `n` samples in
    /// `R^d` with `m1` neurons, saturating at `u64::MAX`: the weights and
    /// pre-activations of one draw (`8 (d·m1 + m1 + n·m1 + n)`) and the set of
    /// distinct triples, at most `draws` and at most
    /// [`EnumerationEstimate::triples`]. [`Self::sample`] refuses beyond
    /// [`MAX_ALLOCATION_BYTES`].
    pub fn sample_bytes(n: usize, d: usize, m1: usize, draws: usize) -> u64 {
        let words = n.div_ceil(64);
        // Per triple: the neurons (pattern and mask each), D2, the set's node.
        let triple = total_bytes(&[
            array_bytes(24 + 16, &[m1]),
            array_bytes(8, &[m1.saturating_add(1), words]),
            array_bytes(16, &[m1.saturating_add(1)]),
            96,
        ]);
        let distinct = (draws as u128).min(exact_enumeration_estimate(n, d, m1).triples);
        total_bytes(&[
            array_bytes(8, &[d.saturating_add(1), m1]),
            array_bytes(8, &[n, m1.saturating_add(1)]),
            array_bytes(8, &[m1, words]),
            u64::try_from(distinct)
                .unwrap_or(u64::MAX)
                .saturating_mul(triple),
        ])
    }

    /// Reads the triples of `draws` random networks with i.i.d. standard normal
    /// `W1 ∈ R^{d×m1}` and `w2 ∈ R^{m1}` (the sampling of Remark 3.3 of [29]):
    /// `D1_j = 1[X w1j > 0]`, `I_j = sign(w2j)`, `D2 = 1[Σ_j w2j (X w1j)+ > 0]`.
    /// Refuses with [`CoreError::TooLarge`] when [`Self::sample_bytes`] exceeds
    /// [`MAX_ALLOCATION_BYTES`].
    pub fn sample<R: Rng + ?Sized>(
        x: ArrayView2<f64>,
        m1: usize,
        draws: usize,
        rng: &mut R,
    ) -> Result<Self, CoreError> {
        check_dims(x, m1)?;
        let (n, d) = x.dim();
        check_allocation(
            || format!("sampling {draws} arrangements of {m1} neurons on {n} × {d} data"),
            Self::sample_bytes(n, d, m1, draws),
        )?;
        let mut triples = BTreeSet::new();
        let mut w1 = Array2::<f64>::zeros((d, m1));
        let mut w2 = vec![0.0; m1];
        for _ in 0..draws {
            w1.mapv_inplace(|_| StandardNormal.sample(&mut *rng));
            for v in &mut w2 {
                *v = StandardNormal.sample(&mut *rng);
            }
            triples.insert(Triple::from_gates(x, w1.view(), &w2));
        }
        Self::from_triples(n, m1, ArrangementMode::Sampled, triples)
    }

    /// Enumerates every triple whose constraint cone (Theorem 1's `C_il^s`) has a
    /// non-empty interior: first the regions of the arrangement `{x_iᵀw = 0}`,
    /// then, for every multiset of m1 (region, sign) pairs, the sign patterns of
    /// the second-layer pre-activations `Σ_j I_j D1_j X w_j` over the open cone,
    /// by a depth-first search whose every branch is decided by an exact
    /// strict-feasibility LP (Gordan's theorem) or by a verified witness.
    ///
    /// Cones with empty interior add nothing: their points lie in the closure of
    /// full-dimensional cones on which the network is the same linear map.
    ///
    /// Refuses with [`CoreError::TooLarge`] before the expensive part: before
    /// the regions, when their search alone is estimated beyond
    /// [`MAX_EXACT_WORK`] or [`MAX_EXACT_BYTES`], and after them, when
    /// [`EnumerationEstimate::check`] fails for the estimate with the measured
    /// regions and non-zero rows (never larger than
    /// [`exact_enumeration_estimate`]).
    pub fn enumerate_exact(x: ArrayView2<f64>, m1: usize) -> Result<Self, CoreError> {
        Self::enumerate_exact_with_progress(x, m1, &|_, _| {})
    }

    /// [`Self::enumerate_exact`], calling `progress(done, total)` with the
    /// neuron-pattern groups searched so far: once with `done = 0` when the
    /// groups are known, then once per group, `done` increasing by one per
    /// call up to `total` (the calls come from the worker threads, one at a
    /// time). The result is the same as [`Self::enumerate_exact`]'s.
    pub fn enumerate_exact_with_progress(
        x: ArrayView2<f64>,
        m1: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<Self, CoreError> {
        check_dims(x, m1)?;
        let (n, d) = x.dim();
        let live: Vec<bool> = x
            .rows()
            .into_iter()
            .map(|r| r.iter().any(|v| *v != 0.0))
            .collect();
        let n_live = live.iter().filter(|l| **l).count();
        let bound = region_bound(n_live, n_live.min(d));
        let (_, first_work, first_bytes) = first_layer_cost(n_live, d, bound);
        refuse_if_over(
            || {
                format!(
                    "the first-layer search of exact enumeration alone, for n = {n_live}, d = {d},"
                )
            },
            None,
            first_work,
            first_bytes,
        )?;
        let regions = first_layer_patterns(x);
        estimate_with_regions(n_live, d, m1, regions.len() as u128).check()?;
        let pairs: Vec<NeuronPattern> = regions
            .iter()
            .flat_map(|mask| {
                [false, true].map(|positive| NeuronPattern {
                    d1: mask.clone(),
                    positive,
                })
            })
            .collect();
        let groups = multisets(pairs.len(), m1);
        let total = groups.len();
        progress(0, total);
        let done = Mutex::new(0usize);
        let per_group: Vec<Vec<Triple>> = groups
            .par_iter()
            .map(|group| {
                let neurons: Vec<NeuronPattern> = group.iter().map(|&p| pairs[p].clone()).collect();
                let triples = second_layer_triples(x, &live, neurons, n, d);
                let mut count = done.lock().unwrap_or_else(PoisonError::into_inner);
                *count += 1;
                progress(*count, total);
                triples
            })
            .collect();
        Self::from_triples(
            n,
            m1,
            ArrangementMode::Exact,
            per_group.into_iter().flatten(),
        )
    }

    /// The triples at `indices`, as a set of the same mode.
    pub fn subset(&self, indices: &[usize]) -> Self {
        Self {
            n: self.n,
            m1: self.m1,
            mode: self.mode,
            triples: indices.iter().map(|&i| self.triples[i].clone()).collect(),
        }
    }

    /// Stable binary serialization (little-endian): magic, format version, n, m1,
    /// mode, count, then per triple the D1 words of each neuron, the sign bits,
    /// and the D2 words.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for v in [
            self.n as u64,
            self.m1 as u64,
            self.mode as u64,
            self.triples.len() as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for t in &self.triples {
            for p in t.neurons.iter() {
                for w in p.d1.words.iter() {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
            let signs = Mask::from_bools(t.neurons.iter().map(|p| p.positive), self.m1);
            for w in signs.words.iter().chain(t.d2.words.iter()) {
                out.extend_from_slice(&w.to_le_bytes());
            }
        }
        out
    }

    /// Parses [`ArrangementSet::to_bytes`] output, validating everything: never
    /// panics on corrupt input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CoreError> {
        let bad = |why: &str| CoreError::Arrangement(format!("corrupt arrangement set: {why}"));
        let mut reader = WordReader { bytes, pos: 0 };
        if reader.take(8).ok_or_else(|| bad("truncated header"))? != MAGIC {
            return Err(bad("wrong magic"));
        }
        let version = reader.take(4).ok_or_else(|| bad("truncated header"))?;
        if u32::from_le_bytes([version[0], version[1], version[2], version[3]]) != FORMAT_VERSION {
            return Err(bad("unsupported format version"));
        }
        let mut header = [0u64; 4];
        for h in &mut header {
            *h = reader.word().ok_or_else(|| bad("truncated header"))?;
        }
        let [n, m1, mode, count] = header;
        let (n, m1) = (
            usize::try_from(n).map_err(|_| bad("n"))?,
            usize::try_from(m1).map_err(|_| bad("m1"))?,
        );
        let mode = match mode {
            0 => ArrangementMode::Exact,
            1 => ArrangementMode::Sampled,
            _ => return Err(bad("unknown mode")),
        };
        let words_n = n.div_ceil(64);
        let per_triple = m1
            .checked_mul(words_n)
            .and_then(|w| w.checked_add(m1.div_ceil(64) + words_n))
            .and_then(|w| w.checked_mul(8))
            .ok_or_else(|| bad("n and m1 overflow the triple size"))?;
        if per_triple == 0 && count != 0 {
            // n = m1 = 0: triples of no bytes, which a count could repeat without end.
            return Err(bad("triples with n = 0 and m1 = 0"));
        }
        let expected = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(per_triple))
            .ok_or_else(|| bad("count overflows"))?;
        if bytes.len() - reader.pos != expected {
            return Err(bad("length does not match the header"));
        }
        let mut triples = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let mut masks = Vec::with_capacity(m1);
            for _ in 0..m1 {
                masks.push(reader.mask(n).ok_or_else(|| bad("mask bits beyond n"))?);
            }
            let signs = reader.mask(m1).ok_or_else(|| bad("sign bits beyond m1"))?;
            let d2 = reader.mask(n).ok_or_else(|| bad("mask bits beyond n"))?;
            let neurons: Vec<NeuronPattern> = masks
                .into_iter()
                .enumerate()
                .map(|(j, d1)| NeuronPattern {
                    d1,
                    positive: signs.contains(j),
                })
                .collect();
            let triple = Triple {
                neurons: neurons.into_boxed_slice(),
                d2,
            };
            if Triple::new(triple.neurons.to_vec(), triple.d2.clone(), n) != triple {
                return Err(bad("triple not in canonical form"));
            }
            triples.push(triple);
        }
        if triples.windows(2).any(|w| w[0] >= w[1]) {
            return Err(bad("triples not sorted and unique"));
        }
        Ok(Self {
            n,
            m1,
            mode,
            triples,
        })
    }
}

struct WordReader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl WordReader<'_> {
    fn take(&mut self, len: usize) -> Option<&[u8]> {
        let slice = self.bytes.get(self.pos..self.pos.checked_add(len)?)?;
        self.pos += len;
        Some(slice)
    }
    fn word(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut arr = [0u8; 8];
        arr.copy_from_slice(b);
        Some(u64::from_le_bytes(arr))
    }
    /// A mask over `bits` bits; `None` if truncated or a bit beyond `bits` is set.
    fn mask(&mut self, bits: usize) -> Option<Mask> {
        let words: Vec<u64> = (0..bits.div_ceil(64))
            .map(|_| self.word())
            .collect::<Option<_>>()?;
        if !bits.is_multiple_of(64) && words.last().is_some_and(|w| w >> (bits % 64) != 0) {
            return None;
        }
        Some(Mask {
            words: words.into_boxed_slice(),
        })
    }
}

fn check_dims(x: ArrayView2<f64>, m1: usize) -> Result<(), CoreError> {
    if m1 == 0 {
        return Err(CoreError::Arrangement("m1 must be at least 1".into()));
    }
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(CoreError::Arrangement(format!(
            "data must have at least one sample and one feature, got {} × {}",
            x.nrows(),
            x.ncols()
        )));
    }
    if x.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::Arrangement(
            "data contains NaN or infinite values".into(),
        ));
    }
    Ok(())
}

/// The masks `1[X w > 0]` of every open region of the arrangement `{x_iᵀw = 0}`
/// (zero rows of X are never active), in canonical order.
pub fn first_layer_patterns(x: ArrayView2<f64>) -> Vec<Mask> {
    let (n, d) = x.dim();
    let live_rows: Vec<usize> = (0..n)
        .filter(|&i| x.row(i).iter().any(|v| *v != 0.0))
        .collect();
    let candidates: Vec<Vec<f64>> = live_rows.iter().map(|&i| x.row(i).to_vec()).collect();
    let mut masks: Vec<Mask> = sign_cells(&[], &candidates, d)
        .into_iter()
        .map(|signs| {
            let mut mask = Mask::zeros(n);
            for (k, &i) in live_rows.iter().enumerate() {
                if signs[k] {
                    mask.insert(i);
                }
            }
            mask
        })
        .collect();
    masks.sort();
    masks
}

/// All triples with the given (sorted) neurons: the realizable `D2` patterns.
fn second_layer_triples(
    x: ArrayView2<f64>,
    live: &[bool],
    neurons: Vec<NeuronPattern>,
    n: usize,
    d: usize,
) -> Vec<Triple> {
    let dim = d * neurons.len();
    // Open first-layer cone: (2 D1_j − I) X w_j > 0 on live rows.
    let mut base = Vec::new();
    for (j, p) in neurons.iter().enumerate() {
        for i in (0..n).filter(|&i| live[i]) {
            let s = if p.d1.contains(i) { 1.0 } else { -1.0 };
            let mut row = vec![0.0; dim];
            for a in 0..d {
                row[j * d + a] = s * x[[i, a]];
            }
            base.extend(row);
        }
    }
    // Second-layer pre-activations u_i = Σ_j I_j D1_j(i) x_iᵀ w_j on non-dead rows.
    let rows: Vec<usize> = (0..n)
        .filter(|&i| live[i] && neurons.iter().any(|p| p.d1.contains(i)))
        .collect();
    let candidates: Vec<Vec<f64>> = rows
        .iter()
        .map(|&i| {
            let mut row = vec![0.0; dim];
            for (j, p) in neurons.iter().enumerate() {
                if p.d1.contains(i) {
                    for a in 0..d {
                        row[j * d + a] = p.sign() * x[[i, a]];
                    }
                }
            }
            row
        })
        .collect();
    sign_cells(&base, &candidates, dim)
        .into_iter()
        .map(|signs| {
            let mut d2 = Mask::zeros(n);
            for (k, &i) in rows.iter().enumerate() {
                if signs[k] {
                    d2.insert(i);
                }
            }
            Triple::new(neurons.clone(), d2, n)
        })
        .collect()
}

/// Every sign vector `s` such that `{w : B w > 0, s_k c_kᵀ w > 0 ∀k}` is non-empty,
/// where `B` (`base`, row-major) and the `candidates` `c_k` live in `R^dim`.
fn sign_cells(base: &[f64], candidates: &[Vec<f64>], dim: usize) -> Vec<Vec<bool>> {
    let mut out = Vec::new();
    let Some(witness) = strictly_feasible(base, dim) else {
        return out;
    };
    let mut rows = base.to_vec();
    let mut signs = Vec::with_capacity(candidates.len());
    descend(&mut rows, candidates, dim, &witness, &mut signs, &mut out);
    out
}

fn descend(
    rows: &mut Vec<f64>,
    candidates: &[Vec<f64>],
    dim: usize,
    witness: &[f64],
    signs: &mut Vec<bool>,
    out: &mut Vec<Vec<bool>>,
) {
    let depth = signs.len();
    if depth == candidates.len() {
        out.push(signs.clone());
        return;
    }
    let c = &candidates[depth];
    let value: f64 = c.iter().zip(witness).map(|(a, b)| a * b).sum();
    let scale: f64 = c.iter().map(|a| a.abs()).sum::<f64>()
        * witness.iter().map(|b| b.abs()).fold(0.0, f64::max);
    let witnessed = (value.abs() > 1e-12 * scale).then_some(value > 0.0);
    for positive in [false, true] {
        let s = if positive { 1.0 } else { -1.0 };
        rows.extend(c.iter().map(|v| s * v));
        let child_witness = if witnessed == Some(positive) {
            Some(witness.to_vec())
        } else {
            strictly_feasible(rows, dim)
        };
        if let Some(w) = child_witness {
            signs.push(positive);
            descend(rows, candidates, dim, &w, signs, out);
            signs.pop();
        }
        rows.truncate(rows.len() - dim);
    }
}

/// `C(len + k − 1, k)`, the number of multisets of size k from len items,
/// saturating at `u128::MAX`.
fn multiset_count(len: u128, k: u128) -> u128 {
    match (len, k) {
        (_, 0) => 1,
        (0, _) => 0,
        _ => binomial(len.saturating_add(k - 1), k),
    }
}

/// `C(m, k)`, saturating at `u128::MAX`; at most about 130 steps for any
/// arguments, since `C(m, j) ≥ 2^j` for `j ≤ m/2`.
fn binomial(m: u128, k: u128) -> u128 {
    if k > m {
        return 0;
    }
    let k = k.min(m - k);
    let mut c: u128 = 1;
    for j in 0..k {
        // C(m, j)·(m − j) = C(m, j + 1)·(j + 1): exact in integers.
        match c.checked_mul(m - j) {
            Some(p) => c = p / (j + 1),
            None => return u128::MAX,
        }
    }
    c
}

/// `Σ_{j<count} C(m, j)`, saturating at `u128::MAX`.
fn binomial_prefix(m: u128, count: u128) -> u128 {
    let mut total: u128 = 0;
    let mut c: u128 = 1; // C(m, 0)
    let terms = count.min(m.saturating_add(1));
    for j in 0..terms {
        total = total.saturating_add(c);
        if total == u128::MAX || j + 1 == terms {
            break;
        }
        match c.checked_mul(m - j) {
            Some(p) => c = p / (j + 1),
            None => return u128::MAX,
        }
    }
    total
}

/// `2 Σ_{k<r} C(n−1, k)`: the regions of n hyperplanes through the origin in
/// general position in rank `r ≤ n`, the most any n hyperplanes of rank r
/// have (1 for n = 0: the whole space), saturating at `u128::MAX`.
fn region_bound(n: usize, r: usize) -> u128 {
    match n {
        0 => 1,
        _ => binomial_prefix(n as u128 - 1, r.min(n) as u128).saturating_mul(2),
    }
}

/// The most regions `k` hyperplanes through the origin of `R^dim` cut space
/// into: `2 Σ_{j<dim} C(k−1, j)` (1 for k = 0; `2^k` for `k ≤ dim`).
fn cells(k: u128, dim: u128) -> u128 {
    match k {
        0 => 1,
        _ => binomial_prefix(k - 1, dim).saturating_mul(2),
    }
}

/// `Σ_{k<n} cells(k, dim) = 2 Σ_{j≤dim} C(n−1, j) − 1` (0 for n = 0).
fn cells_up_to(n: u128, dim: u128) -> u128 {
    match n {
        0 => 0,
        _ => binomial_prefix(n - 1, dim.saturating_add(1))
            .saturating_mul(2)
            .saturating_sub(1),
    }
}

/// The saturating sum of `parts`.
fn sat_sum(parts: &[u128]) -> u128 {
    parts.iter().fold(0u128, |acc, &p| acc.saturating_add(p))
}

/// All non-decreasing index vectors of length k over `0..len`, in lexicographic order.
fn multisets(len: usize, k: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    if len == 0 {
        return out;
    }
    let mut current = vec![0usize; k];
    loop {
        out.push(current.clone());
        let Some(pos) = (0..k).rev().find(|&p| current[p] + 1 < len) else {
            return out;
        };
        let next = current[pos] + 1;
        for v in &mut current[pos..] {
            *v = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn gaussian(n: usize, d: usize, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng))
    }

    fn binomial(n: u64, k: u64) -> u64 {
        (0..k).fold(1, |c, i| c * (n - i) / (i + 1))
    }

    #[test]
    fn first_layer_count_matches_general_position_formula() {
        for (n, d) in [(5, 2), (8, 3), (10, 4)] {
            let x = gaussian(n, d, 7);
            let expected: u64 = 2
                * (0..d as u64)
                    .map(|k| binomial(n as u64 - 1, k))
                    .sum::<u64>();
            assert_eq!(
                first_layer_patterns(x.view()).len() as u64,
                expected,
                "n={n} d={d}"
            );
        }
    }

    #[test]
    fn sampled_triples_are_a_subset_of_the_exact_set() {
        let x = gaussian(5, 2, 11);
        let exact = ArrangementSet::enumerate_exact(x.view(), 2).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let sampled = ArrangementSet::sample(x.view(), 2, 3000, &mut rng).unwrap();
        assert!(sampled.len() > 10);
        for t in sampled.triples() {
            assert!(
                exact.triples().binary_search(t).is_ok(),
                "sampled triple missing from exact set"
            );
        }
    }

    #[test]
    fn single_neuron_triples_are_determined_by_the_region() {
        // With m1 = 1 the second-layer pattern is D1 (sign +) or empty (sign −).
        let x = gaussian(9, 3, 5);
        let exact = ArrangementSet::enumerate_exact(x.view(), 1).unwrap();
        assert_eq!(exact.len(), 2 * first_layer_patterns(x.view()).len());
    }

    #[test]
    fn serialization_round_trips_and_rejects_corruption() {
        let x = gaussian(5, 2, 13);
        let set = ArrangementSet::enumerate_exact(x.view(), 2).unwrap();
        let bytes = set.to_bytes();
        assert_eq!(ArrangementSet::from_bytes(&bytes).unwrap(), set);
        for cut in [0, 7, 20, bytes.len() - 1] {
            assert!(ArrangementSet::from_bytes(&bytes[..cut]).is_err());
        }
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x80; // a D2 bit beyond n
        assert!(ArrangementSet::from_bytes(&flipped).is_err());
    }

    /// A header `n, m1, mode, count` with no triple bytes after it.
    fn header_only(n: u64, m1: u64, count: u64) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for word in [n, m1, 0, count] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn corrupt_headers_are_errors_not_allocations() {
        // n = m1 = 0 made every triple zero bytes long, so any count matched
        // the (empty) body: a count of 2^40 allocated 32 TiB and aborted, a
        // larger one panicked on capacity overflow.
        for count in [1u64 << 40, u64::MAX >> 1, u64::MAX] {
            let e = ArrangementSet::from_bytes(&header_only(0, 0, count)).unwrap_err();
            assert!(e.to_string().contains("n = 0 and m1 = 0"), "{e}");
        }
        // The triple size overflowed and wrapped: m1 = 2^61 was accepted.
        let e = ArrangementSet::from_bytes(&header_only(64, 1 << 61, 0)).unwrap_err();
        assert!(e.to_string().contains("overflow"), "{e}");
        // An empty set of any shape still reads back.
        let empty = ArrangementSet::from_triples(3, 2, ArrangementMode::Exact, []).unwrap();
        assert_eq!(
            ArrangementSet::from_bytes(&empty.to_bytes()).unwrap(),
            empty
        );
    }

    #[test]
    fn sampling_is_deterministic_given_the_seed() {
        let x = gaussian(6, 2, 17);
        let a =
            ArrangementSet::sample(x.view(), 3, 500, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        let b =
            ArrangementSet::sample(x.view(), 3, 500, &mut ChaCha8Rng::seed_from_u64(1)).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn multisets_enumerates_combinations_with_replacement() {
        let m = multisets(4, 3);
        assert_eq!(m.len() as u128, multiset_count(4, 3));
        assert_eq!(multiset_count(20, 1), 20);
        assert_eq!(multiset_count(0, 2), 0);
        assert_eq!(m.len(), 20);
        assert!(m.windows(2).all(|w| w[0] < w[1]));
    }

    /// `enumerate_exact` on one rayon thread, with the LPs it solved.
    fn enumerate_counting_lps(x: &Array2<f64>, m1: usize) -> (ArrangementSet, u64) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        pool.install(|| {
            crate::lp::LP_CALLS.with(|c| c.set(0));
            let set = ArrangementSet::enumerate_exact(x.view(), m1).unwrap();
            (set, crate::lp::LP_CALLS.with(|c| c.get()))
        })
    }

    #[test]
    fn the_estimate_bounds_the_actual_counts() {
        for (n, d, m1, seed) in [
            (5, 2, 1, 1),
            (5, 2, 2, 2),
            (5, 2, 3, 3),
            (6, 3, 2, 4),
            (8, 2, 2, 5),
            (4, 3, 3, 6),
            (15, 3, 1, 7),
            (3, 5, 2, 8),
        ] {
            let x = gaussian(n, d, seed);
            let (set, lps) = enumerate_counting_lps(&x, m1);
            let estimate = exact_enumeration_estimate(n, d, m1);
            let regions = first_layer_patterns(x.view()).len() as u128;
            let case = format!("n={n} d={d} m1={m1}: {estimate:?}, {regions} regions, {lps} LPs");
            // Gaussian data is in general position: the closed form is exact.
            assert_eq!(estimate.regions, regions, "{case}");
            assert_eq!(
                estimate.groups,
                multiset_count(2 * regions, m1 as u128),
                "{case}"
            );
            assert!(estimate.triples >= set.len() as u128, "{case}");
            assert!(estimate.lps >= u128::from(lps), "{case}");
            assert!(
                estimate.work >= estimate.lps && estimate.bytes > 0,
                "{case}"
            );
            assert!(estimate.check().is_ok(), "{case}");
        }
    }

    #[test]
    fn fewer_regions_than_the_closed_form_give_a_smaller_estimate() {
        // Rank-1 data in R^3: the regions of rank 1, not of rank 3.
        let u = gaussian(8, 1, 9);
        let x = Array2::from_shape_fn((8, 3), |(i, a)| u[[i, 0]] * (a + 1) as f64);
        let regions = first_layer_patterns(x.view()).len() as u128;
        assert_eq!(regions, 2);
        let measured = estimate_with_regions(8, 3, 2, regions);
        let prior = exact_enumeration_estimate(8, 3, 2);
        assert!(measured.work < prior.work && measured.bytes < prior.bytes);
        let (set, lps) = enumerate_counting_lps(&x, 2);
        assert!(measured.triples >= set.len() as u128);
        assert!(measured.lps >= u128::from(lps));
    }

    #[test]
    fn the_committed_experiments_are_within_the_limits() {
        // Table 2 and Figure 4 (exact arrangements of X and of its rank-r part).
        assert!(exact_enumeration_estimate(5, 2, 3).check().is_ok());
        for d in 2..=6 {
            assert!(
                exact_enumeration_estimate(15, d, 1).check().is_ok(),
                "d = {d}"
            );
        }
    }

    #[test]
    fn enumerations_past_the_limits_are_refused_at_once() {
        for (n, d, m1, why) in [
            (30, 2, 3, "MAX_EXACT_WORK"),
            (6, 100, 3, "MAX_EXACT_WORK"),
            (30, 2, 3, "MAX_EXACT_BYTES"),
        ] {
            let x = gaussian(n, d, 10);
            let start = std::time::Instant::now();
            let err = ArrangementSet::enumerate_exact(x.view(), m1).unwrap_err();
            let elapsed = start.elapsed();
            assert!(matches!(err, CoreError::TooLarge(_)), "{err}");
            let text = err.to_string();
            assert!(text.contains(why), "{text}");
            assert!(
                text.contains(&format!("n = {n}, d = {d}, m1 = {m1}")),
                "{text}"
            );
            assert!(elapsed.as_secs_f64() < 1.0, "refused after {elapsed:?}");
            assert!(exact_enumeration_estimate(n, d, m1).check().is_err());
        }
        // The regions alone of 1000 samples in R^10 (about 5·10²¹) are refused
        // before they are searched.
        let x = gaussian(1000, 10, 11);
        let start = std::time::Instant::now();
        let err = ArrangementSet::enumerate_exact(x.view(), 1).unwrap_err();
        assert!(err.to_string().contains("first-layer search"), "{err}");
        assert!(start.elapsed().as_secs_f64() < 1.0);
        // So is a huge m1, without a loop over it.
        let x = gaussian(5, 2, 12);
        let err = ArrangementSet::enumerate_exact(x.view(), 1_000_000_000).unwrap_err();
        assert!(err.to_string().contains("MAX_EXACT_GROUPS"), "{err}");
    }

    #[test]
    fn the_a_priori_estimate_is_instant_for_any_sizes() {
        let start = std::time::Instant::now();
        for (n, d, m1) in [
            (1_000_000_000, 1_000_000_000, 1_000_000_000),
            (usize::MAX, usize::MAX, usize::MAX),
            (usize::MAX, 1, 1),
            (2, usize::MAX, usize::MAX),
            (1, 1, usize::MAX),
        ] {
            let e = exact_enumeration_estimate(n, d, m1);
            assert!(e.check().is_err(), "{e:?}");
        }
        assert!(start.elapsed().as_secs_f64() < 0.5);
        let e = exact_enumeration_estimate(1, 1, 1);
        assert_eq!((e.regions, e.groups, e.triples), (2, 4, 4));
        assert!(e.check().is_ok());
    }

    #[test]
    fn progress_counts_every_group_in_order_and_changes_nothing() {
        let x = gaussian(6, 2, 13);
        let calls = Mutex::new(Vec::new());
        let with = ArrangementSet::enumerate_exact_with_progress(x.view(), 2, &|done, total| {
            calls.lock().unwrap().push((done, total));
        })
        .unwrap();
        assert_eq!(with, ArrangementSet::enumerate_exact(x.view(), 2).unwrap());
        let calls = calls.into_inner().unwrap();
        let total = multiset_count(2 * first_layer_patterns(x.view()).len() as u128, 2) as usize;
        assert_eq!(calls.len(), total + 1);
        for (i, call) in calls.iter().enumerate() {
            assert_eq!(*call, (i, total));
        }
    }

    #[test]
    fn sampling_sizes_beyond_the_allocation_limit_are_errors_not_aborts() {
        let x = gaussian(5, 2, 14);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let err = ArrangementSet::sample(x.view(), 1_000_000_000, 10, &mut rng).unwrap_err();
        assert!(matches!(err, CoreError::TooLarge(_)), "{err}");
        // The set of distinct triples is bounded by the exact count, not by draws.
        let few = ArrangementSet::sample_bytes(5, 2, 3, 1_000);
        assert!(ArrangementSet::sample_bytes(5, 2, 3, usize::MAX) < few * 1000);
        let huge = ArrangementSet::sample_bytes(1_000_000_000, 1_000_000_000, 3, 10);
        assert!(huge > MAX_ALLOCATION_BYTES);
        assert_eq!(
            ArrangementSet::sample_bytes(usize::MAX, 2, usize::MAX, 1),
            u64::MAX
        );
    }
}
