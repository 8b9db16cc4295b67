#include "runtime/model.h"

#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include "runtime/funnelled_exchange.h"
#include "runtime/heap.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace mace_deploy {
namespace {

// torch's reader errors go on with generic advice over several sentences and lines; the reason is
// the first sentence.
std::string first_sentence(const std::string& text) {
  return text.substr(0, std::min(text.find(". "), text.find('\n')));
}

// The first non-blank line of a multi-line error (TorchScript's start with blank lines).
std::string first_line(const std::string& text) {
  const size_t start = std::min(text.find_first_not_of(" \n"), text.size());
  return text.substr(start, text.find('\n', start) - start);
}

}  // namespace

Model Model::load(const std::string& path, const std::string& device_name) {
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("model file '" + path + "' does not exist");
  }
  torch::Device device(device_name);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw std::runtime_error("device '" + device_name + "': this torch (" + TORCH_VERSION +
                             ") has no CUDA support or sees no GPU; use device 'cpu'");
  }
  torch::jit::Module module;
  try {
    module = torch::jit::load(path, device);
  } catch (const std::exception& e) {
    // c10::Error from the reader; TorchScript's ErrorReport (a std::exception) when a call in the
    // file does not match this build's op schemas
    const auto* reader_error = dynamic_cast<const c10::Error*>(&e);
    const std::string what = reader_error != nullptr ? reader_error->what_without_backtrace() : e.what();
    if (what.find("mace_deploy") != std::string::npos) {
      throw std::runtime_error("'" + path + "' uses mace_deploy ops this build does not have (made by a different " +
                               "mace-deploy version); recompile it with `mace-deploy compile`: " + first_line(what));
    }
    throw std::runtime_error("cannot read '" + path + "' as a mace-deploy artifact (corrupt, truncated or not a " +
                             "TorchScript file; a mace-torch .model must first go through `mace-deploy compile`): " +
                             first_sentence(what));
  }
  module.eval();
  keep_freed_memory_for_reuse();
  auto metadata = Metadata::read(module, path);
  return Model(std::move(module), std::move(metadata), device);
}

void Model::check_graph(const Graph& g) const {
  const int64_t n_total = g.species.size(0);
  TORCH_CHECK(g.n_local >= 0 && g.n_local <= n_total, "n_local (", g.n_local, ") must be within [0, ", n_total, "]");
  TORCH_CHECK(g.edge_index.dim() == 2 && g.edge_index.size(0) == 2, "edge_index must be [2, E]");
  TORCH_CHECK(g.edge_vectors.dim() == 2 && g.edge_vectors.size(1) == 3 &&
                  g.edge_vectors.size(0) == g.edge_index.size(1),
              "edge_vectors must be [E, 3] with E = edge_index.size(1)");
  if (g.edge_index.size(1) > 0) {
    TORCH_CHECK(g.edge_index[1].min().item<int64_t>() >= 0 && g.edge_index[1].max().item<int64_t>() < g.n_local,
                "edge receivers must be local atoms (indices below n_local = ", g.n_local, ")");
    TORCH_CHECK(g.edge_index[0].min().item<int64_t>() >= 0 && g.edge_index[0].max().item<int64_t>() < n_total,
                "edge senders must be atoms of the graph (indices below ", n_total, ")");
  }
  const int64_t num_elements = static_cast<int64_t>(metadata_.atomic_numbers.size());
  if (n_total > 0) {
    TORCH_CHECK(g.species.min().item<int64_t>() >= 0 && g.species.max().item<int64_t>() < num_elements,
                "species indices must be in [0, ", num_elements, ")");
  }
}

torch::Tensor Model::graph_input_values(const std::map<std::string, double>& given) const {
  const auto& names = metadata_.graph_inputs;
  for (const auto& [name, value] : given) {
    if (std::find(names.begin(), names.end(), name) == names.end()) {
      throw std::runtime_error("this model takes no " + name + " input (it was trained without an embedding of it)");
    }
  }
  std::vector<double> values = metadata_.graph_input_defaults;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto found = given.find(names[i]);
    if (found == given.end()) continue;
    const double lowest = metadata_.graph_input_bounds[2 * i], highest = metadata_.graph_input_bounds[2 * i + 1];
    if (!std::isfinite(found->second) || std::trunc(found->second) < lowest || std::trunc(found->second) > highest) {
      std::ostringstream message;
      message << names[i] << " = " << found->second << " is outside the values this model embeds (" << lowest
              << " to " << highest << ")";
      throw std::runtime_error(message.str());
    }
    values[i] = found->second;
  }
  return torch::tensor(values, torch::dtype(torch::kFloat64)).to(device_);
}

namespace {

// d(potential)/d(member energy) of each member: 1/M for the mean, and with hyperactive learning's
// bias -tau * sigma (sigma^2 = the members' energy variance) also -tau (E_m - mean) / (M sigma).
// Where the members agree exactly sigma has no gradient; the bias then adds none. `sigma`: set.
std::vector<double> member_weights(const torch::Tensor& member_energies, double hal_tau, double& sigma) {
  const auto energies = member_energies.accessor<double, 1>();
  const int64_t count = energies.size(0);
  double mean = 0.0, variance = 0.0;
  for (int64_t m = 0; m < count; ++m) mean += energies[m];
  mean /= count;
  for (int64_t m = 0; m < count; ++m) variance += (energies[m] - mean) * (energies[m] - mean);
  sigma = std::sqrt(variance / count);
  std::vector<double> weights(count, 1.0 / count);
  if (hal_tau != 0.0 && sigma > 0.0) {
    for (int64_t m = 0; m < count; ++m) weights[m] -= hal_tau * (energies[m] - mean) / (count * sigma);
  }
  return weights;
}

}  // namespace

void Model::check_options(const ComputeOptions& options) const {
  if (metadata_.members.empty() && (options.member_results || options.hal_tau != 0.0)) {
    throw std::runtime_error("member results and the hyperactive-learning bias need a committee artifact "
                             "(`mace-deploy compile a.model b.model ... -o committee.mace.pt`)");
  }
  if (options.node_features && metadata_.feature_irreps.empty()) {
    if (metadata_.format_version < 5) {
      throw std::runtime_error("not supported: node features of an artifact of format version " +
                               std::to_string(metadata_.format_version) +
                               " (made before they were added); recompile it with `mace-deploy compile`");
    }
    throw std::runtime_error("not supported: node features of a committee whose members' features differ in shape");
  }
}

Result Model::compute(const Graph& graph, const ComputeOptions& options, HaloExchange* exchange) {
  check_graph(graph);
  check_options(options);
  const int64_t members = metadata_.committee_size();
  const bool committee = !metadata_.members.empty();
  // torch runs a CUDA backward on its own device thread: there the host's exchange calls are
  // funnelled back to this thread (runtime/funnelled_exchange.h).
  std::optional<FunnelledExchange> funnel;
  if (exchange != nullptr && (options.backward_on_worker || !device_.is_cpu())) funnel.emplace(*exchange);
  const HaloExchangeScope scope(funnel ? &*funnel : exchange);
  const auto dtype = metadata_.scalar_type();
  const auto species = graph.species.to(device_, torch::kInt64);
  const auto edge_index = graph.edge_index.to(device_, torch::kInt64);
  const bool gradients = options.forces || options.virial || options.atom_virial || options.member_results;
  const auto vectors = graph.edge_vectors.to(device_, dtype).detach().requires_grad_(gradients);

  std::vector<c10::IValue> inputs{species, edge_index, vectors, graph.n_local};
  if (!metadata_.graph_inputs.empty() || !graph.graph_inputs.empty()) {
    inputs.emplace_back(graph_input_values(graph.graph_inputs));
  }
  Result result;
  // Per-atom energies [n_local] of one model, or a committee's list of each member's.
  c10::IValue energies_output;
  if (options.node_features) {
    const auto outputs = module_.get_method("energies_and_features")(inputs).toTuple();
    energies_output = outputs->elements()[0];
    result.node_features = outputs->elements()[1].toTensor().detach();
    if (!committee) result.node_features = result.node_features.unsqueeze(0);
  } else {
    energies_output = module_.forward(inputs);
  }
  // each member's local energy: a separate root for its own backward pass
  std::vector<torch::Tensor> member_local_energies, member_atom_energies;
  if (committee) {
    member_atom_energies = energies_output.toTensorVector();
  } else {
    member_atom_energies = {energies_output.toTensor()};
  }
  for (const auto& e : member_atom_energies) member_local_energies.push_back(e.sum());
  result.atom_energies = torch::stack(member_atom_energies).detach().mean(0);
  result.energy = result.atom_energies.sum();
  std::vector<double> weights{1.0};
  if (committee) {
    result.member_energies = torch::stack(member_local_energies).detach().to(torch::kCPU).clone();
    if (exchange != nullptr) exchange->sum_over_ranks(result.member_energies);
    double sigma = 0.0;
    weights = member_weights(result.member_energies, options.hal_tau, sigma);
    result.energy_std = torch::tensor(sigma, torch::dtype(torch::kFloat64));
    result.bias_energy = torch::tensor(-options.hal_tau * sigma, torch::dtype(torch::kFloat64));
  }
  if (!gradients) return result;

  // dE_m/dr_e of each member, one backward pass each (the members share only the edge geometry)
  std::vector<torch::Tensor> member_grads(members);
  const auto backward = [&] {
    for (int64_t m = 0; m < members; ++m) {
      const auto grad = torch::autograd::grad({member_local_energies[m]}, {vectors}, {},
                                              /*retain_graph=*/m + 1 < members, /*create_graph=*/false,
                                              /*allow_unused=*/true)[0];
      member_grads[m] = grad.defined() ? grad : torch::zeros_like(vectors);
    }
  };
  if (funnel) {
    funnel->run_on_worker(backward);
  } else {
    backward();
  }
  torch::Tensor edge_grad = member_grads[0];
  if (committee) {
    edge_grad = weights[0] * member_grads[0];
    for (int64_t m = 1; m < members; ++m) edge_grad = edge_grad + weights[m] * member_grads[m];
  }
  const auto edge_vectors = vectors.detach();
  // r_e = x_receiver - x_sender: the receiver feels -dE/dr_e, the sender +dE/dr_e.
  const auto forces_of = [&](const torch::Tensor& grad) {
    return torch::zeros({graph.species.size(0), 3}, grad.options())
        .index_add_(0, edge_index[1], -grad)
        .index_add_(0, edge_index[0], grad);
  };
  const auto virial_of = [&](const torch::Tensor& grad) {
    return -torch::matmul(edge_vectors.transpose(0, 1), grad);
  };
  if (options.forces) result.forces = forces_of(edge_grad);
  if (options.virial) result.virial = virial_of(edge_grad);
  if (options.atom_virial) {
    const auto half = -0.5 * edge_vectors.unsqueeze(2) * edge_grad.unsqueeze(1);  // [E, 3, 3]
    result.atom_virial = torch::zeros({graph.species.size(0), 3, 3}, half.options())
                             .index_add_(0, edge_index[1], half)
                             .index_add_(0, edge_index[0], half);
  }
  if (options.member_results) {
    std::vector<torch::Tensor> forces, virials;
    for (const auto& grad : member_grads) {
      forces.push_back(forces_of(grad));
      virials.push_back(virial_of(grad));
    }
    result.member_forces = torch::stack(forces);
    result.member_virials = torch::stack(virials);
  }
  return result;
}

torch::Tensor Model::descriptors(const Result& result) const {
  const auto columns = torch::tensor(metadata_.descriptor_columns, torch::kInt64).to(result.node_features.device());
  const auto selected = result.node_features.index_select(2, columns);  // [members, n_local, descriptors]
  return selected.permute({1, 0, 2})
      .reshape({selected.size(1), selected.size(0) * selected.size(2)})
      .to(torch::kCPU, torch::kFloat64)
      .contiguous();
}

torch::Tensor force_spread(const torch::Tensor& member_forces) {
  return member_forces.to(torch::kFloat64).var(0, /*unbiased=*/false).sum(1).sqrt();
}

}  // namespace mace_deploy
