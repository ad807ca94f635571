//! Kernels for the fast BERT path: a register-blocked f32 matrix product over weights packed
//! in panels of [`NR`] columns, and the row-wise operations around it (layer norm, GELU,
//! softmax, attention sums).
//!
//! Every kernel has a portable version, which the tests use as the reference. At run time
//! [`Kernels::detect`] picks AVX-512 (`avx512f`) or AVX2/FMA intrinsics for the matrix product;
//! the row-wise operations are plain loops written so the compiler vectorises them, compiled
//! once more inside functions that enable the same CPU features.
#![allow(unsafe_code)]

/// Columns of one packed weight panel, and of one tile of the matrix product.
pub(crate) const NR: usize = 32;
/// Rows of one tile of the matrix product; activation buffers hold a multiple of it.
pub(crate) const MR: usize = 12;

/// Which instructions the kernels use, chosen once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Portable,
    Avx2,
    Avx512,
    /// AVX-512 with BF16 dot products: weights and the products' inputs rounded to bfloat16,
    /// sums in f32.
    Avx512Bf16,
}

/// The kernels this CPU runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kernels {
    level: Level,
}

/// A weight matrix `(out, in)` as Hugging Face stores a linear layer, repacked for the product:
/// panels of [`NR`] output columns, each `in x NR` row-major, starting on a 64-byte boundary;
/// or, for the BF16 kernel, each `in / 2` rows of `NR` pairs of bfloat16 (inputs `2i` and
/// `2i + 1` of one column in one 32-bit word, the even one in the low half).
pub(crate) struct Packed {
    k: usize,
    n: usize,
    data: Vec<f32>,
    pairs: Vec<u32>,
    start: usize,
    bias: Vec<f32>,
}

impl Packed {
    /// Packs `weight` (`n` rows of `k`) and its `bias` (`n`); `n` must be a multiple of [`NR`].
    pub(crate) fn new(weight: &[f32], bias: &[f32], n: usize, k: usize) -> Packed {
        assert!(n.is_multiple_of(NR) && weight.len() == n * k && bias.len() == n);
        let mut data = vec![0f32; n * k + 16];
        let start = data.as_ptr().align_offset(64);
        let start = if start < 16 { start } else { 0 };
        for panel in 0..n / NR {
            let base = start + panel * k * NR;
            for j in 0..NR {
                let row = &weight[(panel * NR + j) * k..][..k];
                for (kk, &w) in row.iter().enumerate() {
                    data[base + kk * NR + j] = w;
                }
            }
        }
        Packed {
            k,
            n,
            data,
            pairs: Vec::new(),
            start,
            bias: bias.to_vec(),
        }
    }

    /// Packs for `kernels`: bfloat16 pairs where they use the BF16 kernel and `k` is a
    /// multiple of [`BF16_K`], f32 otherwise.
    pub(crate) fn for_kernels(
        kernels: Kernels,
        weight: &[f32],
        bias: &[f32],
        n: usize,
        k: usize,
    ) -> Packed {
        if kernels.level != Level::Avx512Bf16 || !k.is_multiple_of(BF16_K) {
            return Packed::new(weight, bias, n, k);
        }
        assert!(n.is_multiple_of(NR) && weight.len() == n * k && bias.len() == n);
        let mut pairs = vec![0u32; n * k / 2 + 16];
        let start = pairs.as_ptr().align_offset(64);
        let start = if start < 16 { start } else { 0 };
        for panel in 0..n / NR {
            let base = start + panel * k / 2 * NR;
            for j in 0..NR {
                let row = &weight[(panel * NR + j) * k..][..k];
                for (kp, pair) in row.chunks_exact(2).enumerate() {
                    pairs[base + kp * NR + j] = bf16_pair(pair[0], pair[1]);
                }
            }
        }
        Packed {
            k,
            n,
            data: Vec::new(),
            pairs,
            start,
            bias: bias.to_vec(),
        }
    }

    /// Output width.
    pub(crate) fn outputs(&self) -> usize {
        self.n
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[self.start + p * self.k * NR..][..self.k * NR]
    }

    fn pair_panel(&self, p: usize) -> &[u32] {
        &self.pairs[self.start + p * self.k / 2 * NR..][..self.k / 2 * NR]
    }
}

/// Inputs of a BF16 product come in multiples of this (the conversion's block).
pub(crate) const BF16_K: usize = 32;

/// `x` rounded to the nearest bfloat16 (ties to even), as its 16 bits.
pub(crate) fn bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    if x.is_nan() {
        return ((bits >> 16) | 0x40) as u16;
    }
    (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Two values as one word of bfloat16 pairs, `even` in the low half.
pub(crate) fn bf16_pair(even: f32, odd: f32) -> u32 {
    u32::from(bf16(even)) | (u32::from(bf16(odd)) << 16)
}

/// Scratch values [`Kernels::attention`] needs for `tokens` tokens of `dim` values.
pub(crate) fn attention_scratch(tokens: usize, dim: usize) -> usize {
    (dim + dim.next_multiple_of(LANES) + GROUP) * tokens.next_multiple_of(LANES)
}

/// What happens to each finished block of output rows.
pub(crate) enum Epilogue<'a> {
    /// Nothing: the product plus the bias.
    None,
    /// Adds these rows (same shape as the output).
    Add(&'a [f32]),
    /// The erf GELU of every value.
    Gelu,
}

/// Runs a generic row-wise kernel compiled for the best available features.
macro_rules! dispatch {
    ($self:ident, $name:ident($($arg:expr),*)) => {{
        #[cfg(target_arch = "x86_64")]
        match $self.level {
            // SAFETY: `detect` only picks Avx512 or Avx512Bf16 when the CPU has AVX-512F, AVX2
            // and FMA, and only Avx2 when it has AVX2 and FMA; the function itself is safe
            // code.
            Level::Avx512 | Level::Avx512Bf16 => {
                return unsafe { features::$name::avx512($($arg),*) }
            }
            // SAFETY: as above.
            Level::Avx2 => return unsafe { features::$name::avx2($($arg),*) },
            Level::Portable => {}
        }
        $name($($arg),*)
    }};
}

impl Kernels {
    /// The fastest kernels this CPU runs.
    pub(crate) fn detect() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            let avx512 = avx2 && is_x86_feature_detected!("avx512f");
            if avx512 && is_x86_feature_detected!("avx512bf16") {
                return Kernels {
                    level: Level::Avx512Bf16,
                };
            }
            if avx512 {
                return Kernels {
                    level: Level::Avx512,
                };
            }
            if avx2 {
                return Kernels { level: Level::Avx2 };
            }
        }
        Kernels {
            level: Level::Portable,
        }
    }

    /// The kernels at `level`, or `None` when this CPU lacks it.
    #[cfg(test)]
    pub(crate) fn at(level: Level) -> Option<Kernels> {
        let best = Kernels::detect().level;
        let ok = match level {
            Level::Portable => true,
            Level::Avx2 => best != Level::Portable,
            Level::Avx512 => matches!(best, Level::Avx512 | Level::Avx512Bf16),
            Level::Avx512Bf16 => best == Level::Avx512Bf16,
        };
        ok.then_some(Kernels { level })
    }

    /// The instructions in use.
    pub(crate) fn level(self) -> Level {
        self.level
    }

    /// `out = a . wᵀ + bias`, then `epilogue`: `a` is `rows x` the weights' inputs, `out` is
    /// `rows x w.outputs()`, and `rows` a multiple of [`MR`]. Weights packed as bfloat16
    /// pairs need the BF16 level.
    pub(crate) fn linear(
        self,
        a: &[f32],
        rows: usize,
        w: &Packed,
        out: &mut [f32],
        epilogue: Epilogue<'_>,
    ) {
        let (k, n) = (w.k, w.n);
        assert!(rows.is_multiple_of(MR) && a.len() >= rows * k && out.len() >= rows * n);
        if let Epilogue::Add(extra) = epilogue {
            assert!(extra.len() >= rows * n);
        }
        let bf16 = !w.pairs.is_empty();
        assert!(!bf16 || self.level == Level::Avx512Bf16);
        let mut a_pairs = Vec::new();
        if bf16 {
            a_pairs = vec![0u32; rows * k / 2];
            self.to_bf16_pairs(&a[..rows * k], &mut a_pairs);
        }
        for tile in 0..rows / MR {
            let c_tile = &mut out[tile * MR * n..][..MR * n];
            if bf16 {
                let a_tile = &a_pairs[tile * MR * k / 2..][..MR * k / 2];
                for p in 0..n / NR {
                    let bias = &w.bias[p * NR..][..NR];
                    self.tile_bf16(k, a_tile, w.pair_panel(p), bias, &mut c_tile[p * NR..], n);
                }
            } else {
                let a_tile = &a[tile * MR * k..][..MR * k];
                for p in 0..n / NR {
                    let bias = &w.bias[p * NR..][..NR];
                    self.tile(k, a_tile, w.panel(p), bias, &mut c_tile[p * NR..], n);
                }
            }
            match epilogue {
                Epilogue::None => {}
                Epilogue::Add(extra) => self.add(c_tile, &extra[tile * MR * n..][..MR * n]),
                Epilogue::Gelu => self.gelu(c_tile),
            }
        }
    }

    /// One `MR x NR` tile: `c[r][j] = bias[j] + sum_k a[r][k] b[k][j]`, rows of `c` `ldc` apart.
    fn tile(self, k: usize, a: &[f32], b: &[f32], bias: &[f32], c: &mut [f32], ldc: usize) {
        assert!(k > 0 && a.len() >= MR * k && b.len() >= k * NR && bias.len() >= NR);
        assert!(ldc >= NR && c.len() >= (MR - 1) * ldc + NR);
        #[cfg(target_arch = "x86_64")]
        match self.level {
            // SAFETY: the level is only Avx512 when the CPU has AVX-512F, and only Avx2 when
            // it has AVX2 and FMA; the asserts above cover every read and write the kernels
            // make (MR rows of k inputs, k rows of NR weights, NR biases, MR rows of NR
            // outputs ldc apart).
            Level::Avx512 | Level::Avx512Bf16 => {
                return unsafe { x86::tile_avx512(k, a, b, bias, c, ldc) }
            }
            // SAFETY: as above; the AVX2 kernel does MR/3 tiles of three rows.
            Level::Avx2 => return unsafe { x86::tile_avx2(k, a, b, bias, c, ldc) },
            Level::Portable => {}
        }
        tile_portable(k, a, b, bias, c, ldc);
    }

    /// `values` (a multiple of [`BF16_K`]) rounded to bfloat16, in pairs as
    /// [`bf16_pair`] makes them.
    fn to_bf16_pairs(self, values: &[f32], out: &mut [u32]) {
        assert!(values.len().is_multiple_of(BF16_K) && out.len() * 2 >= values.len());
        assert_eq!(self.level, Level::Avx512Bf16);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is only Avx512Bf16 when the CPU has AVX-512F and AVX512_BF16; the
        // assert covers every read (whole blocks of 32 values) and write (16 words a block).
        unsafe {
            x86::to_bf16_pairs(values, out)
        }
        #[cfg(not(target_arch = "x86_64"))]
        for (pair, word) in values.chunks_exact(2).zip(out) {
            *word = bf16_pair(pair[0], pair[1]);
        }
    }

    /// As [`Kernels::tile`], over bfloat16 pairs: `a` is MR rows of `k / 2` words, `b` is
    /// `k / 2` rows of NR words.
    fn tile_bf16(self, k: usize, a: &[u32], b: &[u32], bias: &[f32], c: &mut [f32], ldc: usize) {
        assert!(k >= 2 && k.is_multiple_of(2) && self.level == Level::Avx512Bf16);
        assert!(a.len() >= MR * k / 2 && b.len() >= k / 2 * NR && bias.len() >= NR);
        assert!(ldc >= NR && c.len() >= (MR - 1) * ldc + NR);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the level is only Avx512Bf16 when the CPU has AVX-512F and AVX512_BF16; the
        // asserts above cover every read and write the kernel makes.
        unsafe {
            x86::tile_avx512_bf16(k, a, b, bias, c, ldc)
        }
    }

    /// `rows[i] += extra[i]`.
    pub(crate) fn add(self, rows: &mut [f32], extra: &[f32]) {
        dispatch!(self, add_generic(rows, extra))
    }

    /// The erf GELU of every value, in place.
    pub(crate) fn gelu(self, values: &mut [f32]) {
        dispatch!(self, gelu_generic(values))
    }

    /// Layer norm of every row of `width` values, in place.
    pub(crate) fn layer_norm(self, rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
        dispatch!(self, layer_norm_generic(rows, gamma, beta, eps))
    }

    /// Self-attention of one sequence for one head. `qkv` holds the sequence's rows of
    /// `[q | k | v]` (`stride` apart, this head's `dim` values at `offset`, `offset + hidden`,
    /// `offset + 2 hidden`); the context goes to `out` (rows `out_stride` apart, at `offset`).
    /// `scratch` needs [`attention_scratch`] values.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn attention(
        self,
        qkv: &[f32],
        stride: usize,
        tokens: usize,
        hidden: usize,
        offset: usize,
        dim: usize,
        out: &mut [f32],
        out_stride: usize,
        scratch: &mut [f32],
    ) {
        dispatch!(
            self,
            attention_generic(qkv, stride, tokens, hidden, offset, dim, out, out_stride, scratch)
        )
    }
}

/// The row-wise kernels compiled again with CPU features enabled, so the compiler vectorises
/// them with wide registers and fused multiply-adds.
#[cfg(target_arch = "x86_64")]
mod features {
    macro_rules! versions {
        ($name:ident($($arg:ident: $ty:ty),*)) => {
            pub(super) mod $name {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f,avx2,fma")]
                pub(crate) fn avx512($($arg: $ty),*) {
                    super::super::$name($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                pub(crate) fn avx2($($arg: $ty),*) {
                    super::super::$name($($arg),*)
                }
            }
        };
    }
    versions!(add_generic(rows: &mut [f32], extra: &[f32]));
    versions!(gelu_generic(values: &mut [f32]));
    versions!(layer_norm_generic(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32));
    versions!(attention_generic(
        qkv: &[f32],
        stride: usize,
        tokens: usize,
        hidden: usize,
        offset: usize,
        dim: usize,
        out: &mut [f32],
        out_stride: usize,
        scratch: &mut [f32]
    ));
}

fn tile_portable(k: usize, a: &[f32], b: &[f32], bias: &[f32], c: &mut [f32], ldc: usize) {
    for r in 0..MR {
        let mut acc = [0f32; NR];
        acc.copy_from_slice(&bias[..NR]);
        let row = &a[r * k..][..k];
        for (kk, &x) in row.iter().enumerate() {
            let weights = &b[kk * NR..][..NR];
            for j in 0..NR {
                acc[j] += x * weights[j];
            }
        }
        c[r * ldc..][..NR].copy_from_slice(&acc);
    }
}

#[inline(always)]
fn add_generic(rows: &mut [f32], extra: &[f32]) {
    for (x, e) in rows.iter_mut().zip(extra) {
        *x += e;
    }
}

/// `e^x` for `x` in about [-87, 88] (clamped), within a few units in the last place: Cephes'
/// `expf` polynomial, written without branches so it vectorises.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer.
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * LOG2E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // The low bits of `shifted` hold `n` (two's complement): 2^n from integer operations
    // alone, which vectorise where a float-to-int cast (saturating in Rust) does not.
    let scale = f32::from_bits(
        shifted
            .to_bits()
            .wrapping_add(127)
            .wrapping_sub(0x4b40_0000)
            << 23,
    );
    e * scale
}

/// `erf(x)` within about 2e-7 (Abramowitz and Stegun 7.1.26), branch-free.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let mut p = 1.061_405_4f32;
    p = p * t - 1.453_152_1;
    p = p * t + 1.421_413_7;
    p = p * t - 0.284_496_74;
    p = p * t + 0.254_829_6;
    let y = 1.0 - p * t * exp(-a * a);
    y.copysign(x)
}

#[inline(always)]
fn gelu_generic(values: &mut [f32]) {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    for v in values.iter_mut() {
        let x = *v;
        *v = 0.5 * x * (1.0 + erf(x * SQRT_HALF));
    }
}

/// Floats in one AVX-512 register: the width the row-wise loops accumulate in.
const LANES: usize = 16;

/// Queries attention handles together.
const GROUP: usize = 4;

/// Sum of `values` in 16 lanes (so it vectorises), then across them.
#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; 16];
    let chunks = values.chunks_exact(16);
    let rest: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for (l, v) in lanes.iter_mut().zip(chunk) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + rest
}

#[inline(always)]
fn layer_norm_generic(rows: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let width = gamma.len();
    assert_eq!(beta.len(), width);
    for row in rows.chunks_exact_mut(width) {
        let mean = sum(row) / width as f32;
        let mut lanes = [0f32; 16];
        let chunks = row.chunks_exact(16);
        let rest: f32 = chunks
            .remainder()
            .iter()
            .map(|x| (x - mean) * (x - mean))
            .sum();
        for chunk in chunks {
            for (l, x) in lanes.iter_mut().zip(chunk) {
                *l += (x - mean) * (x - mean);
            }
        }
        let variance = (lanes.iter().sum::<f32>() + rest) / width as f32;
        let inverse = 1.0 / (variance + eps).sqrt();
        for ((x, g), b) in row.iter_mut().zip(gamma).zip(beta) {
            *x = (*x - mean) * inverse * g + b;
        }
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn attention_generic(
    qkv: &[f32],
    stride: usize,
    tokens: usize,
    hidden: usize,
    offset: usize,
    dim: usize,
    out: &mut [f32],
    out_stride: usize,
    scratch: &mut [f32],
) {
    // Keys in blocks of 16 tokens, each block `dim` rows of 16 (zeros past the last token),
    // so a block's 16 scores build up in one register; values in chunks of 16 of the head's
    // values, each chunk `tokens` rows of 16 (zeros past `dim`). Fixed-size rows let the
    // loops below run without bounds checks.
    let width = tokens.next_multiple_of(LANES);
    let chunks = dim.div_ceil(LANES);
    let (keys, rest) = scratch.split_at_mut(dim * width);
    let (values, rest) = rest.split_at_mut(chunks * LANES * tokens);
    let scores = &mut rest[..GROUP * width];
    keys.fill(0.0);
    values.fill(0.0);
    {
        let (keys, _) = keys.as_chunks_mut::<LANES>();
        let (values, _) = values.as_chunks_mut::<LANES>();
        for j in 0..tokens {
            let row = &qkv[j * stride + offset..];
            let (block, lane) = (j / LANES, j % LANES);
            for (d, &key) in row[hidden..][..dim].iter().enumerate() {
                keys[block * dim + d][lane] = key;
            }
            for (chunk, part) in row[2 * hidden..][..dim].chunks(LANES).enumerate() {
                values[chunk * tokens + j][..part.len()].copy_from_slice(part);
            }
        }
    }
    let (keys, _) = keys.as_chunks::<LANES>();
    let (values, _) = values.as_chunks::<LANES>();
    let scale = 1.0 / (dim as f32).sqrt();
    // Four queries at a time: each key and value row is loaded once for all four, and the
    // four sums are independent. Past the last query, the last one is computed again.
    for first in (0..tokens).step_by(GROUP) {
        let query = |u: usize| {
            let i = (first + u).min(tokens - 1);
            &qkv[i * stride + offset..][..dim]
        };
        let queries = [query(0), query(1), query(2), query(3)];
        for block in 0..width / LANES {
            let rows = &keys[block * dim..][..dim];
            let mut acc = [[0f32; LANES]; GROUP];
            for (d, k) in rows.iter().enumerate() {
                for u in 0..GROUP {
                    let q = queries[u][d];
                    for l in 0..LANES {
                        acc[u][l] += q * k[l];
                    }
                }
            }
            for u in 0..GROUP {
                let lanes = &mut scores[u * width + block * LANES..][..LANES];
                for l in 0..LANES {
                    lanes[l] = acc[u][l] * scale;
                }
            }
        }
        let mut inverse = [0f32; GROUP];
        for (u, row) in scores.chunks_exact_mut(width).enumerate() {
            let mut most = [f32::NEG_INFINITY; LANES];
            let (full, tail) = row[..tokens].as_chunks::<LANES>();
            for chunk in full {
                for l in 0..LANES {
                    most[l] = most[l].max(chunk[l]);
                }
            }
            // Two plain folds: a chained iterator's fold is not inlined here, and runs scalar.
            let max = tail.iter().fold(f32::NEG_INFINITY, |m, &s| m.max(s));
            let max = most.iter().fold(max, |m, &s| m.max(s));
            for s in row.iter_mut() {
                *s = exp(*s - max);
            }
            row[tokens..].fill(0.0);
            inverse[u] = 1.0 / sum(row);
        }
        for chunk in 0..chunks {
            let rows = &values[chunk * tokens..][..tokens];
            let mut acc = [[0f32; LANES]; GROUP];
            for (j, v) in rows.iter().enumerate() {
                for u in 0..GROUP {
                    let p = scores[u * width + j];
                    for l in 0..LANES {
                        acc[u][l] += p * v[l];
                    }
                }
            }
            let start = chunk * LANES;
            let len = LANES.min(dim - start);
            for u in 0..GROUP.min(tokens - first) {
                let i = first + u;
                let context = &mut out[i * out_stride + offset + start..][..len];
                for (l, c) in context.iter_mut().enumerate() {
                    *c = acc[u][l] * inverse[u];
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{MR, NR};
    use std::arch::x86_64::*;

    /// See `Kernels::tile`: inline assembly, so
    /// the inner loop is the 24 fused multiply-adds and 14 loads it needs, whatever the build's
    /// debug assertions add to pointer arithmetic and intrinsics.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_avx512(
        k: usize,
        a: &[f32],
        b: &[f32],
        bias: &[f32],
        c: &mut [f32],
        ldc: usize,
    ) {
        // SAFETY: `Kernels::tile` checked that `a` holds MR rows of k, `b` k rows of
        // NR, `bias` NR values and `c` MR rows of NR values ldc apart, and that k > 0; the
        // loop reads exactly those and writes exactly those; every zmm register it uses is
        // declared clobbered, and it touches no stack or flags beyond the declared operands.
        unsafe {
            std::arch::asm!(
                "vmovups zmm0, [{bias}]",
                "vmovups zmm1, [{bias} + 64]",
                "vmovaps zmm2, zmm0",
                "vmovaps zmm3, zmm1",
                "vmovaps zmm4, zmm0",
                "vmovaps zmm5, zmm1",
                "vmovaps zmm6, zmm0",
                "vmovaps zmm7, zmm1",
                "vmovaps zmm8, zmm0",
                "vmovaps zmm9, zmm1",
                "vmovaps zmm10, zmm0",
                "vmovaps zmm11, zmm1",
                "vmovaps zmm12, zmm0",
                "vmovaps zmm13, zmm1",
                "vmovaps zmm14, zmm0",
                "vmovaps zmm15, zmm1",
                "vmovaps zmm16, zmm0",
                "vmovaps zmm17, zmm1",
                "vmovaps zmm18, zmm0",
                "vmovaps zmm19, zmm1",
                "vmovaps zmm20, zmm0",
                "vmovaps zmm21, zmm1",
                "vmovaps zmm22, zmm0",
                "vmovaps zmm23, zmm1",
                "vmovaps zmm24, zmm0",
                "vmovaps zmm25, zmm1",
                "2:",
                "vmovups zmm26, [{b}]",
                "vmovups zmm27, [{b} + 64]",
                "vbroadcastss zmm28, dword ptr [{a0}]",
                "vfmadd231ps zmm2, zmm26, zmm28",
                "vfmadd231ps zmm3, zmm27, zmm28",
                "vbroadcastss zmm29, dword ptr [{a0} + {lda}]",
                "vfmadd231ps zmm4, zmm26, zmm29",
                "vfmadd231ps zmm5, zmm27, zmm29",
                "vbroadcastss zmm30, dword ptr [{a0} + 2*{lda}]",
                "vfmadd231ps zmm6, zmm26, zmm30",
                "vfmadd231ps zmm7, zmm27, zmm30",
                "vbroadcastss zmm31, dword ptr [{a3}]",
                "vfmadd231ps zmm8, zmm26, zmm31",
                "vfmadd231ps zmm9, zmm27, zmm31",
                "vbroadcastss zmm28, dword ptr [{a3} + {lda}]",
                "vfmadd231ps zmm10, zmm26, zmm28",
                "vfmadd231ps zmm11, zmm27, zmm28",
                "vbroadcastss zmm29, dword ptr [{a3} + 2*{lda}]",
                "vfmadd231ps zmm12, zmm26, zmm29",
                "vfmadd231ps zmm13, zmm27, zmm29",
                "vbroadcastss zmm30, dword ptr [{a6}]",
                "vfmadd231ps zmm14, zmm26, zmm30",
                "vfmadd231ps zmm15, zmm27, zmm30",
                "vbroadcastss zmm31, dword ptr [{a6} + {lda}]",
                "vfmadd231ps zmm16, zmm26, zmm31",
                "vfmadd231ps zmm17, zmm27, zmm31",
                "vbroadcastss zmm28, dword ptr [{a6} + 2*{lda}]",
                "vfmadd231ps zmm18, zmm26, zmm28",
                "vfmadd231ps zmm19, zmm27, zmm28",
                "vbroadcastss zmm29, dword ptr [{a9}]",
                "vfmadd231ps zmm20, zmm26, zmm29",
                "vfmadd231ps zmm21, zmm27, zmm29",
                "vbroadcastss zmm30, dword ptr [{a9} + {lda}]",
                "vfmadd231ps zmm22, zmm26, zmm30",
                "vfmadd231ps zmm23, zmm27, zmm30",
                "vbroadcastss zmm31, dword ptr [{a9} + 2*{lda}]",
                "vfmadd231ps zmm24, zmm26, zmm31",
                "vfmadd231ps zmm25, zmm27, zmm31",
                "add {a0}, 4",
                "add {a3}, 4",
                "add {a6}, 4",
                "add {a9}, 4",
                "add {b}, 128",
                "dec {k}",
                "jnz 2b",
                "vmovups [{c}], zmm2",
                "vmovups [{c} + 64], zmm3",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm4",
                "vmovups [{c} + 64], zmm5",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm6",
                "vmovups [{c} + 64], zmm7",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm8",
                "vmovups [{c} + 64], zmm9",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm10",
                "vmovups [{c} + 64], zmm11",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm12",
                "vmovups [{c} + 64], zmm13",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm14",
                "vmovups [{c} + 64], zmm15",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm16",
                "vmovups [{c} + 64], zmm17",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm18",
                "vmovups [{c} + 64], zmm19",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm20",
                "vmovups [{c} + 64], zmm21",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm22",
                "vmovups [{c} + 64], zmm23",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm24",
                "vmovups [{c} + 64], zmm25",
                a0 = inout(reg) a.as_ptr() => _,
                a3 = inout(reg) a.as_ptr().wrapping_add(3 * k) => _,
                a6 = inout(reg) a.as_ptr().wrapping_add(6 * k) => _,
                a9 = inout(reg) a.as_ptr().wrapping_add(9 * k) => _,
                lda = in(reg) k * 4,
                b = inout(reg) b.as_ptr() => _,
                k = inout(reg) k => _,
                c = inout(reg) c.as_mut_ptr() => _,
                ldc = in(reg) ldc * 4,
                bias = in(reg) bias.as_ptr(),
                out("zmm0") _,
                out("zmm1") _,
                out("zmm2") _,
                out("zmm3") _,
                out("zmm4") _,
                out("zmm5") _,
                out("zmm6") _,
                out("zmm7") _,
                out("zmm8") _,
                out("zmm9") _,
                out("zmm10") _,
                out("zmm11") _,
                out("zmm12") _,
                out("zmm13") _,
                out("zmm14") _,
                out("zmm15") _,
                out("zmm16") _,
                out("zmm17") _,
                out("zmm18") _,
                out("zmm19") _,
                out("zmm20") _,
                out("zmm21") _,
                out("zmm22") _,
                out("zmm23") _,
                out("zmm24") _,
                out("zmm25") _,
                out("zmm26") _,
                out("zmm27") _,
                out("zmm28") _,
                out("zmm29") _,
                out("zmm30") _,
                out("zmm31") _,
                options(nostack),
            );
        }
    }

    /// See `Kernels::tile_bf16`: as `tile_avx512`, each step taking two inputs at once with
    /// `vdpbf16ps` (bfloat16 products summed in f32).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_avx512_bf16(
        k: usize,
        a: &[u32],
        b: &[u32],
        bias: &[f32],
        c: &mut [f32],
        ldc: usize,
    ) {
        let half = k / 2;
        // SAFETY: `Kernels::tile_bf16` checked that `a` holds MR rows of k/2 words, `b` k/2
        // rows of NR words, `bias` NR values and `c` MR rows of NR values ldc apart, that
        // k/2 > 0 and that the CPU has AVX512_BF16; the loop reads and writes exactly those;
        // every zmm register it uses is declared clobbered.
        unsafe {
            std::arch::asm!(
                "vmovups zmm0, [{bias}]",
                "vmovups zmm1, [{bias} + 64]",
                "vmovaps zmm2, zmm0",
                "vmovaps zmm3, zmm1",
                "vmovaps zmm4, zmm0",
                "vmovaps zmm5, zmm1",
                "vmovaps zmm6, zmm0",
                "vmovaps zmm7, zmm1",
                "vmovaps zmm8, zmm0",
                "vmovaps zmm9, zmm1",
                "vmovaps zmm10, zmm0",
                "vmovaps zmm11, zmm1",
                "vmovaps zmm12, zmm0",
                "vmovaps zmm13, zmm1",
                "vmovaps zmm14, zmm0",
                "vmovaps zmm15, zmm1",
                "vmovaps zmm16, zmm0",
                "vmovaps zmm17, zmm1",
                "vmovaps zmm18, zmm0",
                "vmovaps zmm19, zmm1",
                "vmovaps zmm20, zmm0",
                "vmovaps zmm21, zmm1",
                "vmovaps zmm22, zmm0",
                "vmovaps zmm23, zmm1",
                "vmovaps zmm24, zmm0",
                "vmovaps zmm25, zmm1",
                "2:",
                "vmovups zmm26, [{b}]",
                "vmovups zmm27, [{b} + 64]",
                "vpbroadcastd zmm28, dword ptr [{a0}]",
                "vdpbf16ps zmm2, zmm28, zmm26",
                "vdpbf16ps zmm3, zmm28, zmm27",
                "vpbroadcastd zmm29, dword ptr [{a0} + {lda}]",
                "vdpbf16ps zmm4, zmm29, zmm26",
                "vdpbf16ps zmm5, zmm29, zmm27",
                "vpbroadcastd zmm30, dword ptr [{a0} + 2*{lda}]",
                "vdpbf16ps zmm6, zmm30, zmm26",
                "vdpbf16ps zmm7, zmm30, zmm27",
                "vpbroadcastd zmm31, dword ptr [{a3}]",
                "vdpbf16ps zmm8, zmm31, zmm26",
                "vdpbf16ps zmm9, zmm31, zmm27",
                "vpbroadcastd zmm28, dword ptr [{a3} + {lda}]",
                "vdpbf16ps zmm10, zmm28, zmm26",
                "vdpbf16ps zmm11, zmm28, zmm27",
                "vpbroadcastd zmm29, dword ptr [{a3} + 2*{lda}]",
                "vdpbf16ps zmm12, zmm29, zmm26",
                "vdpbf16ps zmm13, zmm29, zmm27",
                "vpbroadcastd zmm30, dword ptr [{a6}]",
                "vdpbf16ps zmm14, zmm30, zmm26",
                "vdpbf16ps zmm15, zmm30, zmm27",
                "vpbroadcastd zmm31, dword ptr [{a6} + {lda}]",
                "vdpbf16ps zmm16, zmm31, zmm26",
                "vdpbf16ps zmm17, zmm31, zmm27",
                "vpbroadcastd zmm28, dword ptr [{a6} + 2*{lda}]",
                "vdpbf16ps zmm18, zmm28, zmm26",
                "vdpbf16ps zmm19, zmm28, zmm27",
                "vpbroadcastd zmm29, dword ptr [{a9}]",
                "vdpbf16ps zmm20, zmm29, zmm26",
                "vdpbf16ps zmm21, zmm29, zmm27",
                "vpbroadcastd zmm30, dword ptr [{a9} + {lda}]",
                "vdpbf16ps zmm22, zmm30, zmm26",
                "vdpbf16ps zmm23, zmm30, zmm27",
                "vpbroadcastd zmm31, dword ptr [{a9} + 2*{lda}]",
                "vdpbf16ps zmm24, zmm31, zmm26",
                "vdpbf16ps zmm25, zmm31, zmm27",
                "add {a0}, 4",
                "add {a3}, 4",
                "add {a6}, 4",
                "add {a9}, 4",
                "add {b}, 128",
                "dec {k}",
                "jnz 2b",
                "vmovups [{c}], zmm2",
                "vmovups [{c} + 64], zmm3",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm4",
                "vmovups [{c} + 64], zmm5",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm6",
                "vmovups [{c} + 64], zmm7",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm8",
                "vmovups [{c} + 64], zmm9",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm10",
                "vmovups [{c} + 64], zmm11",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm12",
                "vmovups [{c} + 64], zmm13",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm14",
                "vmovups [{c} + 64], zmm15",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm16",
                "vmovups [{c} + 64], zmm17",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm18",
                "vmovups [{c} + 64], zmm19",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm20",
                "vmovups [{c} + 64], zmm21",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm22",
                "vmovups [{c} + 64], zmm23",
                "add {c}, {ldc}",
                "vmovups [{c}], zmm24",
                "vmovups [{c} + 64], zmm25",
                a0 = inout(reg) a.as_ptr() => _,
                a3 = inout(reg) a.as_ptr().wrapping_add(3 * half) => _,
                a6 = inout(reg) a.as_ptr().wrapping_add(6 * half) => _,
                a9 = inout(reg) a.as_ptr().wrapping_add(9 * half) => _,
                lda = in(reg) half * 4,
                b = inout(reg) b.as_ptr() => _,
                k = inout(reg) half => _,
                c = inout(reg) c.as_mut_ptr() => _,
                ldc = in(reg) ldc * 4,
                bias = in(reg) bias.as_ptr(),
                out("zmm0") _,
                out("zmm1") _,
                out("zmm2") _,
                out("zmm3") _,
                out("zmm4") _,
                out("zmm5") _,
                out("zmm6") _,
                out("zmm7") _,
                out("zmm8") _,
                out("zmm9") _,
                out("zmm10") _,
                out("zmm11") _,
                out("zmm12") _,
                out("zmm13") _,
                out("zmm14") _,
                out("zmm15") _,
                out("zmm16") _,
                out("zmm17") _,
                out("zmm18") _,
                out("zmm19") _,
                out("zmm20") _,
                out("zmm21") _,
                out("zmm22") _,
                out("zmm23") _,
                out("zmm24") _,
                out("zmm25") _,
                out("zmm26") _,
                out("zmm27") _,
                out("zmm28") _,
                out("zmm29") _,
                out("zmm30") _,
                out("zmm31") _,
                options(nostack),
            );
        }
    }

    /// See `Kernels::to_bf16_pairs`: `vcvtne2ps2bf16` (round to nearest even) on blocks of 32.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn to_bf16_pairs(values: &[f32], out: &mut [u32]) {
        let blocks = values.len() / super::BF16_K;
        if blocks == 0 {
            return;
        }
        // SAFETY: the caller checked that `values` is whole blocks of 32 and `out` holds 16
        // words per block, and that the CPU has AVX512_BF16; zmm0 to zmm2 are declared
        // clobbered.
        unsafe {
            std::arch::asm!(
                "2:",
                "vmovups zmm0, [{src}]",
                "vmovups zmm1, [{src} + 64]",
                "vcvtne2ps2bf16 zmm2, zmm1, zmm0",
                "vmovups [{dst}], zmm2",
                "add {src}, 128",
                "add {dst}, 64",
                "dec {n}",
                "jnz 2b",
                src = inout(reg) values.as_ptr() => _,
                dst = inout(reg) out.as_mut_ptr() => _,
                n = inout(reg) blocks => _,
                out("zmm0") _,
                out("zmm1") _,
                out("zmm2") _,
                options(nostack),
            );
        }
    }

    /// See `Kernels::tile`: MR/3 tiles of three rows by four vectors of eight.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_avx2(
        k: usize,
        a: &[f32],
        b: &[f32],
        bias: &[f32],
        c: &mut [f32],
        ldc: usize,
    ) {
        let (a, b, c) = (a.as_ptr(), b.as_ptr(), c.as_mut_ptr());
        // SAFETY (every access below): as in `tile_avx512`; rows `top..top + 3` stay below MR.
        unsafe {
            let mut bias_v = [_mm256_setzero_ps(); 4];
            for (v, bv) in bias_v.iter_mut().enumerate() {
                *bv = _mm256_loadu_ps(bias.as_ptr().add(8 * v));
            }
            for top in (0..MR).step_by(3) {
                let mut acc = [bias_v; 3];
                for kk in 0..k {
                    let w = b.add(kk * NR);
                    for (r, row) in acc.iter_mut().enumerate() {
                        let x = _mm256_set1_ps(*a.add((top + r) * k + kk));
                        for (v, lane) in row.iter_mut().enumerate() {
                            *lane = _mm256_fmadd_ps(x, _mm256_loadu_ps(w.add(8 * v)), *lane);
                        }
                    }
                }
                for (r, row) in acc.iter().enumerate() {
                    for (v, lane) in row.iter().enumerate() {
                        _mm256_storeu_ps(c.add((top + r) * ldc + 8 * v), *lane);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn levels() -> Vec<Kernels> {
        [
            Level::Portable,
            Level::Avx2,
            Level::Avx512,
            Level::Avx512Bf16,
        ]
        .into_iter()
        .filter_map(Kernels::at)
        .collect()
    }

    fn close(a: &[f32], b: &[f32], tolerance: f32) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tolerance, "at {i}: {x} against {y}");
        }
    }

    #[test]
    fn linear_matches_a_plain_product_at_every_level() {
        let (rows, k, n) = (2 * MR, 40, 2 * NR);
        let a = random(rows * k, 1);
        let w = random(n * k, 2);
        let bias = random(n, 3);
        let extra = random(rows * n, 4);
        let mut expected = vec![0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|i| f64::from(a[r * k + i]) * f64::from(w[j * k + i]))
                    .sum();
                expected[r * n + j] = (dot + f64::from(bias[j])) as f32 + extra[r * n + j];
            }
        }
        let packed = Packed::new(&w, &bias, n, k);
        for kernels in levels() {
            let mut out = vec![0f32; rows * n];
            kernels.linear(&a, rows, &packed, &mut out, Epilogue::Add(&extra));
            close(&out, &expected, 1e-5);
        }
    }

    #[test]
    fn the_bf16_product_matches_a_plain_product_of_rounded_inputs() {
        let Some(kernels) = Kernels::at(Level::Avx512Bf16) else {
            return;
        };
        let (rows, k, n) = (2 * MR, 3 * BF16_K, 2 * NR);
        let a = random(rows * k, 11);
        let w = random(n * k, 12);
        let bias = random(n, 13);
        let round = |x: f32| f64::from(f32::from_bits(u32::from(bf16(x)) << 16));
        let mut expected = vec![0f32; rows * n];
        for r in 0..rows {
            for j in 0..n {
                let dot: f64 = (0..k)
                    .map(|i| round(a[r * k + i]) * round(w[j * k + i]))
                    .sum();
                expected[r * n + j] = (dot + f64::from(bias[j])) as f32;
            }
        }
        let packed = Packed::for_kernels(kernels, &w, &bias, n, k);
        assert!(!packed.pairs.is_empty());
        let mut out = vec![0f32; rows * n];
        kernels.linear(&a, rows, &packed, &mut out, Epilogue::None);
        close(&out, &expected, 1e-4);
        let mut pairs = vec![0u32; rows * k / 2];
        kernels.to_bf16_pairs(&a, &mut pairs);
        for (pair, word) in a.chunks_exact(2).zip(&pairs) {
            assert_eq!(*word, bf16_pair(pair[0], pair[1]));
        }
    }

    #[test]
    fn row_kernels_agree_at_every_level() {
        let width = 48;
        let rows = random(3 * width, 5)
            .iter()
            .map(|x| x * 4.0)
            .collect::<Vec<_>>();
        let gamma = random(width, 6);
        let beta = random(width, 7);
        let portable = Kernels::at(Level::Portable).unwrap();
        let mut norm = rows.clone();
        portable.layer_norm(&mut norm, &gamma, &beta, 1e-12);
        let mut gelu = rows.clone();
        portable.gelu(&mut gelu);
        for kernels in levels() {
            let mut ours = rows.clone();
            kernels.layer_norm(&mut ours, &gamma, &beta, 1e-12);
            close(&ours, &norm, 1e-5);
            let mut ours = rows.clone();
            kernels.gelu(&mut ours);
            close(&ours, &gelu, 1e-6);
        }
    }

    #[test]
    fn exp_erf_and_gelu_are_exact_enough() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let e = f64::from(x).exp();
            assert!(((f64::from(exp(x)) - e) / e).abs() < 1e-6, "exp({x})");
            let expected = candle_core::cpu::erf::erf_f64(f64::from(x));
            assert!((f64::from(erf(x)) - expected).abs() < 5e-7, "erf({x})");
        }
        let x = candle_core::Tensor::new(
            &[-5.0f32, -1.5, -0.3, 0.0, 0.7, 2.0, 6.0],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let expected = x.gelu_erf().unwrap().to_vec1::<f32>().unwrap();
        let mut ours = x.to_vec1::<f32>().unwrap();
        Kernels::detect().gelu(&mut ours);
        close(&ours, &expected, 1e-6);
    }

    #[test]
    fn attention_matches_a_plain_softmax_at_every_level() {
        for (tokens, heads, dim) in [(7, 2, 16), (19, 3, 24)] {
            attention_case(tokens, heads, dim);
        }
    }

    fn attention_case(tokens: usize, heads: usize, dim: usize) {
        let hidden = heads * dim;
        let qkv = random(tokens * 3 * hidden, 8);
        let mut expected = vec![0f32; tokens * hidden];
        for h in 0..heads {
            for i in 0..tokens {
                let score = |j: usize| -> f64 {
                    (0..dim)
                        .map(|d| {
                            f64::from(qkv[i * 3 * hidden + h * dim + d])
                                * f64::from(qkv[j * 3 * hidden + hidden + h * dim + d])
                        })
                        .sum::<f64>()
                        / (dim as f64).sqrt()
                };
                let weights: Vec<f64> = (0..tokens).map(|j| score(j).exp()).collect();
                let total: f64 = weights.iter().sum();
                for d in 0..dim {
                    let value: f64 = (0..tokens)
                        .map(|j| {
                            weights[j] * f64::from(qkv[j * 3 * hidden + 2 * hidden + h * dim + d])
                        })
                        .sum();
                    expected[i * hidden + h * dim + d] = (value / total) as f32;
                }
            }
        }
        for kernels in levels() {
            let mut out = vec![0f32; tokens * hidden];
            let mut scratch = vec![0f32; attention_scratch(tokens, dim)];
            for h in 0..heads {
                kernels.attention(
                    &qkv,
                    3 * hidden,
                    tokens,
                    hidden,
                    h * dim,
                    dim,
                    &mut out,
                    hidden,
                    &mut scratch,
                );
            }
            close(&out, &expected, 1e-5);
        }
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// Not a check: prints the products' rate at every level (`--ignored --nocapture`).
    #[test]
    #[ignore]
    fn product_rates() {
        let (rows, k, n) = (MR * 50, 384, 1536);
        let a = vec![0.5f32; rows * k];
        let w = vec![0.25f32; n * k];
        let bias = vec![0f32; n];
        let mut out = vec![0f32; rows * n];
        for level in [Level::Avx2, Level::Avx512, Level::Avx512Bf16] {
            let Some(kernels) = Kernels::at(level) else {
                continue;
            };
            let packed = Packed::for_kernels(kernels, &w, &bias, n, k);
            kernels.linear(&a, rows, &packed, &mut out, Epilogue::None);
            let started = std::time::Instant::now();
            let reps = 20;
            for _ in 0..reps {
                kernels.linear(&a, rows, &packed, &mut out, Epilogue::None);
            }
            let seconds = started.elapsed().as_secs_f64();
            let flops = 2.0 * (rows * k * n * reps) as f64;
            println!("{level:?}: {:.1} GFLOP/s", flops / seconds / 1e9);
        }
    }
}
