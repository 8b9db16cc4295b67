// fix ID group mace/select THRESH FILE [every N]: active learning with a committee artifact in
// pair_style mace. Every N steps (default 1), if some atom of the group has a force standard
// deviation over the members (compute mace/uncertainty's per-atom value) above THRESH (force
// units), the configuration is appended to FILE as one extended-XYZ frame: cell, pbc, the element
// and position of every atom of a mapped type (in atom-ID order), and the step and uncertainties.
// Rank 0 writes; each selected step gives one frame whatever the number of ranks.
#pragma once

#include <cstdio>
#include <string>

#include "fix.h"

namespace LAMMPS_NS {

class FixMACESelect : public Fix {
 public:
  FixMACESelect(class LAMMPS*, int narg, char** arg);
  ~FixMACESelect() override;
  int setmask() override;
  void init() override;
  void end_of_step() override;
  double compute_scalar() override;  // frames written so far

 private:
  void write_frame(class PairMACE* pair, double largest_std);

  double threshold_ = 0.0;
  std::string path_;
  FILE* file_ = nullptr;  // rank 0
  int frames_ = 0;
};

}  // namespace LAMMPS_NS
