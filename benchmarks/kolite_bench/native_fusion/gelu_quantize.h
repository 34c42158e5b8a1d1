// Gelu (erf) + QuantizeLinear kernels replaying onnxruntime 1.31's MLAS arithmetic lane by lane (see fused_ops.cc).
// Included once, by fused_ops.cc, inside its anonymous namespace.
//
// Every lane goes through exactly the operations MLAS applies to it (vector width does not change a lane's
// result), so either kernel is bitwise MLAS on the CPU that MLAS would dispatch it to:
//  * Avx512: MLAS's AVX512F exact-GELU kernel (gelu_avx512f.cpp): |a| clamped at 3.925, big branch when
//    |a| > 0.921875, 2^k by scalef. Selected by MLAS whenever the CPU has AVX512F.
//  * Avx2: MLAS's multi-pass GELU with the FMA3 erf assembly kernel (ErfKernelFma3.S): clamp 3.725, big branch
//    when |a| >= 0.921875, 2^k built in the exponent field. Selected by MLAS on AVX2/FMA3 CPUs without AVX512F.
// Both quantize as MLAS does: x / scale (a true division), max with lo - zp, min with hi - zp (NaN goes to
// lo - zp, as in MLAS), cvtps2dq (round half to even under the default MXCSR), + zp.

// MLAS's erf/exp constants (core/mlas/lib/erf.cpp); both kernels share them but for the clamp.
constexpr float kSplit = 0.921875f;
constexpr float kS0 = -5.99104969e-4f, kS1 = 4.99339588e-3f, kS2 = -2.67667342e-2f, kS3 = 1.12818025e-1f,
                kS4 = -3.76124859e-1f, kS5m1 = 1.28379151e-1f;
constexpr float kB0 = 1.72948930e-5f, kB1 = -3.83208680e-4f, kB2 = 3.88393435e-3f, kB3 = -2.42545605e-2f,
                kB4 = 1.06777847e-1f, kB5 = 6.34846687e-1f, kB6m1 = 1.28717512e-1f;
constexpr float kExpLower = -88.3762626647949f, kLog2e = 1.44269504088896341f, kLn2Hi = -6.93145752e-1f,
                kLn2Lo = -1.42860677e-6f, kE0 = 1.38319808e-3f, kE1 = 8.37550033e-3f, kE2 = 4.16689515e-2f,
                kE3 = 1.66664466e-1f, kE4 = 4.99999851e-1f, kE5 = 1.0f, kE6 = 1.0f, kExpC = 1.25829120e+7f;
constexpr float kInvSqrt2 = 0.70710678118654752440f;

template <typename Out>
constexpr int kLo = static_cast<Out>(-1) < 0 ? -128 : 0;
template <typename Out>
constexpr int kHi = kLo<Out> == 0 ? 255 : 127;

// Only the vector code is compiled for the wider ISA (no global -march), so loading the library on an older
// x86-64 cannot fault before RegisterCustomOps has checked the CPU.
#define KN_AVX2 __attribute__((target("avx2,fma")))
#define KN_AVX512 __attribute__((target("avx512f,avx2,fma")))

// ---- AVX2 + FMA3: 8 lanes ----
#define B8(v) _mm256_set1_ps(v)

KN_AVX2 inline __m256 GeluAvx2(__m256 x) {
  const __m256 v = _mm256_mul_ps(x, B8(kInvSqrt2)), neg_zero = B8(-0.0f);
  const __m256 sign = _mm256_and_ps(v, neg_zero);
  const __m256 a = _mm256_min_ps(_mm256_andnot_ps(neg_zero, v), B8(3.725f));
  const __m256 s = _mm256_mul_ps(a, a);
  __m256 small = B8(kS0);
  for (float c : {kS1, kS2, kS3, kS4, kS5m1}) small = _mm256_fmadd_ps(small, s, B8(c));
  small = _mm256_fmadd_ps(small, a, a);
  const __m256 big = _mm256_cmp_ps(B8(kSplit), a, _CMP_LE_OQ);
  small = _mm256_andnot_ps(big, small);
  const __m256 b = _mm256_and_ps(big, a);  // small lanes run the big branch on 0 and come out +0
  __m256 r = B8(kB0);
  for (float c : {kB1, kB2, kB3, kB4, kB5, kB6m1}) r = _mm256_fmadd_ps(r, b, B8(c));
  r = _mm256_max_ps(_mm256_xor_ps(_mm256_fmadd_ps(r, b, b), neg_zero), B8(kExpLower));
  const __m256 k = _mm256_sub_ps(_mm256_fmadd_ps(r, B8(kLog2e), B8(kExpC)), B8(kExpC));  // round(r / ln 2)
  __m256 f = _mm256_fmadd_ps(k, B8(kLn2Hi), r);
  f = _mm256_fmadd_ps(k, B8(kLn2Lo), f);
  __m256 y = B8(kE0);
  for (float c : {kE1, kE2, kE3, kE4, kE5, kE6}) y = _mm256_fmadd_ps(y, f, B8(c));
  const __m256i two_k = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(k), _mm256_set1_epi32(127)), 23);
  y = _mm256_sub_ps(B8(1.0f), _mm256_mul_ps(y, _mm256_castsi256_ps(two_k)));
  const __m256 erf = _mm256_or_ps(_mm256_or_ps(small, y), sign);
  return _mm256_mul_ps(_mm256_mul_ps(B8(0.5f), x), _mm256_add_ps(erf, B8(1.0f)));
}

template <typename Out>
KN_AVX2 void GeluQuantizeAvx2(const float* x, Out* out, size_t n, float scale, int zp) {
  const __m256 vscale = B8(scale), vmin = B8(float(kLo<Out> - zp)), vmax = B8(float(kHi<Out> - zp));
  const __m256i vzp = _mm256_set1_epi32(zp);
  alignas(32) float tail_in[8] = {};
  alignas(8) Out tail_out[8];
  for (size_t i = 0; i < n; i += 8) {
    const size_t m = n - i < 8 ? n - i : 8;
    if (m < 8) std::memcpy(tail_in, x + i, m * sizeof(float));  // the tail: same lanes on a zero-padded copy
    const __m256 g = GeluAvx2(m == 8 ? _mm256_loadu_ps(x + i) : _mm256_load_ps(tail_in));
    const __m256 t = _mm256_min_ps(_mm256_max_ps(_mm256_div_ps(g, vscale), vmin), vmax);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(t), vzp);  // already in [lo, hi]: packing cannot clip
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i bytes = kLo<Out> == 0 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(m == 8 ? out + i : tail_out), bytes);
    if (m < 8) std::memcpy(out + i, tail_out, m);
  }
}

// ---- AVX512F: 16 lanes, two vectors per step (the polynomial chains are latency bound) ----
#define B16(v) _mm512_set1_ps(v)

KN_AVX512 inline __m512 GeluAvx512(__m512 x) {
  const __m512i sign_bit = _mm512_set1_epi32(INT32_MIN);
  const __m512i vi = _mm512_castps_si512(_mm512_mul_ps(x, B16(kInvSqrt2)));
  const __m512i sign = _mm512_and_si512(vi, sign_bit);
  const __m512 a = _mm512_min_ps(B16(3.925f), _mm512_castsi512_ps(_mm512_andnot_si512(sign_bit, vi)));
  const __m512 s = _mm512_mul_ps(a, a);
  __m512 small = B16(kS0);
  for (float c : {kS1, kS2, kS3, kS4, kS5m1}) small = _mm512_fmadd_ps(small, s, B16(c));
  small = _mm512_fmadd_ps(small, a, a);
  const __mmask16 big = _mm512_cmp_ps_mask(a, B16(kSplit), _CMP_GT_OQ);
  const __m512 b = _mm512_mask_blend_ps(big, _mm512_setzero_ps(), a);
  __m512 r = B16(kB0);
  for (float c : {kB1, kB2, kB3, kB4, kB5, kB6m1}) r = _mm512_fmadd_ps(r, b, B16(c));
  r = _mm512_fmadd_ps(r, b, b);
  r = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(r), sign_bit));
  r = _mm512_max_ps(B16(kExpLower), r);
  const __m512 k = _mm512_sub_ps(_mm512_fmadd_ps(B16(kLog2e), r, B16(kExpC)), B16(kExpC));
  __m512 f = _mm512_fmadd_ps(k, B16(kLn2Hi), r);
  f = _mm512_fmadd_ps(k, B16(kLn2Lo), f);
  __m512 y = B16(kE0);
  for (float c : {kE1, kE2, kE3, kE4, kE5, kE6}) y = _mm512_fmadd_ps(y, f, B16(c));
  const __m512 big_erf = _mm512_sub_ps(B16(1.0f), _mm512_scalef_ps(y, k));
  const __m512i erf = _mm512_or_si512(_mm512_castps_si512(_mm512_mask_blend_ps(big, small, big_erf)), sign);
  // MLAS then puts NaN inputs back unchanged; a NaN quantizes to lo either way, so that step is left out.
  return _mm512_mul_ps(_mm512_mul_ps(B16(0.5f), x), _mm512_add_ps(_mm512_castsi512_ps(erf), B16(1.0f)));
}

template <typename Out>
KN_AVX512 inline void QuantizeStoreAvx512(__m512 g, Out* out, __mmask16 mask, __m512 vscale, __m512 vmin,
                                          __m512 vmax, __m512i vzp) {
  const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_div_ps(g, vscale), vmin), vmax);
  const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(t), vzp);  // in [lo, hi]: the narrowing cannot clip
  if constexpr (kLo<Out> == 0) {
    _mm512_mask_cvtusepi32_storeu_epi8(out, mask, q);
  } else {
    _mm512_mask_cvtsepi32_storeu_epi8(out, mask, q);
  }
}

template <typename Out>
KN_AVX512 void GeluQuantizeAvx512(const float* x, Out* out, size_t n, float scale, int zp) {
  const __m512 vscale = B16(scale), vmin = B16(float(kLo<Out> - zp)), vmax = B16(float(kHi<Out> - zp));
  const __m512i vzp = _mm512_set1_epi32(zp);
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 g0 = GeluAvx512(_mm512_loadu_ps(x + i)), g1 = GeluAvx512(_mm512_loadu_ps(x + i + 16));
    QuantizeStoreAvx512(g0, out + i, 0xFFFF, vscale, vmin, vmax, vzp);
    QuantizeStoreAvx512(g1, out + i + 16, 0xFFFF, vscale, vmin, vmax, vzp);
  }
  for (; i < n; i += 16) {
    const __mmask16 mask = n - i >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (n - i)) - 1u);
    QuantizeStoreAvx512(GeluAvx512(_mm512_maskz_loadu_ps(mask, x + i)), out + i, mask, vscale, vmin, vmax, vzp);
  }
}
