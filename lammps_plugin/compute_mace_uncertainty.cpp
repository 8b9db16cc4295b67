#include "compute_mace_uncertainty.h"

#include "atom.h"
#include "error.h"
#include "memory.h"
#include "pair_mace.h"
#include "update.h"

using namespace LAMMPS_NS;

ComputeMACEUncertainty::ComputeMACEUncertainty(LAMMPS* lmp, int narg, char** arg) : Compute(lmp, narg, arg) {
  if (narg != 3) error->all(FLERR, "compute mace/uncertainty takes no arguments: compute ID group mace/uncertainty");
  peratom_flag = 1;
  size_peratom_cols = 0;
  vector_flag = 1;
  size_vector = 2;
  extvector = 0;
  vector = new double[2]();
}

ComputeMACEUncertainty::~ComputeMACEUncertainty() {
  delete[] vector;
  memory->destroy(vector_atom);
}

void ComputeMACEUncertainty::init() {
  PairMACE::find(lmp, "compute mace/uncertainty")->request_uncertainty("compute mace/uncertainty");
}

void ComputeMACEUncertainty::compute_peratom() {
  invoked_peratom = update->ntimestep;
  if (atom->nmax > nmax_) {
    memory->destroy(vector_atom);
    nmax_ = atom->nmax;
    memory->create(vector_atom, nmax_, "mace/uncertainty:vector_atom");
  }
  const auto& force_std = PairMACE::find_evaluated(lmp, "compute mace/uncertainty")->force_std();
  for (int i = 0; i < atom->nlocal; ++i) vector_atom[i] = (atom->mask[i] & groupbit) ? force_std[i] : 0.0;
}

void ComputeMACEUncertainty::compute_vector() {
  invoked_vector = update->ntimestep;
  auto* pair = PairMACE::find_evaluated(lmp, "compute mace/uncertainty");
  vector[0] = pair->energy_std();
  vector[1] = pair->largest_force_std(groupbit);
}

double ComputeMACEUncertainty::memory_usage() { return static_cast<double>(nmax_) * sizeof(double); }
