// pybind11 bindings of the C++ runtime (mace_deploy._C). The model call runs in C++; Python only
// passes tensors in and reads results out.
#include <torch/extension.h>

#include "kernels/cpu/kernel_table.h"
#include "ops/ops.h"
#include "runtime/model.h"
#include "runtime/periodic_images.h"

namespace py = pybind11;
using mace_deploy::Model;

void bind_neighbors(py::module_& m);  // neighbors_bindings.cpp

namespace {

// A host's halo exchange written in Python: an object with forward(features, n_local, layer) and
// reverse(gradients, n_local, layer) methods that change the [n_total, width] tensor in place
// (ops/halo_exchange.h), e.g. over mpi4py.
class PythonHaloExchange : public mace_deploy::HaloExchange {
 public:
  explicit PythonHaloExchange(py::object exchange) : exchange_(std::move(exchange)) {}
  ~PythonHaloExchange() override {
    py::gil_scoped_acquire gil;
    exchange_ = py::object();
  }
  void forward(at::Tensor features, int64_t n_local, int64_t layer) override {
    py::gil_scoped_acquire gil;
    exchange_.attr("forward")(features, n_local, layer);
  }
  void reverse(at::Tensor gradients, int64_t n_local, int64_t layer) override {
    py::gil_scoped_acquire gil;
    exchange_.attr("reverse")(gradients, n_local, layer);
  }

 private:
  py::object exchange_;
};

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "mace-deploy C++ runtime";
  m.attr("OPS_VERSION") = mace_deploy::ops_library_version();
  m.attr("FORMAT_VERSION") = mace_deploy::kFormatVersion;
  m.attr("OVERLAP_DISTANCE") = mace_deploy::kOverlapDistance;
  m.def("cpu_kernel_isa", [] { return std::string(mace_deploy::cpu::kernel_isa()); },
        "Instruction set of the CPU kernels in use: avx512, avx2 or baseline (MACE_DEPLOY_CPU_ISA overrides).");

  py::class_<Model>(m, "Model")
      .def(py::init([](const std::string& path, const std::string& device) {
             try {
               return Model::load(path, device);
             } catch (const std::runtime_error& e) {
               throw py::value_error(e.what());
             }
           }),
           py::arg("path"), py::arg("device") = "cpu")
      .def_property_readonly("r_max", [](const Model& self) { return self.metadata().r_max; })
      .def_property_readonly("atomic_numbers", [](const Model& self) { return self.metadata().atomic_numbers; })
      .def_property_readonly("dtype", [](const Model& self) { return self.metadata().dtype; })
      .def_property_readonly("num_interactions", [](const Model& self) { return self.metadata().num_interactions; })
      .def_property_readonly("graph_inputs", [](const Model& self) { return self.metadata().graph_inputs; })
      .def_property_readonly("graph_input_defaults",
                             [](const Model& self) { return self.metadata().graph_input_defaults; })
      .def_property_readonly("members", [](const Model& self) { return self.metadata().members; })
      .def_property_readonly("feature_irreps", [](const Model& self) { return self.metadata().feature_irreps; })
      .def_property_readonly("descriptor_columns",
                             [](const Model& self) { return self.metadata().descriptor_columns; })
      .def(
          "graph_input_values",
          [](const Model& self, const std::map<std::string, double>& given) {
            try {
              return self.graph_input_values(given);
            } catch (const std::runtime_error& e) {
              throw py::value_error(e.what());
            }
          },
          py::arg("graph_inputs"),
          "The per-structure input values in the model's order (defaults for those not given); ValueError for "
          "a name the model does not take or a value outside what it embeds.")
      .def(
          "compute",
          [](Model& self, torch::Tensor species, torch::Tensor edge_index, torch::Tensor edge_vectors,
             int64_t n_local, bool forces, bool virial, bool atom_virial, std::optional<torch::Tensor> ghost_owners,
             std::map<std::string, double> graph_inputs, py::object exchange, bool backward_on_worker,
             bool member_results, double hal_tau, bool node_features) {
            if (ghost_owners && !exchange.is_none()) {
              throw py::value_error("give ghost_owners or exchange, not both");
            }
            std::optional<PythonHaloExchange> python_exchange;
            if (!exchange.is_none()) python_exchange.emplace(exchange);
            const mace_deploy::ComputeOptions options{forces,         virial,  atom_virial, backward_on_worker,
                                                      member_results, hal_tau, node_features};
            mace_deploy::Result r;
            {
              py::gil_scoped_release no_gil;
              std::optional<mace_deploy::PeriodicImageExchange> images;
              if (ghost_owners) images.emplace(ghost_owners->to(torch::kInt64));
              mace_deploy::HaloExchange* halo = images ? static_cast<mace_deploy::HaloExchange*>(&*images)
                                                       : python_exchange ? &*python_exchange : nullptr;
              r = self.compute({species, edge_index, edge_vectors, n_local, std::move(graph_inputs)}, options, halo);
            }
            py::dict out;
            out["energy"] = r.energy;
            out["atom_energies"] = r.atom_energies;
            if (r.forces.defined()) out["forces"] = r.forces;
            if (r.virial.defined()) out["virial"] = r.virial;
            if (r.atom_virial.defined()) out["atom_virial"] = r.atom_virial;
            for (const auto& [name, value] :
                 {std::pair{"bias_energy", r.bias_energy}, {"member_energies", r.member_energies},
                  {"member_forces", r.member_forces}, {"member_virials", r.member_virials},
                  {"node_features", r.node_features}}) {
              if (value.defined()) out[name] = value;
            }
            return out;
          },
          py::arg("species"), py::arg("edge_index"), py::arg("edge_vectors"), py::arg("n_local"),
          py::arg("forces") = true, py::arg("virial") = true, py::arg("atom_virial") = false,
          py::arg("ghost_owners") = py::none(), py::arg("graph_inputs") = std::map<std::string, double>(),
          py::arg("exchange") = py::none(), py::arg("backward_on_worker") = false, py::arg("member_results") = false,
          py::arg("hal_tau") = 0.0, py::arg("node_features") = false,
          "Energy, per-atom energies, forces and virials of an edge-vector graph (see runtime/model.h). "
          "ghost_owners[g]: the local atom that ghost n_local + g is a periodic image of (one-process halo "
          "exchange, as LAMMPS on one rank). exchange: a host's own halo exchange instead, an object with "
          "forward(features, n_local, layer) and reverse(gradients, n_local, layer) methods that fill the ghost "
          "rows of features / add the ghost rows of gradients onto their owners, in place, on [n_total, width] "
          "tensors; both are called on the calling thread, also in the backward pass (backward_on_worker: run the "
          "backward on another thread, as on a GPU, for tests). graph_inputs: "
          "per-structure inputs by name (graph_inputs property), the model's defaults for the others. A committee "
          "artifact (members property) gives its members' mean, their energies (member_energies) and with "
          "member_results their forces and virials; hal_tau adds hyperactive learning's bias -hal_tau * sigma_E "
          "(bias_energy; forces and virial include it). node_features: every layer's node features "
          "[members, n_local, D] in e3nn's layout.");

  bind_neighbors(m);
}
