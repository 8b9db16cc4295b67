#include "compute_mace_descriptors.h"

#include <algorithm>

#include "atom.h"
#include "error.h"
#include "memory.h"
#include "pair_mace.h"
#include "update.h"

using namespace LAMMPS_NS;

ComputeMACEDescriptors::ComputeMACEDescriptors(LAMMPS* lmp, int narg, char** arg) : Compute(lmp, narg, arg) {
  if (narg != 3) error->all(FLERR, "compute mace/descriptors takes no arguments: compute ID group mace/descriptors");
  // The width is needed now (dumps expand c_ID[*] when they are defined): the model must be loaded.
  auto* pair = PairMACE::find(lmp, "compute mace/descriptors");
  if (pair->model().metadata().descriptor_columns.empty()) {
    error->all(FLERR, "compute mace/descriptors: not supported by this artifact (made before mace-deploy returned "
                      "node features, or a committee whose members' features differ in shape); recompile it");
  }
  peratom_flag = 1;
  size_peratom_cols = static_cast<int>(pair->descriptor_width());
}

ComputeMACEDescriptors::~ComputeMACEDescriptors() { memory->destroy(array_atom); }

void ComputeMACEDescriptors::init() {
  auto* pair = PairMACE::find(lmp, "compute mace/descriptors");
  if (pair->descriptor_width() != size_peratom_cols) {
    error->all(FLERR, "compute mace/descriptors: pair_coeff loaded another model after the compute was defined");
  }
  pair->request_descriptors();
}

void ComputeMACEDescriptors::compute_peratom() {
  invoked_peratom = update->ntimestep;
  if (atom->nmax > nmax_) {
    memory->destroy(array_atom);
    nmax_ = atom->nmax;
    memory->create(array_atom, nmax_, size_peratom_cols, "mace/descriptors:array_atom");
  }
  const double* rows = PairMACE::find_evaluated(lmp, "compute mace/descriptors")->descriptors().data();
  for (int i = 0; i < atom->nlocal; ++i) {
    if (atom->mask[i] & groupbit) {
      std::copy_n(rows + static_cast<size_t>(i) * size_peratom_cols, size_peratom_cols, array_atom[i]);
    } else {
      std::fill_n(array_atom[i], size_peratom_cols, 0.0);
    }
  }
}

double ComputeMACEDescriptors::memory_usage() {
  return static_cast<double>(nmax_) * size_peratom_cols * sizeof(double);
}
