#include "runtime/heap.h"

#include <cstdlib>
#include <cstring>
#include <mutex>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mace_deploy {

void keep_freed_memory_for_reuse() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    const char* setting = std::getenv("MACE_DEPLOY_KEEP_HEAP");
    if (setting != nullptr && std::strcmp(setting, "0") == 0) return;
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, -1);  // never trim (the value is read as the largest size_t)
  });
#endif
}

}  // namespace mace_deploy
