// lightning_gans::build_info() -> str: how this extension was built, as JSON
// (read by lightning_gans.kernels.build_info()). setup.py passes the values as
// bare preprocessor tokens (no quotes survive every shell and build tool the
// same way), and they are turned into strings here.
#include <torch/library.h>

#include <algorithm>
#include <string>

#define LG_STR_(...) #__VA_ARGS__
#define LG_STR(...) LG_STR_(__VA_ARGS__)

#ifndef LG_TORCH_VERSION
#define LG_TORCH_VERSION unknown
#endif
#ifndef LG_CPU_ISA_VARIANTS  // ':'-separated tokens (nvcc splits -D values at commas)
#define LG_CPU_ISA_VARIANTS
#endif
#ifndef LG_CUDA_ARCHS  // e.g. 7.5:8.0:9.0+PTX
#define LG_CUDA_ARCHS
#endif
#ifndef LG_CUDA_VERSION
#define LG_CUDA_VERSION
#endif

namespace lightning_gans {
namespace {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// "a:b:c" -> ["a", "b", "c"]
std::string json_list(const std::string& csv) {
  std::string out = "[", item;
  bool first = true;
  auto emit = [&] {
    if (item.empty()) return;
    out += (first ? "" : ", ") + json_string(item);
    first = false;
    item.clear();
  };
  for (const char c : csv) {
    if (c == ':') emit();
    else if (c != ' ') item += c;
  }
  emit();
  return out + "]";
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#elif defined(_MSC_VER)
  return "msvc " + std::to_string(_MSC_VER);
#else
  return "unknown";
#endif
}

std::string build_info() {
#ifdef _OPENMP
  const bool openmp = true;
#else
  const bool openmp = false;
#endif
#ifdef LG_WITH_CUDA
  const bool cuda = true;
#else
  const bool cuda = false;
#endif
  std::string archs = LG_STR(LG_CUDA_ARCHS);
  for (char& c : archs) {
    if (c == ':') c = ';';  // torch's TORCH_CUDA_ARCH_LIST spelling
  }
  archs.erase(std::remove(archs.begin(), archs.end(), ' '), archs.end());
  return std::string("{") + "\"openmp\": " + (openmp ? "true" : "false") +
         ", \"cpu_isa_variants\": " + json_list(LG_STR(LG_CPU_ISA_VARIANTS)) +
         ", \"cuda\": " + (cuda ? "true" : "false") + ", \"cuda_archs\": " + json_string(archs) +
         ", \"cuda_version\": " + json_string(LG_STR(LG_CUDA_VERSION)) +
         ", \"torch_version\": " + json_string(LG_STR(LG_TORCH_VERSION)) +
         ", \"compiler\": " + json_string(compiler()) + "}";
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lightning_gans, m) { m.def("build_info() -> str", &build_info); }

}  // namespace lightning_gans
