// maceplugin.so: the file LAMMPS loads (`plugin load`, LAMMPS_PLUGIN_PATH, the lammps.plugins entry
// point). It loads the real plugin, libmace_deploy_lammps.so from the same directory, with
// RTLD_DEEPBIND, so that libtorch binds to its own BLAS: liblammps of the pip wheel exports a
// reference BLAS (dgemm_, dgemv_, ...), which an `lmp` process has in its global scope before
// libtorch and which would otherwise replace libtorch's optimised float64 matrix products (float64
// models ran 2x slower). Undefined symbols of the plugin (LAMMPS, MPI) still come from the process.
#include <dlfcn.h>

#include <string>

#include "error.h"
#include "lammps.h"

namespace {

constexpr const char* kImplementation = "libmace_deploy_lammps.so";
using InitFunction = void (*)(void*, void*, void*);

}  // namespace

extern "C" void lammpsplugin_init(void* lmp, void* handle, void* regfunc) {
  auto* lammps = static_cast<LAMMPS_NS::LAMMPS*>(lmp);
  Dl_info self{};
  dladdr(reinterpret_cast<void*>(&lammpsplugin_init), &self);
  std::string path = self.dli_fname ? self.dli_fname : "";
  path = path.substr(0, path.rfind('/') + 1) + kImplementation;

  void* implementation = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  const char* failure = implementation ? nullptr : dlerror();
  auto init = implementation ? reinterpret_cast<InitFunction>(dlsym(implementation, "mace_deploy_lammpsplugin_init"))
                             : nullptr;
  if (init == nullptr) {
    lammps->error->warning(FLERR, "pair_style mace is unavailable: cannot load {}: {}", path,
                           failure ? failure : "no mace_deploy_lammpsplugin_init in it");
    return;
  }
  init(lmp, handle, regfunc);
}
