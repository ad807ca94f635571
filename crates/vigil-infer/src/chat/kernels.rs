//! Quantized dot products for the fast llama path: GGUF weight blocks (Q4_0, Q4_1, Q8_0) kept as
//! the file stores them, against activations quantized once per step to 8-bit blocks.
//!
//! Every kernel has a portable scalar version, which the tests use as the reference, and an
//! AVX2/FMA/F16C version chosen at run time when the CPU has those features. A weight row is a
//! byte slice of whole blocks; an activation row is a slice of [`ActBlock`]s of the same length.
#![allow(unsafe_code)]

/// Values per quantized block, for every format here.
pub(crate) const BLOCK: usize = 32;

/// The weight formats the fast path multiplies directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeightFormat {
    /// `f16 d`, 16 bytes of nibbles: `(q - 8) * d`.
    Q4_0,
    /// `f16 d`, `f16 m`, 16 bytes of nibbles: `q * d + m`.
    Q4_1,
    /// `f16 d`, 32 signed bytes: `q * d`.
    Q8_0,
}

impl WeightFormat {
    /// Bytes of one block of 32 values.
    pub(crate) fn block_bytes(self) -> usize {
        match self {
            WeightFormat::Q4_0 => 18,
            WeightFormat::Q4_1 => 20,
            WeightFormat::Q8_0 => 34,
        }
    }
}

/// 32 activations quantized to signed bytes: `value = qs * d`; `s = d * sum(qs)` serves the
/// offset terms of Q4_0 and Q4_1.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[repr(C, align(8))]
pub(crate) struct ActBlock {
    /// The scale.
    pub(crate) d: f32,
    /// The scale times the sum of the quantized values.
    pub(crate) s: f32,
    /// The quantized values.
    pub(crate) qs: [i8; BLOCK],
}

/// Quantizes `x` (a multiple of 32 values) into `out` (one block per 32), rounding to nearest,
/// ties away from zero, with the largest magnitude mapped to 127. The scale and the scaled sum
/// are rounded to half precision exactly as candle's `BlockQ8_1` stores them (llama.cpp's
/// differ only in how `s` is rounded), so the products are those of the reference engines.
pub(crate) fn quantize_row(x: &[f32], out: &mut [ActBlock]) {
    debug_assert_eq!(x.len(), out.len() * BLOCK);
    for (values, block) in x.chunks_exact(BLOCK).zip(out.iter_mut()) {
        let amax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let inverse = if d == 0.0 { 0.0 } else { 1.0 / d };
        let mut sum = 0i32;
        for (q, v) in block.qs.iter_mut().zip(values) {
            let rounded = (v * inverse).round() as i8;
            *q = rounded;
            sum += i32::from(rounded);
        }
        block.d = round_to_f16(d);
        block.s = round_to_f16(round_to_f16(sum as f32) * block.d);
    }
}

/// Converts IEEE half-precision bits to `f32`.
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits & 0x8000) << 16;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let shift = m.leading_zeros() - 21;
            let m = (m << shift) & 0x3ff;
            ((127 - 15 + 1 - shift) << 23) | (m << 13)
        }
        (0x1f, m) => 0x7f80_0000 | (m << 13),
        (e, m) => ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// Rounds to the nearest half-precision value (ties to even), returned as `f32`.
pub(crate) fn round_to_f16(value: f32) -> f32 {
    f16_to_f32(f32_to_f16(value))
}

/// Converts `f32` to IEEE half-precision bits, rounding to nearest, ties to even.
pub(crate) fn f32_to_f16(value: f32) -> u16 {
    let bits = value.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let magnitude = bits & 0x7fff_ffff;
    if magnitude > 0x7f80_0000 {
        return sign | 0x7e00;
    }
    if magnitude >= 0x477f_f000 {
        // Rounds past the largest finite half (65504): infinity.
        return sign | 0x7c00;
    }
    if magnitude < 0x3880_0000 {
        // Below the smallest normal half (2^-14): a multiple of 2^-24, exactly scaled.
        let units = (f32::from_bits(magnitude) * 16_777_216.0).round_ties_even() as u16;
        return sign | units;
    }
    let rounded = magnitude - 0x3800_0000 + 0x0fff + ((magnitude >> 13) & 1);
    sign | (rounded >> 13) as u16
}

fn half_at(bytes: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// Writes the 32 values of each block of a weight row into `out`.
pub(crate) fn dequantize_row(format: WeightFormat, row: &[u8], out: &mut [f32]) {
    let size = format.block_bytes();
    for (block, values) in row.chunks_exact(size).zip(out.chunks_exact_mut(BLOCK)) {
        match format {
            WeightFormat::Q4_0 | WeightFormat::Q4_1 => {
                let d = half_at(block, 0);
                let (m, qs) = match format {
                    WeightFormat::Q4_1 => (half_at(block, 2), &block[4..20]),
                    _ => (-8.0 * d, &block[2..18]),
                };
                for (j, &byte) in qs.iter().enumerate() {
                    values[j] = f32::from(byte & 0x0f) * d + m;
                    values[j + 16] = f32::from(byte >> 4) * d + m;
                }
            }
            WeightFormat::Q8_0 => {
                let d = half_at(block, 0);
                for (value, &q) in values.iter_mut().zip(&block[2..34]) {
                    *value = f32::from(q as i8) * d;
                }
            }
        }
    }
}

/// The dot products available on this CPU, chosen once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kernels {
    avx2: bool,
}

impl Kernels {
    /// The fastest kernels this CPU runs.
    pub(crate) fn detect() -> Kernels {
        #[cfg(target_arch = "x86_64")]
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Kernels { avx2 }
    }

    /// The portable kernels, whatever the CPU.
    #[cfg(test)]
    pub(crate) fn scalar() -> Kernels {
        Kernels { avx2: false }
    }

    /// Whether the AVX2 kernels are in use.
    pub(crate) fn uses_avx2(self) -> bool {
        self.avx2
    }

    /// The dot product of one weight row with one activation row.
    pub(crate) fn dot(self, format: WeightFormat, row: &[u8], act: &[ActBlock]) -> f32 {
        assert_eq!(row.len(), act.len() * format.block_bytes());
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is only true when the CPU has AVX2, FMA and F16C; the lengths
            // were checked above.
            return unsafe {
                match format {
                    WeightFormat::Q4_0 => avx2::dot_q4::<false>(row, act),
                    WeightFormat::Q4_1 => avx2::dot_q4::<true>(row, act),
                    WeightFormat::Q8_0 => avx2::dot_q8_0(row, act),
                }
            };
        }
        scalar_dot(format, row, act)
    }

    /// The dot products of one weight row with four activation rows (four tokens), reading
    /// and unpacking the weights once.
    pub(crate) fn dot4(self, format: WeightFormat, row: &[u8], acts: [&[ActBlock]; 4]) -> [f32; 4] {
        for act in acts {
            assert_eq!(row.len(), act.len() * format.block_bytes());
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: as in `dot`.
            return unsafe {
                match format {
                    WeightFormat::Q4_0 => avx2::dot4_q4::<false>(row, acts),
                    WeightFormat::Q4_1 => avx2::dot4_q4::<true>(row, acts),
                    WeightFormat::Q8_0 => acts.map(|act| avx2::dot_q8_0(row, act)),
                }
            };
        }
        acts.map(|act| scalar_dot(format, row, act))
    }

    /// The dot products of four weight rows with one activation row: four independent
    /// streams of weights in flight, the activation read once (decode's matrix-vector case).
    pub(crate) fn dot_rows4(
        self,
        format: WeightFormat,
        rows: [&[u8]; 4],
        act: &[ActBlock],
    ) -> [f32; 4] {
        for row in rows {
            assert_eq!(row.len(), act.len() * format.block_bytes());
        }
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: as in `dot`, for every row.
            return unsafe {
                match format {
                    WeightFormat::Q4_0 => avx2::dot_rows4::<18, 2>(rows, act),
                    WeightFormat::Q4_1 => avx2::dot_rows4::<20, 4>(rows, act),
                    WeightFormat::Q8_0 => avx2::dot_rows4::<34, 2>(rows, act),
                }
            };
        }
        rows.map(|row| scalar_dot(format, row, act))
    }

    /// The `f32` dot product of two equally long slices (attention scores).
    #[inline]
    pub(crate) fn dot_f32(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 and FMA; the lengths are equal.
            return unsafe { avx2::dot_f32(a, b) };
        }
        dot_f32(a, b)
    }

    /// Attention scores of one query against consecutive keys of its length:
    /// `scores[j] = query . keys[j] * scale`.
    pub(crate) fn scores(self, query: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]) {
        let dim = query.len();
        assert!(keys.len() >= scores.len() * dim);
        #[cfg(target_arch = "x86_64")]
        if self.avx2 && dim == 64 {
            // SAFETY: the CPU has AVX2 and FMA; the lengths were checked above.
            return unsafe { avx2::scores64(query, keys, scale, scores) };
        }
        for (j, score) in scores.iter_mut().enumerate() {
            *score = self.dot_f32(query, &keys[j * dim..(j + 1) * dim]) * scale;
        }
    }

    /// Attention's output for one query: `out = sum_j weights[j] * values[j]`, each value as
    /// long as `out`.
    pub(crate) fn mix(self, weights: &[f32], values: &[f32], out: &mut [f32]) {
        let dim = out.len();
        assert!(values.len() >= weights.len() * dim);
        #[cfg(target_arch = "x86_64")]
        if self.avx2 && dim == 64 {
            // SAFETY: the CPU has AVX2 and FMA; the lengths were checked above.
            return unsafe { avx2::mix64(weights, values, out) };
        }
        out.fill(0.0);
        for (j, &weight) in weights.iter().enumerate() {
            self.axpy(out, weight, &values[j * dim..(j + 1) * dim]);
        }
    }

    /// `out += w * x`, elementwise (attention's weighted sum of values).
    #[inline]
    pub(crate) fn axpy(self, out: &mut [f32], w: f32, x: &[f32]) {
        assert_eq!(out.len(), x.len());
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 and FMA; the lengths are equal.
            return unsafe { avx2::axpy(out, w, x) };
        }
        axpy(out, w, x)
    }
}

/// The reference dot product: integer sums per block, scaled in `f32`.
pub(crate) fn scalar_dot(format: WeightFormat, row: &[u8], act: &[ActBlock]) -> f32 {
    let size = format.block_bytes();
    let mut total = 0f32;
    for (block, a) in row.chunks_exact(size).zip(act) {
        total += match format {
            WeightFormat::Q4_0 | WeightFormat::Q4_1 => {
                let qs = if format == WeightFormat::Q4_1 {
                    &block[4..20]
                } else {
                    &block[2..18]
                };
                let mut sum = 0i32;
                for (j, &byte) in qs.iter().enumerate() {
                    sum += i32::from(byte & 0x0f) * i32::from(a.qs[j]);
                    sum += i32::from(byte >> 4) * i32::from(a.qs[j + 16]);
                }
                let d = half_at(block, 0);
                if format == WeightFormat::Q4_1 {
                    d * a.d * sum as f32 + half_at(block, 2) * a.s
                } else {
                    d * (a.d * sum as f32 - 8.0 * a.s)
                }
            }
            WeightFormat::Q8_0 => {
                let sum: i32 = block[2..34]
                    .iter()
                    .zip(&a.qs)
                    .map(|(&w, &x)| i32::from(w as i8) * i32::from(x))
                    .sum();
                half_at(block, 0) * a.d * sum as f32
            }
        };
    }
    total
}

/// `f32` dot product with eight independent lanes, which the compiler keeps in vector
/// registers.
pub(crate) fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (a8, a_rest) = a.split_at(a.len() / 8 * 8);
    let (b8, b_rest) = b.split_at(a8.len());
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    let mut total = lanes.iter().sum::<f32>();
    for (x, y) in a_rest.iter().zip(b_rest) {
        total += x * y;
    }
    total
}

/// `out += w * x`, elementwise.
pub(crate) fn axpy(out: &mut [f32], w: f32, x: &[f32]) {
    for (o, v) in out.iter_mut().zip(x) {
        *o += w * v;
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 kernels: nibbles or bytes times activation bytes with `maddubs`, summed to
    //! 32-bit integers, converted and scaled with FMA.

    use super::{ActBlock, BLOCK};
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn half(bits: u16) -> f32 {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn hsum(v: __m256) -> f32 {
        let sum = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let sum = _mm_add_ps(sum, _mm_movehl_ps(sum, sum));
        let sum = _mm_add_ss(sum, _mm_movehdup_ps(sum));
        _mm_cvtss_f32(sum)
    }

    /// The 32 nibbles of a Q4 block as bytes 0..=15, element order.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn nibbles(qs: *const u8) -> __m256i {
        // SAFETY: the caller passes a pointer to 16 readable bytes.
        let packed = unsafe { _mm_loadu_si128(qs as *const __m128i) };
        let low_mask = _mm_set1_epi8(0x0f);
        let low = _mm_and_si128(packed, low_mask);
        let high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_mask);
        _mm256_set_m128i(high, low)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn products(unsigned: __m256i, signed: __m256i) -> __m256 {
        let pairs = _mm256_maddubs_epi16(unsigned, signed);
        _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn act_bytes(act: &ActBlock) -> __m256i {
        // SAFETY: `qs` is 32 bytes.
        unsafe { _mm256_loadu_si256(act.qs.as_ptr() as *const __m256i) }
    }

    /// Q4_0 (`OFFSET = false`) or Q4_1 (`true`) row times an activation row.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `row` holds `act.len()` blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q4<const OFFSET: bool>(row: &[u8], act: &[ActBlock]) -> f32 {
        let size = if OFFSET { 20 } else { 18 };
        let mut acc = _mm256_setzero_ps();
        let mut offsets = 0f32;
        for (i, a) in act.iter().enumerate() {
            let block = &row[i * size..(i + 1) * size];
            let d = half(u16::from_le_bytes([block[0], block[1]]));
            let qs = if OFFSET { &block[4..] } else { &block[2..] };
            // SAFETY: `qs` holds 16 bytes.
            let q4 = unsafe { nibbles(qs.as_ptr()) };
            let sums = products(q4, act_bytes(a));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), sums, acc);
            offsets += if OFFSET {
                half(u16::from_le_bytes([block[2], block[3]])) * a.s
            } else {
                -8.0 * d * a.s
            };
        }
        hsum(acc) + offsets
    }

    /// As [`dot_q4`], for four activation rows at once.
    ///
    /// # Safety
    /// As [`dot_q4`], for every row of `acts`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot4_q4<const OFFSET: bool>(
        row: &[u8],
        acts: [&[ActBlock]; 4],
    ) -> [f32; 4] {
        let size = if OFFSET { 20 } else { 18 };
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut offsets = [0f32; 4];
        for i in 0..row.len() / size {
            let block = &row[i * size..(i + 1) * size];
            let d = half(u16::from_le_bytes([block[0], block[1]]));
            let m = if OFFSET {
                half(u16::from_le_bytes([block[2], block[3]]))
            } else {
                -8.0 * d
            };
            let qs = if OFFSET { &block[4..] } else { &block[2..] };
            // SAFETY: `qs` holds 16 bytes.
            let q4 = unsafe { nibbles(qs.as_ptr()) };
            for t in 0..4 {
                let a = &acts[t][i];
                let sums = products(q4, act_bytes(a));
                acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), sums, acc[t]);
                offsets[t] += m * a.s;
            }
        }
        [
            hsum(acc[0]) + offsets[0],
            hsum(acc[1]) + offsets[1],
            hsum(acc[2]) + offsets[2],
            hsum(acc[3]) + offsets[3],
        ]
    }

    /// Four rows of one format (`SIZE` bytes a block, values from byte `QS`: 18/2 is Q4_0,
    /// 20/4 is Q4_1, 34/2 is Q8_0) times one activation row.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; every row holds `act.len()` blocks of that format.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_rows4<const SIZE: usize, const QS: usize>(
        rows: [&[u8]; 4],
        act: &[ActBlock],
    ) -> [f32; 4] {
        let starts = rows.map(<[u8]>::as_ptr);
        // Callers pass consecutive rows of a matrix, and the next calls take the rows after
        // them: fetch those eight rows ahead while these are multiplied. Rows are short
        // (hundreds of bytes), too short for the hardware prefetchers to find the stream in
        // time (measured: 20 ms of CPU per decoded token without, 15 with).
        let ahead = 8 * act.len() * SIZE;
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut offsets = [0f32; 4];
        for (i, a) in act.iter().enumerate() {
            let x = act_bytes(a);
            for start in starts {
                // A prefetch never faults, even past the end of the matrix.
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(ahead + i * SIZE) as *const i8);
            }
            for r in 0..4 {
                // SAFETY: block `i` of row `r` is in bounds (the caller's contract); its first
                // four bytes are `d` and `m` (Q4_1) or `d` and two value bytes.
                let (scales, w) = unsafe {
                    let block = starts[r].add(i * SIZE);
                    let head = std::ptr::read_unaligned(block as *const i32);
                    let scales = _mm_cvtph_ps(_mm_cvtsi32_si128(head));
                    let w = if SIZE == 34 {
                        _mm256_loadu_si256(block.add(QS) as *const __m256i)
                    } else {
                        nibbles(block.add(QS))
                    };
                    (scales, w)
                };
                let d = _mm_cvtss_f32(scales);
                let sums = if SIZE == 34 {
                    products(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
                } else {
                    products(w, x)
                };
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), sums, acc[r]);
                if SIZE == 20 {
                    offsets[r] += _mm_cvtss_f32(_mm_movehdup_ps(scales)) * a.s;
                } else if SIZE == 18 {
                    offsets[r] -= 8.0 * d * a.s;
                }
            }
        }
        [
            hsum(acc[0]) + offsets[0],
            hsum(acc[1]) + offsets[1],
            hsum(acc[2]) + offsets[2],
            hsum(acc[3]) + offsets[3],
        ]
    }

    /// Scores of a 64-wide query against `scores.len()` keys: the query stays in eight
    /// registers, four keys go at once so the additions do not wait on each other.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `query` holds 64 values and `keys` `64 * scores.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn scores64(query: &[f32], keys: &[f32], scale: f32, scores: &mut [f32]) {
        let q = query.as_ptr();
        // SAFETY: `query` holds 64 values.
        let q: [__m256; 8] = std::array::from_fn(|i| unsafe { _mm256_loadu_ps(q.add(8 * i)) });
        let k = keys.as_ptr();
        let n = scores.len();
        let mut j = 0;
        while j + 4 <= n {
            let mut acc = [_mm256_setzero_ps(); 4];
            for (i, &qi) in q.iter().enumerate() {
                for (r, a) in acc.iter_mut().enumerate() {
                    // SAFETY: key `j + r < n` is in bounds.
                    let key = unsafe { _mm256_loadu_ps(k.add((j + r) * 64 + 8 * i)) };
                    *a = _mm256_fmadd_ps(qi, key, *a);
                }
            }
            for (r, a) in acc.into_iter().enumerate() {
                scores[j + r] = hsum(a) * scale;
            }
            j += 4;
        }
        while j < n {
            let mut acc = _mm256_setzero_ps();
            for (i, &qi) in q.iter().enumerate() {
                // SAFETY: key `j < n` is in bounds.
                let key = unsafe { _mm256_loadu_ps(k.add(j * 64 + 8 * i)) };
                acc = _mm256_fmadd_ps(qi, key, acc);
            }
            scores[j] = hsum(acc) * scale;
            j += 1;
        }
    }

    /// `out = sum_j weights[j] * values[j]` for 64-wide values, `out` kept in eight registers.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `out` holds 64 values and `values` `64 * weights.len()`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn mix64(weights: &[f32], values: &[f32], out: &mut [f32]) {
        let v = values.as_ptr();
        let mut acc = [_mm256_setzero_ps(); 8];
        for (j, &w) in weights.iter().enumerate() {
            let w = _mm256_set1_ps(w);
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: value `j` is in bounds.
                let value = unsafe { _mm256_loadu_ps(v.add(j * 64 + 8 * i)) };
                *a = _mm256_fmadd_ps(w, value, *a);
            }
        }
        for (i, a) in acc.into_iter().enumerate() {
            // SAFETY: `out` holds 64 values.
            unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * i), a) };
        }
    }

    /// `f32` dot product, eight lanes at a time with FMA.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `a` and `b` are equally long.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let chunks = a.len() / 8;
        let mut acc = _mm256_setzero_ps();
        for i in 0..chunks {
            // SAFETY: `8 * i + 8 <= len` for both slices.
            let (x, y) = unsafe {
                (
                    _mm256_loadu_ps(a.as_ptr().add(8 * i)),
                    _mm256_loadu_ps(b.as_ptr().add(8 * i)),
                )
            };
            acc = _mm256_fmadd_ps(x, y, acc);
        }
        let mut total = hsum(acc);
        for i in chunks * 8..a.len() {
            total += a[i] * b[i];
        }
        total
    }

    /// `out += w * x`, eight lanes at a time with FMA.
    ///
    /// # Safety
    /// The CPU has AVX2 and FMA; `out` and `x` are equally long.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn axpy(out: &mut [f32], w: f32, x: &[f32]) {
        let chunks = out.len() / 8;
        let weight = _mm256_set1_ps(w);
        for i in 0..chunks {
            // SAFETY: `8 * i + 8 <= len` for both slices.
            unsafe {
                let o = out.as_mut_ptr().add(8 * i);
                let v = _mm256_loadu_ps(x.as_ptr().add(8 * i));
                _mm256_storeu_ps(o, _mm256_fmadd_ps(weight, v, _mm256_loadu_ps(o)));
            }
        }
        for i in chunks * 8..out.len() {
            out[i] += w * x[i];
        }
    }

    /// Q8_0 row times an activation row.
    ///
    /// # Safety
    /// The CPU has AVX2, FMA and F16C; `row` holds `act.len()` blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_q8_0(row: &[u8], act: &[ActBlock]) -> f32 {
        let mut acc = _mm256_setzero_ps();
        for (i, a) in act.iter().enumerate() {
            let block = &row[i * 34..(i + 1) * 34];
            let d = half(u16::from_le_bytes([block[0], block[1]]));
            let qs = &block[2..2 + BLOCK];
            // SAFETY: `qs` holds 32 bytes.
            let w = unsafe { _mm256_loadu_si256(qs.as_ptr() as *const __m256i) };
            let x = act_bytes(a);
            // maddubs multiplies unsigned by signed: move w's sign onto x.
            let sums = products(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
            acc = _mm256_fmadd_ps(_mm256_set1_ps(d * a.d), sums, acc);
        }
        hsum(acc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator (xorshift), so the tests need no dependency.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn float(&mut self) -> f32 {
            (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
        }
    }

    fn random_row(format: WeightFormat, blocks: usize, random: &mut Random) -> Vec<u8> {
        let mut row = Vec::new();
        for _ in 0..blocks {
            row.extend_from_slice(&f32_to_f16(random.float() * 0.1).to_le_bytes());
            let payload = match format {
                WeightFormat::Q4_1 => {
                    row.extend_from_slice(&f32_to_f16(random.float() * 0.5).to_le_bytes());
                    16
                }
                WeightFormat::Q4_0 => 16,
                WeightFormat::Q8_0 => 32,
            };
            for _ in 0..payload {
                let byte = random.next() as u8;
                // Q8_0 never holds -128 (quantizers map to -127..=127).
                row.push(if format == WeightFormat::Q8_0 && byte == 0x80 {
                    0x81
                } else {
                    byte
                });
            }
        }
        row
    }

    fn random_act(blocks: usize, random: &mut Random) -> (Vec<f32>, Vec<ActBlock>) {
        let values: Vec<f32> = (0..blocks * BLOCK).map(|_| random.float() * 3.0).collect();
        let mut act = vec![ActBlock::default(); blocks];
        quantize_row(&values, &mut act);
        (values, act)
    }

    #[test]
    fn half_precision_converts_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x03ff), 6.097_555e-5);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0x8000), -0.0);
    }

    #[test]
    fn half_precision_rounds_to_nearest_even() {
        for bits in (0u16..0x7c00).chain(0x8000..0xfc00) {
            assert_eq!(f32_to_f16(f16_to_f32(bits)), bits, "{bits:#x}");
        }
        assert_eq!(
            f32_to_f16(1.0 + 1.0 / 2048.0),
            0x3c00,
            "a tie rounds to even"
        );
        assert_eq!(
            f32_to_f16(1.0 + 3.0 / 2048.0),
            0x3c02,
            "a tie rounds to even"
        );
        assert_eq!(f32_to_f16(1.0e-7), 0x0002);
        assert_eq!(f32_to_f16(70_000.0), 0x7c00);
        assert_eq!(f32_to_f16(-65_504.0), 0xfbff);
    }

    #[test]
    fn quantized_activations_round_trip_within_half_a_step() {
        let mut random = Random(7);
        let (values, act) = random_act(6, &mut random);
        for (block, chunk) in act.iter().zip(values.chunks_exact(BLOCK)) {
            let sum: i32 = block.qs.iter().map(|&q| i32::from(q)).sum();
            assert!((block.s - block.d * sum as f32).abs() <= 1e-3 * block.s.abs().max(1e-3));
            for (q, v) in block.qs.iter().zip(chunk) {
                assert!((f32::from(*q) * block.d - v).abs() <= block.d / 2.0 + 1e-3 * v.abs());
            }
        }
    }

    #[test]
    fn scalar_dot_matches_the_dequantized_product() {
        let mut random = Random(11);
        for format in [WeightFormat::Q4_0, WeightFormat::Q4_1, WeightFormat::Q8_0] {
            let row = random_row(format, 8, &mut random);
            let (_, act) = random_act(8, &mut random);
            let mut weights = vec![0f32; 8 * BLOCK];
            dequantize_row(format, &row, &mut weights);
            let activations: Vec<f32> = act
                .iter()
                .flat_map(|b| b.qs.iter().map(move |&q| f32::from(q) * b.d))
                .collect();
            let expected: f32 = weights.iter().zip(&activations).map(|(w, a)| w * a).sum();
            let got = scalar_dot(format, &row, &act);
            assert!(
                (got - expected).abs() <= 1e-3 * expected.abs().max(1.0),
                "{format:?}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn simd_kernels_match_the_scalar_reference() {
        let kernels = Kernels::detect();
        if !kernels.uses_avx2() {
            println!("no AVX2 on this CPU: the scalar kernels are the only ones");
        }
        let mut random = Random(42);
        for format in [WeightFormat::Q4_0, WeightFormat::Q4_1, WeightFormat::Q8_0] {
            for blocks in [1, 3, 18, 48] {
                let row = random_row(format, blocks, &mut random);
                let acts: Vec<Vec<ActBlock>> =
                    (0..4).map(|_| random_act(blocks, &mut random).1).collect();
                let expected: Vec<f32> = acts.iter().map(|a| scalar_dot(format, &row, a)).collect();
                let one = kernels.dot(format, &row, &acts[0]);
                let rows: Vec<Vec<u8>> = (0..4)
                    .map(|_| random_row(format, blocks, &mut random))
                    .collect();
                let by_rows =
                    kernels.dot_rows4(format, [&rows[0], &rows[1], &rows[2], &rows[3]], &acts[1]);
                for (row, got) in rows.iter().zip(by_rows) {
                    let want = scalar_dot(format, row, &acts[1]);
                    assert!(
                        (got - want).abs() <= 1e-4 * want.abs().max(1.0),
                        "{format:?}"
                    );
                }
                let four = kernels.dot4(format, &row, [&acts[0], &acts[1], &acts[2], &acts[3]]);
                let tolerance = |e: f32| 1e-4 * e.abs().max(1.0);
                assert!(
                    (one - expected[0]).abs() <= tolerance(expected[0]),
                    "{format:?}"
                );
                for (got, want) in four.iter().zip(&expected) {
                    assert!(
                        (got - want).abs() <= tolerance(*want),
                        "{format:?} {blocks}"
                    );
                }
            }
        }
    }

    #[test]
    fn float_helpers_match_plain_loops() {
        let mut random = Random(3);
        let a: Vec<f32> = (0..67).map(|_| random.float()).collect();
        let b: Vec<f32> = (0..67).map(|_| random.float()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let query: Vec<f32> = (0..64).map(|_| random.float()).collect();
        let keys: Vec<f32> = (0..64 * 7).map(|_| random.float()).collect();
        let weights: Vec<f32> = (0..7).map(|_| random.float()).collect();
        let mut expected_scores = vec![0f32; 7];
        Kernels::scalar().scores(&query, &keys, 0.125, &mut expected_scores);
        let mut expected_mix = vec![0f32; 64];
        Kernels::scalar().mix(&weights, &keys, &mut expected_mix);
        for kernels in [Kernels::scalar(), Kernels::detect()] {
            assert!((kernels.dot_f32(&a, &b) - plain).abs() < 1e-4);
            let mut scores = vec![0f32; 7];
            kernels.scores(&query, &keys, 0.125, &mut scores);
            let mut mixed = vec![1f32; 64];
            kernels.mix(&weights, &keys, &mut mixed);
            for (got, want) in scores.iter().zip(&expected_scores) {
                assert!((got - want).abs() < 1e-5);
            }
            for (got, want) in mixed.iter().zip(&expected_mix) {
                assert!((got - want).abs() < 1e-5);
            }
            let plain_score: f32 = query.iter().zip(&keys[64..128]).map(|(x, y)| x * y).sum();
            assert!((scores[1] - plain_score * 0.125).abs() < 1e-4);
            let mut out = b.clone();
            kernels.axpy(&mut out, 0.5, &a);
            for i in [0, 9, 66] {
                assert!((out[i] - (b[i] + 0.5 * a[i])).abs() < 1e-6);
            }
        }
    }
}
