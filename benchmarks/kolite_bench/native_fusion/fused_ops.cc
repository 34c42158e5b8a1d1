// kolite.native::GeluQuantizeLinear — Gelu (erf form) followed by per-tensor QuantizeLinear, in one pass.
//
// Issue 23 item 4: does fusing the hottest elementwise chain of the int8-static graph pay for a native library?
// The two ops it replaces each stream the activation through memory once (Gelu writes float, QuantizeLinear reads
// it back); the fused kernel reads float once and writes uint8/int8 once.
//
// Outputs must stay BITWISE equal to onnxruntime 1.31's CPU kernels, so gelu_quantize.h replays MLAS's arithmetic
// operation by operation (same constants, same fused multiply-adds, same order), for the Gelu kernel MLAS picks on
// this CPU: its AVX512F exact-GELU kernel, or (AVX2/FMA3 without AVX512F) the FMA3 erf kernel. A CPU without
// AVX2 + FMA gets neither: RegisterCustomOps fails there and the caller keeps the unfused graph.
//
// No onnxruntime header is needed: the few C-API entry points used are declared below by their slot in the
// OrtApi table (the table is append-only and ABI-stable; slots checked against onnxruntime_c_api.h of API 29).

#include <immintrin.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>

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

#include "gelu_quantize.h"  // the kernels: GeluQuantizeAvx2, GeluQuantizeAvx512

bool g_avx512 = false;  // which of the two MLAS would run here (set at registration)

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
  const float* in = static_cast<const float*>(x);
  if (static_cast<Kernel*>(kernel)->out_type == kUint8) {
    const int z = *static_cast<const uint8_t*>(zp);
    auto* o = static_cast<uint8_t*>(y);
    g_avx512 ? GeluQuantizeAvx512(in, o, count, sc, z) : GeluQuantizeAvx2(in, o, count, sc, z);
  } else {
    const int z = *static_cast<const int8_t*>(zp);
    auto* o = static_cast<int8_t*>(y);
    g_avx512 ? GeluQuantizeAvx512(in, o, count, sc, z) : GeluQuantizeAvx2(in, o, count, sc, z);
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
  // Mirror MLAS's Gelu dispatch (gelu_quantize.h): the AVX512F kernel wherever AVX512F is usable (the builtin
  // also checks that the OS saves the ZMM state).
  g_avx512 = __builtin_cpu_supports("avx512f");
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
