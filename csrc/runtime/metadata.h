// Metadata every mace-deploy artifact carries (TorchScript attributes of the top-level module).
#pragma once

#include <torch/script.h>

#include <string>
#include <vector>

namespace mace_deploy {

// Artifact format this runtime reads; bumped when the model's inputs, outputs or metadata change.
// 2: the model calls halo_exchange before every layer after the first, also without ghosts.
// 3: weights_crc32 (runtime/checksum.h).
// 4: per-structure inputs: graph_inputs, graph_input_defaults, graph_input_bounds and forward's fifth
//    argument.
// 5: committees (members; forward returns a list of each member's [n_local] energies),
//    energies_and_features with feature_irreps and descriptor_columns.
constexpr int64_t kFormatVersion = 5;
// Artifacts from this version on are read too (what they lack is empty: no per-structure inputs).
constexpr int64_t kOldestFormatVersion = 3;

struct Metadata {
  int64_t format_version = 0;
  int64_t ops_version = 0;
  double r_max = 0.0;
  std::vector<int64_t> atomic_numbers;      // element of each species index, model order
  int64_t num_interactions = 0;
  std::vector<int64_t> halo_feature_sizes;  // numbers per node each halo exchange sends, in order
  std::string dtype;                        // "float64" or "float32"
  std::string head;
  std::string mace_deploy_version;
  // Per-structure inputs (mace-torch's data keys, e.g. total_charge, total_spin) in the order the
  // model takes them, and their values where a host gives none.
  std::vector<std::string> graph_inputs;
  std::vector<double> graph_input_defaults;
  // Per input, the lowest and highest value the model embeds (a categorical input: its table's
  // range of integers, a value counting as its integer part; a continuous one: -inf, inf).
  std::vector<double> graph_input_bounds;  // [2 * inputs]
  // A committee's member models (their source files); empty for one model.
  std::vector<std::string> members;
  // e3nn irreps of each layer's node features, and the columns of mace-torch's invariant
  // descriptors (python/mace_deploy/descriptors.py) in all layers' features side by side; empty:
  // the artifact cannot return node features (made before format 5, or a committee whose members'
  // features differ).
  std::vector<std::string> feature_irreps;
  std::vector<int64_t> descriptor_columns;

  // Reads and validates the attributes and the weights' checksum; throws std::runtime_error
  // naming `path` on any problem.
  static Metadata read(const torch::jit::Module& module, const std::string& path);
  torch::ScalarType scalar_type() const;
  int64_t committee_size() const { return members.empty() ? 1 : static_cast<int64_t>(members.size()); }
};

}  // namespace mace_deploy
