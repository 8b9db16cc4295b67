#include "fix_mace_select.h"

#include <mpi.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "atom.h"
#include "comm.h"
#include "domain.h"
#include "error.h"
#include "pair_mace.h"
#include "update.h"
#include "utils.h"
#include "runtime/elements.h"

using namespace LAMMPS_NS;

FixMACESelect::FixMACESelect(LAMMPS* lmp, int narg, char** arg) : Fix(lmp, narg, arg) {
  if (narg != 5 && narg != 7) {
    error->all(FLERR, "fix mace/select: expected `fix ID group mace/select THRESH FILE [every N]`");
  }
  threshold_ = utils::numeric(FLERR, arg[3], false, lmp);
  if (threshold_ < 0.0) error->all(FLERR, "fix mace/select: THRESH must be >= 0 (force units)");
  path_ = arg[4];
  nevery = 1;
  if (narg == 7) {
    if (std::strcmp(arg[5], "every") != 0) error->all(FLERR, "fix mace/select: unknown keyword '{}'", arg[5]);
    nevery = utils::inumeric(FLERR, arg[6], false, lmp);
    if (nevery < 1) error->all(FLERR, "fix mace/select: every N needs N >= 1");
  }
  scalar_flag = 1;
  extscalar = 0;
  if (comm->me == 0) {
    file_ = std::fopen(path_.c_str(), "a");
    if (file_ == nullptr) error->one(FLERR, "fix mace/select: cannot open {} for appending", path_);
  }
}

FixMACESelect::~FixMACESelect() {
  if (file_ != nullptr) std::fclose(file_);
}

int FixMACESelect::setmask() { return FixConst::END_OF_STEP; }

void FixMACESelect::init() {
  PairMACE::find(lmp, "fix mace/select")->request_uncertainty("fix mace/select");
}

void FixMACESelect::end_of_step() {
  auto* pair = PairMACE::find_evaluated(lmp, "fix mace/select");
  const double largest = pair->largest_force_std(groupbit);
  if (largest > threshold_) write_frame(pair, largest);
}

// Gathers (id, species, position) of every atom of a mapped type on rank 0, which writes them in
// id order. Positions are relative to the box's lower corner, the cell's origin in the file.
void FixMACESelect::write_frame(PairMACE* pair, double largest_std) {
  constexpr int kValues = 5;  // id, species, x, y, z
  std::vector<double> mine;
  for (int i = 0; i < atom->nlocal; ++i) {
    const int species = pair->type_species()[atom->type[i]];
    if (species < 0) continue;
    mine.insert(mine.end(), {static_cast<double>(atom->tag[i]), static_cast<double>(species),
                             atom->x[i][0] - domain->boxlo[0], atom->x[i][1] - domain->boxlo[1],
                             atom->x[i][2] - domain->boxlo[2]});
  }
  const int count = static_cast<int>(mine.size());
  std::vector<int> counts(comm->nprocs), offsets(comm->nprocs, 0);
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, world);
  std::vector<double> all;
  if (comm->me == 0) {
    for (int r = 1; r < comm->nprocs; ++r) offsets[r] = offsets[r - 1] + counts[r - 1];
    all.resize(offsets.back() + counts.back());
  }
  MPI_Gatherv(mine.data(), count, MPI_DOUBLE, all.data(), counts.data(), offsets.data(), MPI_DOUBLE, 0, world);
  ++frames_;
  if (comm->me != 0) return;

  const auto n = static_cast<int64_t>(all.size() / kValues);
  std::vector<int64_t> order(n);
  for (int64_t k = 0; k < n; ++k) order[k] = k;
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return all[a * kValues] < all[b * kValues]; });
  const auto& elements = pair->model().metadata().atomic_numbers;
  const double cell[9] = {domain->xprd, 0.0, 0.0, domain->xy, domain->yprd, 0.0, domain->xz, domain->yz, domain->zprd};
  std::string text = std::to_string(n) + "\nLattice=\"";
  for (int k = 0; k < 9; ++k) text += fmt::format("{}{:.17g}", k ? " " : "", cell[k]);
  text += fmt::format("\" Properties=species:S:1:pos:R:3 pbc=\"{} {} {}\" step={} max_force_std={:.17g} "
                      "energy_std={:.17g}\n",
                      domain->periodicity[0] ? "T" : "F", domain->periodicity[1] ? "T" : "F",
                      domain->periodicity[2] ? "T" : "F", update->ntimestep, largest_std, pair->energy_std());
  for (const int64_t k : order) {
    const double* row = all.data() + k * kValues;
    text += fmt::format("{} {:.17g} {:.17g} {:.17g}\n",
                        mace_deploy::element_symbol(elements[static_cast<size_t>(row[1])]), row[2], row[3], row[4]);
  }
  std::fputs(text.c_str(), file_);
  std::fflush(file_);
}

double FixMACESelect::compute_scalar() { return frames_; }
