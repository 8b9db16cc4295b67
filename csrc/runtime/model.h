// The one runtime every host (LAMMPS, OpenMM, Python) uses to evaluate a mace-deploy artifact.
//
// A committee artifact (several models evaluated on one graph) gives the members' mean as its
// potential, and their spread and each member's results on request.
//
// Input is the edge-vector graph: species of all nodes (local first, then ghosts), edges
// (sender, receiver) with local receivers, edge vectors r_e = x_receiver - x_sender (+ image
// shift), and the number of local nodes. Forces come from dE/dr_e scattered to both atoms of each
// edge, the virial is W = -sum_e r_e (x) dE/dr_e; both are exact across periodic images and ranks.
#pragma once

#include <torch/script.h>

#include <map>
#include <string>

#include "ops/halo_exchange.h"
#include "runtime/metadata.h"

namespace mace_deploy {

// Closer than this (Angstrom), two atoms are the same atom placed twice (a user error the hosts
// report), not a physical configuration: even ZBL-range collisions stay above 0.1 Angstrom.
constexpr double kOverlapDistance = 0.01;

struct Graph {
  torch::Tensor species;       // [n_total] int64, species index in model order
  torch::Tensor edge_index;    // [2, E] int64: row 0 senders, row 1 receivers (< n_local)
  torch::Tensor edge_vectors;  // [E, 3], Angstrom
  int64_t n_local = 0;
  // Per-structure inputs by name (Metadata::graph_inputs, e.g. total_charge, total_spin); the
  // model's defaults for those not given. A name the model does not take is an error.
  std::map<std::string, double> graph_inputs;
};

struct ComputeOptions {
  bool forces = true;
  bool virial = true;
  bool atom_virial = false;
  // With a halo exchange: run the backward pass on a worker thread while this thread serves the
  // exchange calls (runtime/funnelled_exchange.h). Always so on a GPU, whose backward torch runs on
  // its own thread; on the CPU the backward runs on this thread unless this asks otherwise (tests).
  bool backward_on_worker = false;
  // A committee artifact: each member's energy, forces and virial besides the mean (Result::member_*).
  bool member_results = false;
  // A committee artifact: adds the bias of hyperactive learning, -hal_tau * sigma_E (sigma_E the
  // members' energy standard deviation), to the potential and its forces and virial.
  double hal_tau = 0.0;
  // The node features of every layer (Result::node_features).
  bool node_features = false;
};

struct Result {
  torch::Tensor energy;         // [] eV, float64, sum over local atoms
  torch::Tensor atom_energies;  // [n_local] eV, float64 for every artifact dtype
  torch::Tensor forces;         // [n_total, 3] eV/A (ghost rows hold forces to send to owners)
  torch::Tensor virial;         // [3, 3] eV
  torch::Tensor atom_virial;    // [n_total, 3, 3] eV: each edge's -r (x) dE/dr split half to each end
  // A committee's potential is the mean of its members' (energy, atom_energies, forces, virials);
  // with hal_tau, forces and virials are those of mean + bias_energy.
  torch::Tensor bias_energy;       // [] eV float64, of the whole system (every rank has the same)
  torch::Tensor energy_std;        // [] eV float64, the members' energy standard deviation (whole system)
  torch::Tensor member_energies;   // [M] eV float64, each member's energy of the whole system
  torch::Tensor member_forces;     // [M, n_total, 3] (member_results)
  torch::Tensor member_virials;    // [M, 3, 3] (member_results)
  // [M, n_local, D] (M = 1 for one model) node features of the local atoms, every layer's side by
  // side in e3nn's layout (Metadata::feature_irreps; mace-torch's invariant descriptors are the columns
  // Metadata::descriptor_columns).
  torch::Tensor node_features;
};

// Each atom's norm of the force standard deviation over a committee's members (the ASE calculator's
// forces_std_atom): member_forces [members, atoms, 3] -> [atoms] float64.
torch::Tensor force_spread(const torch::Tensor& member_forces);

class Model {
 public:
  // Loads and validates an artifact; throws std::runtime_error with an actionable message.
  static Model load(const std::string& path, const std::string& device = "cpu");

  // `exchange` fills ghost features between layers; needed when the graph has ghosts
  // (n_local < species.size(0)) and the model more than one interaction.
  Result compute(const Graph& graph, const ComputeOptions& options = {}, HaloExchange* exchange = nullptr);

  // The per-structure input values [inputs] float64 in the model's order, defaults for those not
  // given; throws std::runtime_error for a name the model does not take (hosts check theirs early).
  torch::Tensor graph_input_values(const std::map<std::string, double>& given) const;

  // The descriptors (Metadata::descriptor_columns) of result.node_features, a committee's members
  // side by side: [n_local, members x descriptors] float64 on the CPU.
  torch::Tensor descriptors(const Result& result) const;

  const Metadata& metadata() const { return metadata_; }
  torch::Device device() const { return device_; }

 private:
  Model(torch::jit::Module module, Metadata metadata, torch::Device device)
      : module_(std::move(module)), metadata_(std::move(metadata)), device_(device) {}
  void check_graph(const Graph& graph) const;
  void check_options(const ComputeOptions& options) const;

  torch::jit::Module module_;
  Metadata metadata_;
  torch::Device device_;
};

}  // namespace mace_deploy
