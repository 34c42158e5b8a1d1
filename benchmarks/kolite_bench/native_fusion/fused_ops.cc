// kolite.native::GeluQuantizeLinear — Gelu (erf form) followed by per-tensor QuantizeLinear, in one pass.
//
// Issue 23 item 4: does fusing the hottest elementwise chain of the int8-static graph pay for a native library?
// The two ops it replaces each stream the activation through memory once (Gelu writes float, QuantizeLinear reads
// it back); the fused kernel reads float once and writes uint8/int8 once.
//
// Outputs must stay BITWISE equal to onnxruntime 1.31's CPU kernels, so the arithmetic below replays theirs
// operation by operation (same constants, same fused multiply-adds, same order):
//  * Gelu: y = (0.5 * x) * (erf(x * float(1/sqrt 2)) + 1), erf being MLAS's polynomial + exp approximation.
//    MLAS dispatches erf by CPU: AVX512F machines run the exact-GELU AVX512F kernel (|a| clamped at 3.925,
//    "big" branch when |a| > 0.921875), AVX2/FMA3 machines the FMA3 assembly kernel (clamp 3.725, big branch when
//    |a| >= 0.921875). We pick the same variant by the same CPU test at registration time.
//  * QuantizeLinear: q = x / scale (a true division, not a reciprocal multiply), clamped to
//    [lowest - zp, max - zp], rounded half to even (cvtps2dq under the default MXCSR), + zp.
// The kernel is AVX2 + FMA only; on a CPU without them RegisterCustomOps fails and the caller keeps the unfused graph.
//
// No onnxruntime header is needed: the few C-API entry points used are declared below by their slot in the
// OrtApi table (the table is append-only and ABI-stable; slots checked against onnxruntime_c_api.h of API 29).

#include <immintrin.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>

extern "C" {
struct OrtStatus;
struct OrtApi;  // opaque: used as a table of function pointers
struct OrtApiBase {
  const OrtApi* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)();
};
}

namespace {

// ORT reads an OrtCustomOp's fields by its version; 17 is the first that calls KernelComputeV2 (which can return an
// error) instead of the void KernelCompute. Any onnxruntime from 1.17 on serves this API version.
constexpr uint32_t kApiVersion = 17;
enum : int { kFloat = 1, kUint8 = 2, kInt8 = 3 };  // ONNXTensorElementDataType

// OrtApi slots (index of the function pointer in the table).
enum Slot : size_t {
  kCreateStatus = 0, kCreateCustomOpDomain = 26, kCustomOpDomainAdd = 27, kAddCustomOpDomain = 28,
  kGetTensorMutableData = 51, kGetDimensionsCount = 61, kGetDimensions = 62, kGetTensorShapeElementCount = 64,
  kGetTensorTypeAndShape = 65, kKernelContextGetInput = 90, kKernelContextGetOutput = 91,
  kReleaseTensorTypeAndShapeInfo = 99,
};

const OrtApi* g_api = nullptr;

template <typename Fn>
Fn api(Slot slot) {
  Fn fn;
  std::memcpy(&fn, reinterpret_cast<const char*>(g_api) + slot * sizeof(void*), sizeof(fn));
  return fn;
}

// The OrtCustomOp struct (all fields to API 29; ORT reads only those its version announces, all filled anyway).
struct CustomOp {
  uint32_t version;
  void* (*CreateKernel)(const CustomOp*, const OrtApi*, const void* info);
  const char* (*GetName)(const CustomOp*);
  const char* (*GetExecutionProviderType)(const CustomOp*);
  int (*GetInputType)(const CustomOp*, size_t);
  size_t (*GetInputTypeCount)(const CustomOp*);
  int (*GetOutputType)(const CustomOp*, size_t);
  size_t (*GetOutputTypeCount)(const CustomOp*);
  void (*KernelCompute)(void* kernel, void* context);
  void (*KernelDestroy)(void* kernel);
  int (*GetInputCharacteristic)(const CustomOp*, size_t);
  int (*GetOutputCharacteristic)(const CustomOp*, size_t);
  int (*GetInputMemoryType)(const CustomOp*, size_t);
  int (*GetVariadicInputMinArity)(const CustomOp*);
  int (*GetVariadicInputHomogeneity)(const CustomOp*);
  int (*GetVariadicOutputMinArity)(const CustomOp*);
  int (*GetVariadicOutputHomogeneity)(const CustomOp*);
  OrtStatus* (*CreateKernelV2)(const CustomOp*, const OrtApi*, const void*, void**);
  OrtStatus* (*KernelComputeV2)(void*, void*);
  OrtStatus* (*InferOutputShapeFn)(const CustomOp*, void*);
  int (*GetStartVersion)(const CustomOp*);
  int (*GetEndVersion)(const CustomOp*);
  size_t (*GetMayInplace)(int**, int**);
  void (*ReleaseMayInplace)(int*, int*);
  size_t (*GetAliasMap)(int**, int**);
  void (*ReleaseAliasMap)(int*, int*);
  const char* name;  // ours, after ORT's fields
  int out_type;
};

struct ErfVariant {
  float upper_abs_range;
  bool split_inclusive;  // FMA3 assembly: big branch when |a| >= split; AVX512F kernel: when |a| > split
};
ErfVariant g_erf = {3.725f, true};

// MLAS's erf/exp constants (core/mlas/lib/erf.cpp); the same values in both kernels but the clamp.
constexpr float kSplit = 0.921875f;
constexpr float kS0 = -5.99104969e-4f, kS1 = 4.99339588e-3f, kS2 = -2.67667342e-2f, kS3 = 1.12818025e-1f,
                kS4 = -3.76124859e-1f, kS5m1 = 1.28379151e-1f;
constexpr float kB0 = 1.72948930e-5f, kB1 = -3.83208680e-4f, kB2 = 3.88393435e-3f, kB3 = -2.42545605e-2f,
                kB4 = 1.06777847e-1f, kB5 = 6.34846687e-1f, kB6m1 = 1.28717512e-1f;
constexpr float kExpLower = -88.3762626647949f, kLog2e = 1.44269504088896341f, kLn2Hi = -6.93145752e-1f,
                kLn2Lo = -1.42860677e-6f, kE0 = 1.38319808e-3f, kE1 = 8.37550033e-3f, kE2 = 4.16689515e-2f,
                kE3 = 1.66664466e-1f, kE4 = 4.99999851e-1f, kE5 = 1.0f, kE6 = 1.0f, kExpC = 1.25829120e+7f;
constexpr float kInvSqrt2 = 0.70710678118654752440f;

#define B(v) _mm256_set1_ps(v)
// Only the vector code is compiled for AVX2 + FMA (not the whole file with -march), so loading the library on an
// older x86-64 cannot fault before RegisterCustomOps has checked the CPU.
#define KN_VECTOR __attribute__((target("avx2,fma")))

KN_VECTOR inline __m256 Erf8(__m256 v, __m256 upper, int split_predicate) {
  const __m256 neg_zero = B(-0.0f);
  const __m256 sign = _mm256_and_ps(v, neg_zero);
  const __m256 a = _mm256_min_ps(_mm256_andnot_ps(neg_zero, v), upper);
  const __m256 s = _mm256_mul_ps(a, a);
  __m256 small = B(kS0);
  small = _mm256_fmadd_ps(small, s, B(kS1));
  small = _mm256_fmadd_ps(small, s, B(kS2));
  small = _mm256_fmadd_ps(small, s, B(kS3));
  small = _mm256_fmadd_ps(small, s, B(kS4));
  small = _mm256_fmadd_ps(small, s, B(kS5m1));
  small = _mm256_fmadd_ps(small, a, a);
  const __m256 big_mask = split_predicate == _CMP_GE_OQ ? _mm256_cmp_ps(a, B(kSplit), _CMP_GE_OQ)
                                                        : _mm256_cmp_ps(a, B(kSplit), _CMP_GT_OQ);
  small = _mm256_andnot_ps(big_mask, small);
  const __m256 b = _mm256_and_ps(big_mask, a);  // small lanes run the big branch on 0 and come out +0
  __m256 r = B(kB0);
  r = _mm256_fmadd_ps(r, b, B(kB1));
  r = _mm256_fmadd_ps(r, b, B(kB2));
  r = _mm256_fmadd_ps(r, b, B(kB3));
  r = _mm256_fmadd_ps(r, b, B(kB4));
  r = _mm256_fmadd_ps(r, b, B(kB5));
  r = _mm256_fmadd_ps(r, b, B(kB6m1));
  r = _mm256_fmadd_ps(r, b, b);
  r = _mm256_max_ps(_mm256_xor_ps(r, neg_zero), B(kExpLower));
  __m256 k = _mm256_sub_ps(_mm256_fmadd_ps(B(kLog2e), r, B(kExpC)), B(kExpC));  // round(r / ln 2)
  __m256 f = _mm256_fmadd_ps(k, B(kLn2Hi), r);
  f = _mm256_fmadd_ps(k, B(kLn2Lo), f);
  __m256 y = B(kE0);
  y = _mm256_fmadd_ps(y, f, B(kE1));
  y = _mm256_fmadd_ps(y, f, B(kE2));
  y = _mm256_fmadd_ps(y, f, B(kE3));
  y = _mm256_fmadd_ps(y, f, B(kE4));
  y = _mm256_fmadd_ps(y, f, B(kE5));
  y = _mm256_fmadd_ps(y, f, B(kE6));
  // 2^k built in the exponent field (k is in [-127, 0] here, so this equals AVX512's scalef).
  const __m256i k_bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(k), _mm256_set1_epi32(127)), 23);
  y = _mm256_sub_ps(B(1.0f), _mm256_mul_ps(y, _mm256_castsi256_ps(k_bits)));
  return _mm256_or_ps(_mm256_or_ps(small, y), sign);
}

template <typename Out>
KN_VECTOR void GeluQuantize(const float* x, Out* out, size_t n, float scale, int zero_point) {
  constexpr int lo = sizeof(Out) == 1 && static_cast<Out>(-1) < 0 ? -128 : 0;
  constexpr int hi = lo == 0 ? 255 : 127;
  const __m256 upper = B(g_erf.upper_abs_range);
  const int predicate = g_erf.split_inclusive ? _CMP_GE_OQ : _CMP_GT_OQ;
  const __m256 vscale = B(scale), vmin = B(float(lo - zero_point)), vmax = B(float(hi - zero_point));
  const __m256i vzp = _mm256_set1_epi32(zero_point);
  alignas(32) float tail_in[8];
  alignas(8) Out tail_out[8];
  for (size_t i = 0; i < n; i += 8) {
    const size_t m = n - i < 8 ? n - i : 8;
    __m256 v;
    if (m == 8) {
      v = _mm256_loadu_ps(x + i);
    } else {  // the tail: same lane arithmetic on a zero-padded copy
      std::memset(tail_in, 0, sizeof(tail_in));
      std::memcpy(tail_in, x + i, m * sizeof(float));
      v = _mm256_load_ps(tail_in);
    }
    const __m256 e = Erf8(_mm256_mul_ps(v, B(kInvSqrt2)), upper, predicate);
    const __m256 g = _mm256_mul_ps(_mm256_mul_ps(B(0.5f), v), _mm256_add_ps(e, B(1.0f)));
    __m256 t = _mm256_div_ps(g, vscale);
    t = _mm256_min_ps(_mm256_max_ps(t, vmin), vmax);
    const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(t), vzp);  // already in [lo, hi]: packing cannot clip
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    const __m128i bytes = lo == 0 ? _mm_packus_epi16(w, w) : _mm_packs_epi16(w, w);
    if (m == 8) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), bytes);
    } else {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(tail_out), bytes);
      std::memcpy(out + i, tail_out, m);
    }
  }
}

OrtStatus* Fail(const char* message) {
  return api<OrtStatus* (*)(int, const char*)>(kCreateStatus)(1 /*ORT_FAIL*/, message);
}

struct Kernel {
  int out_type;
};

OrtStatus* Compute(void* kernel, void* context) {
  using GetInput = OrtStatus* (*)(const void*, size_t, const void**);
  using GetOutput = OrtStatus* (*)(void*, size_t, const int64_t*, size_t, void**);
  using GetShape = OrtStatus* (*)(const void*, void**);
  using GetCount = OrtStatus* (*)(const void*, size_t*);
  using GetDims = OrtStatus* (*)(const void*, int64_t*, size_t);
  using GetData = OrtStatus* (*)(void*, void**);
  using Release = void (*)(void*);
  const void* inputs[3];
  for (size_t i = 0; i < 3; ++i) {
    if (OrtStatus* s = api<GetInput>(kKernelContextGetInput)(context, i, &inputs[i])) return s;
  }
  void* info = nullptr;
  if (OrtStatus* s = api<GetShape>(kGetTensorTypeAndShape)(inputs[0], &info)) return s;
  size_t rank = 0, count = 0;
  int64_t dims[8];
  OrtStatus* s = api<GetCount>(kGetDimensionsCount)(info, &rank);
  if (!s && rank > 8) s = Fail("GeluQuantizeLinear: rank above 8");
  if (!s) s = api<GetDims>(kGetDimensions)(info, dims, rank);
  if (!s) s = api<GetCount>(kGetTensorShapeElementCount)(info, &count);
  api<Release>(kReleaseTensorTypeAndShapeInfo)(info);
  if (s) return s;
  void *x, *scale, *zp, *output, *y;
  if ((s = api<GetData>(kGetTensorMutableData)(const_cast<void*>(inputs[0]), &x))) return s;
  if ((s = api<GetData>(kGetTensorMutableData)(const_cast<void*>(inputs[1]), &scale))) return s;
  if ((s = api<GetData>(kGetTensorMutableData)(const_cast<void*>(inputs[2]), &zp))) return s;
  if ((s = api<GetOutput>(kKernelContextGetOutput)(context, 0, dims, rank, &output))) return s;  // an OrtValue
  if ((s = api<GetData>(kGetTensorMutableData)(output, &y))) return s;
  const float sc = *static_cast<const float*>(scale);
  if (static_cast<Kernel*>(kernel)->out_type == kUint8) {
    GeluQuantize(static_cast<const float*>(x), static_cast<uint8_t*>(y), count, sc, *static_cast<uint8_t*>(zp));
  } else {
    GeluQuantize(static_cast<const float*>(x), static_cast<int8_t*>(y), count, sc, *static_cast<int8_t*>(zp));
  }
  return nullptr;
}

OrtStatus* CreateKernelV2(const CustomOp* op, const OrtApi*, const void*, void** kernel) {
  *kernel = new Kernel{op->out_type};
  return nullptr;
}

CustomOp MakeOp(const char* name, int out_type) {
  CustomOp op{};
  op.version = kApiVersion;
  op.GetName = [](const CustomOp* o) { return o->name; };
  op.GetExecutionProviderType = [](const CustomOp*) -> const char* { return "CPUExecutionProvider"; };
  op.GetInputType = [](const CustomOp* o, size_t i) { return i == 0 || i == 1 ? kFloat : o->out_type; };
  op.GetInputTypeCount = [](const CustomOp*) -> size_t { return 3; };
  op.GetOutputType = [](const CustomOp* o, size_t) { return o->out_type; };
  op.GetOutputTypeCount = [](const CustomOp*) -> size_t { return 1; };
  op.KernelDestroy = [](void* k) { delete static_cast<Kernel*>(k); };
  op.GetInputCharacteristic = [](const CustomOp*, size_t) { return 0; };  // required
  op.GetOutputCharacteristic = [](const CustomOp*, size_t) { return 0; };
  op.GetInputMemoryType = [](const CustomOp*, size_t) { return 0; };  // OrtMemTypeDefault
  op.GetVariadicInputMinArity = [](const CustomOp*) { return 1; };
  op.GetVariadicInputHomogeneity = [](const CustomOp*) { return 1; };
  op.GetVariadicOutputMinArity = [](const CustomOp*) { return 1; };
  op.GetVariadicOutputHomogeneity = [](const CustomOp*) { return 1; };
  op.CreateKernelV2 = CreateKernelV2;
  op.KernelComputeV2 = Compute;
  op.GetStartVersion = [](const CustomOp*) { return 1; };
  op.GetEndVersion = [](const CustomOp*) { return INT_MAX; };
  op.GetMayInplace = [](int**, int**) -> size_t { return 0; };
  op.ReleaseMayInplace = [](int*, int*) {};
  op.GetAliasMap = [](int**, int**) -> size_t { return 0; };
  op.ReleaseAliasMap = [](int*, int*) {};
  op.name = name;
  op.out_type = out_type;
  return op;
}

CustomOp g_u8 = MakeOp("GeluQuantizeLinear", kUint8);
CustomOp g_s8 = MakeOp("GeluQuantizeLinearS8", kInt8);

}  // namespace

extern "C" __attribute__((visibility("default"))) OrtStatus* RegisterCustomOps(void* options,
                                                                                const OrtApiBase* base) {
  g_api = base->GetApi(kApiVersion);
  if (!g_api) return nullptr;  // cannot even report: ORT older than 1.16 (not a kolite target)
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    return Fail("kolite.native needs AVX2 and FMA; keep the unfused graph");
  }
  // Mirror MLAS's Gelu dispatch (see the header comment): AVX512F (with OS support, which the builtin checks)
  // selects the AVX512F exact-GELU kernel's erf.
  if (__builtin_cpu_supports("avx512f")) g_erf = {3.925f, false};
  void* domain = nullptr;
  using CreateDomain = OrtStatus* (*)(const char*, void**);
  using AddOp = OrtStatus* (*)(void*, const CustomOp*);
  using AddDomain = OrtStatus* (*)(void*, void*);
  // One domain per SessionOptions; ORT does not copy it, so it lives for the process (a few bytes).
  if (OrtStatus* s = api<CreateDomain>(kCreateCustomOpDomain)("kolite.native", &domain)) return s;
  if (OrtStatus* s = api<AddOp>(kCustomOpDomainAdd)(domain, &g_u8)) return s;
  if (OrtStatus* s = api<AddOp>(kCustomOpDomainAdd)(domain, &g_s8)) return s;
  return api<AddDomain>(kAddCustomOpDomain)(options, domain);
}
