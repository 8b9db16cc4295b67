// pair_style mace: evaluates a mace-deploy artifact through the runtime (csrc/runtime).
//
// Each rank builds the edge-vector graph of its local atoms (receivers) and their neighbours
// within r_max (senders, local or ghost) from a full neighbour list, calls Model::compute, and
// adds forces to local and ghost atoms (LAMMPS's reverse communication sums the ghost ones onto
// their owners, hence newton pair on). Between interaction layers the pair style is the model's
// halo exchange: node features travel with comm->forward_comm, their gradients come back with
// comm->reverse_comm, on every rank for every layer.
//
// With a committee artifact it evaluates the members' mean potential (plus hyperactive learning's
// bias with `hal TAU`) and keeps, for compute mace/uncertainty and fix mace/select, each local
// atom's force spread over the members; for compute mace/descriptors, the local atoms' descriptors.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pair.h"
#include "runtime/model.h"

namespace LAMMPS_NS {

class PairMACE : public Pair, public mace_deploy::HaloExchange {
 public:
  explicit PairMACE(class LAMMPS*);
  ~PairMACE() noexcept override;  // noexcept as HaloExchange's (LAMMPS's Pair allows throwing)

  void compute(int eflag, int vflag) override;
  void finish() override;
  void settings(int narg, char** arg) override;
  void coeff(int narg, char** arg) override;
  void init_style() override;
  double init_one(int i, int j) override;
  void setup() override;

  int pack_forward_comm(int n, int* list, double* buf, int pbc_flag, int* pbc) override;
  void unpack_forward_comm(int n, int first, double* buf) override;
  int pack_reverse_comm(int n, int first, double* buf) override;
  void unpack_reverse_comm(int n, int* list, double* buf) override;

  // mace_deploy::HaloExchange, called by the model between interaction layers.
  void forward(at::Tensor features, int64_t n_local, int64_t layer) override;
  void reverse(at::Tensor gradients, int64_t n_local, int64_t layer) override;
  void sum_over_ranks(at::Tensor values) override;

  // The pair_style mace of this LAMMPS (alone or a sub-style of hybrid); an error naming `who`
  // (e.g. "compute mace/uncertainty") if there is none or its pair_coeff is missing.
  static PairMACE* find(class LAMMPS* lmp, const std::string& who);
  // find(), and an error unless the pair style was evaluated on this step (what it keeps for the
  // computes and fixes is of its last evaluation).
  static PairMACE* find_evaluated(class LAMMPS* lmp, const std::string& who);

  // For the committee's computes and fixes, which ask in their init() (after this style's
  // init_style) for what they read; the values are those of the last evaluation (`step`).
  const mace_deploy::Model& model() const { return *model_; }
  const std::vector<int>& type_species() const { return type_species_; }
  // `who` (e.g. "fix mace/select") needs a committee artifact: an error names it otherwise.
  void request_uncertainty(const std::string& who);
  void request_descriptors() { want_descriptors_ = true; }
  int64_t descriptor_width() const;  // members x descriptors per member
  double energy_std() const { return energy_std_; }  // the whole system's, LAMMPS energy units
  // Per local atom (LAMMPS index), zero for atoms of NULL types: the norm of the force standard
  // deviation over the members (force units); the descriptors, descriptor_width() per atom.
  const std::vector<double>& force_std() const { return force_std_; }
  // The largest force_std() of the atoms in the group of `groupbit` on all ranks (every rank calls).
  double largest_force_std(int groupbit) const;
  const std::vector<double>& descriptors() const { return descriptors_; }

 private:
  void allocate();
  void check_type_masses();
  void build_graph();
  void store_results(const mace_deploy::Result& result);
  void store_uncertainty(const mace_deploy::Result& result);
  void store_descriptors(const mace_deploy::Result& result);
  at::Tensor reset_halo_buffer(int width);
  void communicate(bool forward);
  double* halo_chunk(int atom_index);
  std::string device_name();

  std::unique_ptr<mace_deploy::Model> model_;
  std::string model_path_;
  std::vector<int> type_species_;  // [ntypes + 1]: model species index of each type, -1 for NULL
  double energy_scale_ = 1.0;      // model eV -> LAMMPS energy unit
  double warn_distance_ = 0.5;     // Angstrom; closer pairs get a warning, once per run
  bool use_gpu_ = false;           // `device cuda`: the model runs on this rank's GPU
  int ranks_per_gpu_ = 1;          // MPI ranks of one node allowed on each of its GPUs
  std::map<std::string, double> graph_inputs_;  // `charge` / `spin` keywords: per-structure model inputs
  double hal_tau_ = 0.0;           // `hal TAU`: bias -TAU * sigma_E of a committee (eV)
  bool warned_close_ = false;
  bool warned_masses_ = false;  // check_type_masses, once per pair_coeff
  // Type pairs LAMMPS initialised for this style since init_style ((ntypes + 1)^2, row-major):
  // under pair_style hybrid, pairs that a later pair_coeff gave to another sub-style are missing.
  std::vector<char> initialised_pairs_;

  // The graph of this step: local atoms of mapped types first, then the ghosts they see.
  std::vector<int64_t> species_, senders_, receivers_;
  std::vector<double> edge_vectors_;
  std::vector<int64_t> node_atom_;  // graph node -> LAMMPS atom index
  std::vector<int> atom_node_;  // LAMMPS atom index -> graph node, -1 if not in the graph
  int64_t n_local_nodes_ = 0;

  // Halo exchange: one row of `halo_width_` numbers per LAMMPS atom (local and ghost), sent in
  // chunks of columns.
  std::vector<double> halo_buffer_;
  int halo_width_ = 0, chunk_begin_ = 0, chunk_width_ = 0;
  int forward_exchanges_ = 0, reverse_exchanges_ = 0;

  // What the committee's computes and fixes read (see force_std()).
  bool want_uncertainty_ = false, want_descriptors_ = false;
  bigint evaluated_step_ = -1;
  double energy_std_ = 0.0;
  std::vector<double> force_std_, descriptors_;

  // Wall time of this rank in the pair style, reported by finish(): everything outside the
  // model's own arithmetic (graph building, halo exchange, copying results) is overhead.
  double time_total_ = 0.0, time_graph_ = 0.0, time_exchange_ = 0.0, time_results_ = 0.0;
};

}  // namespace LAMMPS_NS
