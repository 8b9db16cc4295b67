// compute ID group mace/descriptors: per-atom array of the invariant node features of every layer
// of pair_style mace's model at the last evaluation, mace-torch's get_descriptors (a committee's
// members side by side); zero rows outside the group and for atoms of NULL types.
#pragma once

#include "compute.h"

namespace LAMMPS_NS {

class ComputeMACEDescriptors : public Compute {
 public:
  ComputeMACEDescriptors(class LAMMPS*, int narg, char** arg);
  ~ComputeMACEDescriptors() override;
  void init() override;
  void compute_peratom() override;
  double memory_usage() override;

 private:
  int nmax_ = 0;
};

}  // namespace LAMMPS_NS
