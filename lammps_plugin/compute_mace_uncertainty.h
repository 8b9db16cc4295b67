// compute ID group mace/uncertainty: how much the members of a committee artifact (pair_style
// mace) disagree, at the last evaluation. Per atom: the norm of the force standard deviation over
// the members (force units; 0 outside the group and for atoms of NULL types). Global vector:
// [1] the standard deviation of the whole system's energy (energy units), [2] the largest per-atom
// value in the group.
#pragma once

#include "compute.h"

namespace LAMMPS_NS {

class ComputeMACEUncertainty : public Compute {
 public:
  ComputeMACEUncertainty(class LAMMPS*, int narg, char** arg);
  ~ComputeMACEUncertainty() override;
  void init() override;
  void compute_vector() override;
  void compute_peratom() override;
  double memory_usage() override;

 private:
  int nmax_ = 0;
};

}  // namespace LAMMPS_NS
