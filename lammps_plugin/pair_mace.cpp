#include "pair_mace.h"

#include <mpi.h>
#include <torch/cuda.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "update.h"
#include "utils.h"
#include "runtime/elements.h"

using namespace LAMMPS_NS;

namespace {

// 1 eV in kcal/mol, exact from the SI-2019 e and N_A: e * N_A / 4184 J.
constexpr double kEvInKcalPerMol = 1.602176634e-19 * 6.02214076e23 / 4184.0;
// Numbers per atom in one forward/reverse communication. Fixed in the constructor because LAMMPS
// sizes its buffers from comm_forward before the model is known (pair_style hybrid reads it at
// pair_style time); wider node features travel in several chunks.
constexpr int kCommChunk = 256;

}  // namespace

PairMACE::PairMACE(LAMMPS* lmp) : Pair(lmp) {
  single_enable = 0;
  restartinfo = 0;
  one_coeff = 1;
  manybody_flag = 1;
  no_virial_fdotr_compute = 1;  // the virial comes from the edges, exact for every box
  centroidstressflag = CENTROID_AVAIL;
  comm_forward = comm_reverse = kCommChunk;
}

PairMACE::~PairMACE() noexcept {
  if (allocated) {
    memory->destroy(setflag);
    memory->destroy(cutsq);
  }
}

void PairMACE::allocate() {
  allocated = 1;
  const int n = atom->ntypes + 1;
  memory->create(setflag, n, n, "pair:setflag");
  memory->create(cutsq, n, n, "pair:cutsq");
  for (int i = 0; i < n; ++i) std::fill(setflag[i], setflag[i] + n, 0);
}

// pair_style mace [warn_distance D] [device cpu|cuda] [ranks_per_gpu N] [charge Q] [spin S] [hal TAU]
void PairMACE::settings(int narg, char** arg) {
  graph_inputs_.clear();
  hal_tau_ = 0.0;
  for (int i = 0; i < narg; i += 2) {
    if (i + 1 >= narg) error->all(FLERR, "pair_style mace: keyword {} needs a value", arg[i]);
    if (std::strcmp(arg[i], "warn_distance") == 0) {
      warn_distance_ = utils::numeric(FLERR, arg[i + 1], false, lmp);
      if (warn_distance_ < 0.0) error->all(FLERR, "pair_style mace: warn_distance must be >= 0 (Angstrom)");
    } else if (std::strcmp(arg[i], "device") == 0) {
      if (std::strcmp(arg[i + 1], "cpu") != 0 && std::strcmp(arg[i + 1], "cuda") != 0) {
        error->all(FLERR, "pair_style mace: device must be cpu or cuda, got '{}'", arg[i + 1]);
      }
      use_gpu_ = std::strcmp(arg[i + 1], "cuda") == 0;
    } else if (std::strcmp(arg[i], "ranks_per_gpu") == 0) {
      ranks_per_gpu_ = utils::inumeric(FLERR, arg[i + 1], false, lmp);
      if (ranks_per_gpu_ < 1) error->all(FLERR, "pair_style mace: ranks_per_gpu must be >= 1");
    } else if (std::strcmp(arg[i], "charge") == 0) {  // total charge of the system, e
      graph_inputs_["total_charge"] = utils::numeric(FLERR, arg[i + 1], false, lmp);
    } else if (std::strcmp(arg[i], "spin") == 0) {  // spin multiplicity 2S + 1 of the system
      graph_inputs_["total_spin"] = utils::numeric(FLERR, arg[i + 1], false, lmp);
    } else if (std::strcmp(arg[i], "hal") == 0) {  // hyperactive learning: bias -TAU * sigma_E
      hal_tau_ = utils::numeric(FLERR, arg[i + 1], false, lmp);
      if (hal_tau_ < 0.0) error->all(FLERR, "pair_style mace: hal TAU must be >= 0");
    } else {
      error->all(FLERR, "pair_style mace: unknown keyword '{}' (known: warn_distance, device, ranks_per_gpu, "
                        "charge, spin, hal)", arg[i]);
    }
  }
}

// `device cuda`: the GPU of this rank's node-local rank, one rank per GPU unless ranks_per_gpu
// allows more (ranks sharing a GPU each hold a copy of the model and take turns on it).
std::string PairMACE::device_name() {
  if (!use_gpu_) return "cpu";
  MPI_Comm node;
  MPI_Comm_split_type(world, MPI_COMM_TYPE_SHARED, comm->me, MPI_INFO_NULL, &node);
  int local_rank = 0, local_ranks = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_ranks);
  MPI_Comm_free(&node);
  const int gpus = static_cast<int>(torch::cuda::device_count());
  if (gpus == 0) {
    error->one(FLERR, "pair_style mace device cuda: no CUDA GPU is visible to this rank (or mace-deploy was built "
                      "against a CPU-only torch); use device cpu");
  }
  if (local_ranks > gpus * ranks_per_gpu_) {
    error->one(FLERR, "pair_style mace device cuda: {} MPI ranks on this node but {} GPU(s) and ranks_per_gpu {}; "
                      "start at most {} ranks per node, or let ranks share a GPU with `ranks_per_gpu N`",
               local_ranks, gpus, ranks_per_gpu_, gpus * ranks_per_gpu_);
  }
  return "cuda:" + std::to_string(local_rank % gpus);
}

// pair_coeff * * model.mace.pt El1 El2 ... (one element symbol or NULL per atom type)
void PairMACE::coeff(int narg, char** arg) {
  if (!allocated) allocate();
  const int ntypes = atom->ntypes;
  if (narg < 3 || std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0) {
    error->all(FLERR, "pair_coeff for pair_style mace must be `pair_coeff * * MODEL.mace.pt` followed by one "
                      "element symbol (or NULL) per atom type");
  }
  if (narg != 3 + ntypes) {
    error->all(FLERR, "pair_coeff * * {}: expected {} element symbols (one per atom type, NULL for types of "
                      "another pair style), got {}", arg[2], ntypes, narg - 3);
  }

  // Every rank loads its own copy; a failure anywhere stops all ranks.
  model_path_ = arg[2];
  const std::string device = device_name();  // its own errors, not wrapped in a load failure
  std::string failure;
  try {
    model_ = std::make_unique<mace_deploy::Model>(mace_deploy::Model::load(model_path_, device));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  int failed = failure.empty() ? 0 : 1, all_failed = 0;
  MPI_Allreduce(&failed, &all_failed, 1, MPI_INT, MPI_MIN, world);
  if (all_failed) error->all(FLERR, "pair_style mace: {}", failure);
  if (failed) error->one(FLERR, "pair_style mace: {}", failure);

  try {
    model_->graph_input_values(graph_inputs_);
  } catch (const std::exception& e) {
    error->all(FLERR, "pair_style mace charge/spin: {}: {}", model_path_, e.what());
  }
  if (hal_tau_ > 0.0 && model_->metadata().members.empty()) {
    error->all(FLERR, "pair_style mace hal: {} is one model; the bias of hyperactive learning needs a committee "
                      "artifact (mace-deploy compile a.model b.model ... -o committee.mace.pt)", model_path_);
  }

  const auto& elements = model_->metadata().atomic_numbers;
  std::string model_elements;
  for (const auto z : elements) model_elements += " " + mace_deploy::element_symbol(z);
  type_species_.assign(ntypes + 1, -1);
  warned_masses_ = false;
  for (int type = 1; type <= ntypes; ++type) {
    const std::string symbol = arg[2 + type];
    if (symbol == "NULL") continue;
    const auto z = mace_deploy::atomic_number(symbol);
    if (z == 0) error->all(FLERR, "pair_coeff: '{}' (atom type {}) is not an element symbol", symbol, type);
    const auto found = std::find(elements.begin(), elements.end(), z);
    if (found == elements.end()) {
      error->all(FLERR, "pair_coeff: element {} (atom type {}) is not in the model {}, which has:{}", symbol, type,
                 model_path_, model_elements);
    }
    type_species_[type] = static_cast<int>(found - elements.begin());
  }
  if (force->pair == this) {  // standalone, not a sub-style of hybrid: every type needs an element
    for (int type = 1; type <= ntypes; ++type) {
      if (type_species_[type] < 0) {
        error->all(FLERR, "pair_coeff: atom type {} is mapped to NULL; NULL is only for types handled by another "
                          "style of pair_style hybrid/overlay", type);
      }
    }
  }
  for (int i = 1; i <= ntypes; ++i) {
    for (int j = 1; j <= ntypes; ++j) setflag[i][j] = (type_species_[i] >= 0 && type_species_[j] >= 0) ? 1 : 0;
  }
}

void PairMACE::init_style() {
  if (!model_) error->all(FLERR, "pair_style mace needs `pair_coeff * * MODEL.mace.pt ELEMENTS...`");
  if (force->newton_pair == 0) {
    error->all(FLERR, "pair_style mace requires `newton on` (the default): it computes forces on ghost atoms "
                      "that LAMMPS sends back to their owners");
  }
  const std::string units = update->unit_style;
  if (units == "metal") {
    energy_scale_ = 1.0;
  } else if (units == "real") {
    energy_scale_ = kEvInKcalPerMol;
  } else {
    error->all(FLERR, "pair_style mace: units {} are not supported; use units metal (the model's eV and "
                      "Angstrom) or real (converted exactly)", units);
  }
  neighbor->add_request(this, NeighConst::REQ_FULL);
  check_type_masses();
  warned_close_ = false;
  want_uncertainty_ = want_descriptors_ = false;  // asked again by the computes and fixes' init()
  initialised_pairs_.assign((atom->ntypes + 1) * (atom->ntypes + 1), 0);
}

// A type whose mass is the standard mass of another of the model's elements rather than of its own
// is the common mix-up of the element order in pair_coeff (`pair_coeff * * model O C H` for types
// H, C, O), which otherwise runs with the wrong physics. Isotopes (deuterium) stay closest to
// their own element and pass.
void PairMACE::check_type_masses() {
  if (warned_masses_ || atom->mass == nullptr || comm->me != 0) return;
  const auto& elements = model_->metadata().atomic_numbers;
  for (int type = 1; type <= atom->ntypes; ++type) {
    if (type_species_[type] < 0 || !atom->mass_setflag[type]) continue;
    const double mass = atom->mass[type];
    const int64_t own = elements[type_species_[type]];
    int64_t closest = own;
    for (const auto z : elements) {
      const double distance = std::abs(mass - mace_deploy::standard_mass(z));
      if (distance < std::abs(mass - mace_deploy::standard_mass(closest))) closest = z;
    }
    if (closest != own) {
      warned_masses_ = true;
      error->warning(FLERR, "pair_style mace: atom type {} has mass {:g}, the mass of {} ({:g}), but pair_coeff "
                            "maps it to {} ({:g}): are the elements of pair_coeff in the order of the atom types?",
                     type, mass, mace_deploy::element_symbol(closest), mace_deploy::standard_mass(closest),
                     mace_deploy::element_symbol(own), mace_deploy::standard_mass(own));
    }
  }
}

double PairMACE::init_one(int i, int j) {
  const int n = atom->ntypes + 1;
  initialised_pairs_[i * n + j] = initialised_pairs_[j * n + i] = 1;
  return model_->metadata().r_max;
}

// Called after init_one for all type pairs. Standalone, LAMMPS initialises every pair; as a
// sub-style of pair_style hybrid only the pairs assigned to it, and its neighbour list then skips
// the others. Between two types the model knows, that silently takes edges out of its graph
// (allowed for LAMMPS's manybody styles, but a message-passing model on an incomplete graph is
// rarely what was meant), so it is said at the start of each run.
void PairMACE::setup() {
  const int n = atom->ntypes + 1;
  std::string missing;
  for (int i = 1; i < n; ++i) {
    for (int j = i; j < n; ++j) {
      if (type_species_[i] >= 0 && type_species_[j] >= 0 && !initialised_pairs_[i * n + j]) {
        missing += " " + std::to_string(i) + "-" + std::to_string(j);
      }
    }
  }
  if (!missing.empty() && comm->me == 0) {
    error->warning(FLERR, "pair_style mace: atom type pairs{} are not assigned to mace (a later pair_coeff gave "
                          "them to another sub-style of pair_style hybrid, or none), so the model sees no edges "
                          "between them although it has elements for both types; use pair_style hybrid/overlay to "
                          "add another style on top of mace, or map types that mace should not see to NULL in its "
                          "pair_coeff", missing);
  }
}

void PairMACE::compute(int eflag, int vflag) {
  const double start = MPI_Wtime();
  ev_init(eflag, vflag);
  build_graph();

  const auto n_edges = static_cast<int64_t>(senders_.size());
  mace_deploy::Graph graph;
  graph.species = torch::from_blob(species_.data(), {static_cast<int64_t>(species_.size())}, torch::kInt64);
  graph.edge_index = torch::stack({torch::from_blob(senders_.data(), {n_edges}, torch::kInt64),
                                   torch::from_blob(receivers_.data(), {n_edges}, torch::kInt64)});
  graph.edge_vectors = torch::from_blob(edge_vectors_.data(), {n_edges, 3}, torch::kFloat64);
  graph.n_local = n_local_nodes_;
  graph.graph_inputs = graph_inputs_;
  mace_deploy::ComputeOptions options;
  options.virial = vflag_global != 0;
  options.atom_virial = vflag_atom != 0 || cvflag_atom != 0;
  options.member_results = want_uncertainty_;
  options.node_features = want_descriptors_;
  options.hal_tau = hal_tau_;

  forward_exchanges_ = reverse_exchanges_ = 0;
  const double model_start = MPI_Wtime();
  time_graph_ += model_start - start;
  mace_deploy::Result result;
  try {
    result = model_->compute(graph, options, this);
  } catch (const std::exception& e) {
    error->one(FLERR, "pair_style mace: evaluating {} failed: {}", model_path_, e.what());
  }
  // Every rank must have made the same exchanges, or the next collective call would mismatch.
  const auto expected = static_cast<int>(model_->metadata().halo_feature_sizes.size());
  if (forward_exchanges_ != expected || reverse_exchanges_ != expected) {
    error->one(FLERR, "pair_style mace: internal error: {} forward and {} reverse halo exchanges, expected {} each",
               forward_exchanges_, reverse_exchanges_, expected);
  }
  const double results_start = MPI_Wtime();
  store_results(result);
  if (want_uncertainty_) store_uncertainty(result);
  if (want_descriptors_) store_descriptors(result);
  evaluated_step_ = update->ntimestep;
  const double end = MPI_Wtime();
  time_results_ += end - results_start;
  time_total_ += end - start;
}

void PairMACE::finish() {
  if (comm->me == 0 && time_total_ > 0.0) {
    const double overhead = time_graph_ + time_exchange_ + time_results_;
    utils::logmesg(lmp, "pair_style mace (rank 0): {:.4g} s in the pair style, of which model {:.4g} s, graph "
                        "{:.4g} s, halo exchange {:.4g} s, results {:.4g} s: overhead {:.2f}%\n",
                   time_total_, time_total_ - overhead, time_graph_, time_exchange_, time_results_,
                   100.0 * overhead / time_total_);
  }
  time_total_ = time_graph_ = time_exchange_ = time_results_ = 0.0;  // per run, on every rank
}

// Local atoms of mapped types are nodes 0..n_local_nodes_-1 (receivers); every atom within r_max
// of one of them (local or ghost) is a sender node. Edge vectors point from sender to receiver.
void PairMACE::build_graph() {
  const int nall = atom->nlocal + atom->nghost;
  const int* type = atom->type;
  double** x = atom->x;
  species_.clear();
  senders_.clear();
  receivers_.clear();
  edge_vectors_.clear();
  node_atom_.clear();
  atom_node_.assign(nall, -1);

  const auto add_node = [&](int atom_index) {
    atom_node_[atom_index] = static_cast<int>(node_atom_.size());
    node_atom_.push_back(atom_index);
    species_.push_back(type_species_[type[atom_index]]);
  };
  for (int ii = 0; ii < list->inum; ++ii) {
    const int i = list->ilist[ii];
    if (type_species_[type[i]] >= 0) add_node(i);
  }
  n_local_nodes_ = static_cast<int64_t>(node_atom_.size());

  const double r_max = model_->metadata().r_max;
  double closest = INFINITY;
  int closest_i = -1, closest_j = -1;
  for (int64_t receiver = 0; receiver < n_local_nodes_; ++receiver) {
    const int i = static_cast<int>(node_atom_[receiver]);
    const int* neighbors = list->firstneigh[i];
    for (int jj = 0; jj < list->numneigh[i]; ++jj) {
      const int j = neighbors[jj] & NEIGHMASK;
      if (type_species_[type[j]] < 0) continue;
      const double d[3] = {x[i][0] - x[j][0], x[i][1] - x[j][1], x[i][2] - x[j][2]};
      const double r = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
      if (r >= r_max) continue;
      if (r < closest) {
        closest = r;
        closest_i = i;
        closest_j = j;
      }
      if (atom_node_[j] < 0) add_node(j);
      senders_.push_back(atom_node_[j]);
      receivers_.push_back(receiver);
      edge_vectors_.insert(edge_vectors_.end(), d, d + 3);
    }
  }
  if (closest < mace_deploy::kOverlapDistance) {
    error->one(FLERR, "pair_style mace: atoms {} and {} are {:.3g} Angstrom apart (overlapping atoms); check the "
                      "structure", atom->tag[closest_i], atom->tag[closest_j], closest);
  }
  if (closest < warn_distance_ && !warned_close_) {
    warned_close_ = true;
    error->warning(FLERR, "pair_style mace: atoms {} and {} are only {:.3f} Angstrom apart (below warn_distance "
                          "{}); the model is unlikely to be trained there. Warned once per run.",
                   atom->tag[closest_i], atom->tag[closest_j], closest, warn_distance_);
  }
}

void PairMACE::store_results(const mace_deploy::Result& result) {
  if (!result.atom_energies.isfinite().all().item<bool>() || !result.forces.isfinite().all().item<bool>()) {
    error->one(FLERR, "pair_style mace: the model gave a non-finite energy or force on this rank (atoms far outside "
                      "the training data, or positions that are NaN); check the structure and the timestep");
  }
  const double s = energy_scale_;
  const auto energies_t = result.atom_energies.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto energies = energies_t.accessor<double, 1>();
  for (int64_t node = 0; node < n_local_nodes_; ++node) {
    if (eflag_global) eng_vdwl += s * energies[node];
    if (eflag_atom) eatom[node_atom_[node]] += s * energies[node];
  }
  // The bias is one energy of the whole system (every rank has it): counted once, not per atom.
  if (eflag_global && result.bias_energy.defined() && comm->me == 0) eng_vdwl += s * result.bias_energy.item<double>();

  const auto n_nodes = static_cast<int64_t>(node_atom_.size());
  const auto forces_t = result.forces.to(torch::kCPU, torch::kFloat64).contiguous();
  const auto forces = forces_t.accessor<double, 2>();
  double** f = atom->f;
  for (int64_t node = 0; node < n_nodes; ++node) {
    for (int k = 0; k < 3; ++k) f[node_atom_[node]][k] += s * forces[node][k];
  }

  // LAMMPS orders symmetric tensors xx yy zz xy xz yz; centroid ones append yx zx zy.
  constexpr int kRow[9] = {0, 1, 2, 0, 0, 1, 1, 2, 2}, kCol[9] = {0, 1, 2, 1, 2, 2, 0, 0, 1};
  if (vflag_global) {
    const auto w_t = result.virial.to(torch::kCPU, torch::kFloat64);
    const auto w = w_t.accessor<double, 2>();
    for (int c = 0; c < 6; ++c) virial[c] += s * w[kRow[c]][kCol[c]];
  }
  if (vflag_atom || cvflag_atom) {
    const auto w_t = result.atom_virial.to(torch::kCPU, torch::kFloat64).contiguous();
    const auto w = w_t.accessor<double, 3>();
    for (int64_t node = 0; node < n_nodes; ++node) {
      const auto a = node_atom_[node];
      if (vflag_atom) {
        for (int c = 0; c < 6; ++c) vatom[a][c] += s * w[node][kRow[c]][kCol[c]];
      }
      if (cvflag_atom) {
        for (int c = 0; c < 9; ++c) cvatom[a][c] += s * w[node][kRow[c]][kCol[c]];
      }
    }
  }
}

// ---- committee uncertainty and descriptors ---------------------------------------------------

PairMACE* PairMACE::find(LAMMPS* lmp, const std::string& who) {
  auto* pair = dynamic_cast<PairMACE*>(lmp->force->pair_match("^mace", 0));
  if (pair == nullptr || !pair->model_) {
    lmp->error->all(FLERR, "{} needs pair_style mace with its pair_coeff defined first", who);
  }
  return pair;
}

PairMACE* PairMACE::find_evaluated(LAMMPS* lmp, const std::string& who) {
  auto* pair = find(lmp, who);
  if (pair->evaluated_step_ != lmp->update->ntimestep) {
    lmp->error->all(FLERR, "{}: pair_style mace has not been evaluated on step {} (read between runs?)", who,
                    lmp->update->ntimestep);
  }
  return pair;
}

// Each member's forces on the local atoms (ghost contributions sent to their owners, as LAMMPS
// does for the forces of the potential), then each atom's spread: sqrt(sum over x, y, z of the
// variance over the members), as mace-deploy's ASE calculator's forces_std_atom.
void PairMACE::store_uncertainty(const mace_deploy::Result& result) {
  energy_std_ = energy_scale_ * result.energy_std.item<double>();
  const int64_t members = result.member_forces.size(0);
  auto buffer = reset_halo_buffer(static_cast<int>(3 * members));
  const auto n_nodes = static_cast<int64_t>(node_atom_.size());
  const auto nodes = torch::from_blob(node_atom_.data(), {n_nodes}, torch::kInt64);
  const auto forces =  // [nodes, members x 3]
      result.member_forces.to(torch::kCPU, torch::kFloat64).permute({1, 0, 2}).reshape({n_nodes, 3 * members});
  buffer.index_copy_(0, nodes, forces);
  communicate(/*forward=*/false);
  const int nlocal = atom->nlocal;
  const auto local = buffer.narrow(0, 0, nlocal).view({nlocal, members, 3}).permute({1, 0, 2});
  const auto spread = (energy_scale_ * mace_deploy::force_spread(local)).contiguous();
  force_std_.assign(spread.data_ptr<double>(), spread.data_ptr<double>() + nlocal);
}

void PairMACE::request_uncertainty(const std::string& who) {
  if (model_->metadata().members.empty()) {
    error->all(FLERR, "{} needs a committee artifact in pair_style mace (mace-deploy compile a.model b.model ... "
                      "-o committee.mace.pt); {} is one model", who, model_path_);
  }
  want_uncertainty_ = true;
}

double PairMACE::largest_force_std(int groupbit) const {
  double largest = 0.0, largest_all = 0.0;
  for (int i = 0; i < atom->nlocal; ++i) {
    if (atom->mask[i] & groupbit) largest = std::max(largest, force_std_[i]);
  }
  MPI_Allreduce(&largest, &largest_all, 1, MPI_DOUBLE, MPI_MAX, world);
  return largest_all;
}

int64_t PairMACE::descriptor_width() const {
  return model_->metadata().committee_size() * static_cast<int64_t>(model_->metadata().descriptor_columns.size());
}

// The local atoms' descriptors, members side by side, by LAMMPS atom index.
void PairMACE::store_descriptors(const mace_deploy::Result& result) {
  const auto selected = model_->descriptors(result);  // [n_local nodes, width]
  const int64_t width = descriptor_width();
  descriptors_.assign(static_cast<size_t>(atom->nlocal) * width, 0.0);
  const double* rows = selected.data_ptr<double>();
  for (int64_t node = 0; node < n_local_nodes_; ++node) {
    std::copy_n(rows + node * width, width, descriptors_.data() + node_atom_[node] * width);
  }
}

// ---- halo exchange ---------------------------------------------------------------------------

// A zeroed buffer of `width` numbers per LAMMPS atom, as a [nlocal + nghost, width] tensor view.
at::Tensor PairMACE::reset_halo_buffer(int width) {
  const int nall = atom->nlocal + atom->nghost;
  halo_width_ = width;
  halo_buffer_.assign(static_cast<size_t>(nall) * width, 0.0);
  return torch::from_blob(halo_buffer_.data(), {nall, width}, torch::kFloat64);
}

// Columns [chunk_begin_, chunk_begin_ + chunk_width_) of the buffer travel in each call.
void PairMACE::communicate(bool forward) {
  for (chunk_begin_ = 0; chunk_begin_ < halo_width_; chunk_begin_ += kCommChunk) {
    chunk_width_ = std::min(kCommChunk, halo_width_ - chunk_begin_);
    if (forward) {
      comm->forward_comm(this, chunk_width_);
    } else {
      comm->reverse_comm(this, chunk_width_);
    }
  }
}

void PairMACE::forward(at::Tensor features, int64_t n_local, int64_t /*layer*/) {
  const double start = MPI_Wtime();
  ++forward_exchanges_;
  auto buffer = reset_halo_buffer(static_cast<int>(features.size(1)));
  const auto n_nodes = static_cast<int64_t>(node_atom_.size());
  const auto nodes = torch::from_blob(node_atom_.data(), {n_nodes}, torch::kInt64);
  // Staged through the host (GPU features come over once per exchange).
  buffer.index_copy_(0, nodes.narrow(0, 0, n_local), features.narrow(0, 0, n_local).to(torch::kCPU, torch::kFloat64));
  communicate(/*forward=*/true);
  features.narrow(0, n_local, n_nodes - n_local).copy_(buffer.index_select(0, nodes.narrow(0, n_local, n_nodes - n_local)));
  time_exchange_ += MPI_Wtime() - start;
}

void PairMACE::reverse(at::Tensor gradients, int64_t n_local, int64_t /*layer*/) {
  const double start = MPI_Wtime();
  ++reverse_exchanges_;
  auto buffer = reset_halo_buffer(static_cast<int>(gradients.size(1)));
  const auto n_nodes = static_cast<int64_t>(node_atom_.size());
  const auto nodes = torch::from_blob(node_atom_.data(), {n_nodes}, torch::kInt64);
  buffer.index_copy_(0, nodes.narrow(0, n_local, n_nodes - n_local),
                     gradients.narrow(0, n_local, n_nodes - n_local).to(torch::kCPU, torch::kFloat64));
  communicate(/*forward=*/false);
  gradients.narrow(0, 0, n_local)
      .add_(buffer.index_select(0, nodes.narrow(0, 0, n_local)).to(gradients.device(), gradients.dtype()));
  time_exchange_ += MPI_Wtime() - start;
}

void PairMACE::sum_over_ranks(at::Tensor values) {
  MPI_Allreduce(MPI_IN_PLACE, values.data_ptr<double>(), static_cast<int>(values.numel()), MPI_DOUBLE, MPI_SUM, world);
}

double* PairMACE::halo_chunk(int atom_index) {
  return halo_buffer_.data() + static_cast<size_t>(atom_index) * halo_width_ + chunk_begin_;
}

int PairMACE::pack_forward_comm(int n, int* atoms, double* buf, int /*pbc_flag*/, int* /*pbc*/) {
  for (int i = 0; i < n; ++i) std::copy_n(halo_chunk(atoms[i]), chunk_width_, buf + i * chunk_width_);
  return n * chunk_width_;
}

void PairMACE::unpack_forward_comm(int n, int first, double* buf) {
  for (int i = 0; i < n; ++i) std::copy_n(buf + i * chunk_width_, chunk_width_, halo_chunk(first + i));
}

int PairMACE::pack_reverse_comm(int n, int first, double* buf) {
  for (int i = 0; i < n; ++i) std::copy_n(halo_chunk(first + i), chunk_width_, buf + i * chunk_width_);
  return n * chunk_width_;
}

void PairMACE::unpack_reverse_comm(int n, int* atoms, double* buf) {
  for (int i = 0; i < n; ++i) {
    double* row = halo_chunk(atoms[i]);
    for (int k = 0; k < chunk_width_; ++k) row[k] += buf[i * chunk_width_ + k];
  }
}
