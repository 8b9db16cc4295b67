// Python binding of the neighbour list (csrc/neighbors): mace_deploy._C.neighbor_list.
#include <pybind11/stl.h>
#include <torch/extension.h>

#include "neighbors/neighbor_list.h"

namespace py = pybind11;

namespace {

// Hands a vector to torch without a copy: the tensor's deleter owns it.
template <typename V>
torch::Tensor adopt(std::vector<V>&& values, std::vector<int64_t> shape, torch::Dtype dtype) {
  if (values.empty()) return torch::empty(shape, torch::dtype(dtype));
  auto* owned = new std::vector<V>(std::move(values));
  return torch::from_blob(owned->data(), shape, [owned](void*) { delete owned; }, torch::dtype(dtype));
}

template <typename T>
py::dict neighbor_list(const torch::Tensor& positions, const torch::Tensor& cell, std::array<bool, 3> pbc,
                       double cutoff, bool self_interaction) {
  const torch::Tensor x = positions.to(torch::kCPU).contiguous();
  const torch::Tensor h = cell.to(torch::kCPU, torch::kFloat64).contiguous();
  mace_deploy::NeighborList<T> nl;
  {
    py::gil_scoped_release no_gil;
    // std::invalid_argument reaches Python as ValueError (pybind11's standard translation).
    nl = mace_deploy::neighbor_list<T>(x.data_ptr<T>(), x.size(0), h.data_ptr<double>(), pbc, cutoff,
                                       self_interaction);
  }
  const int64_t e = nl.num_edges();
  const auto device = positions.device();
  py::dict out;
  out["senders"] = adopt(std::move(nl.senders), {e}, torch::kInt64).to(device);
  out["receivers"] = adopt(std::move(nl.receivers), {e}, torch::kInt64).to(device);
  out["shifts"] = adopt(std::move(nl.shifts), {e, 3}, torch::kInt64).to(device);
  out["vectors"] = adopt(std::move(nl.vectors), {e, 3}, positions.scalar_type()).to(device);
  return out;
}

}  // namespace

void bind_neighbors(py::module_& m) {
  m.def(
      "neighbor_list",
      [](const torch::Tensor& positions, const torch::Tensor& cell, std::array<bool, 3> pbc, double cutoff,
         bool self_interaction) {
        if (positions.dim() != 2 || positions.size(1) != 3)
          throw py::value_error("neighbor_list: positions must have shape [n_atoms, 3], got " +
                                c10::str(positions.sizes()));
        if (cell.numel() != 9 || !cell.is_floating_point())
          throw py::value_error("neighbor_list: cell must be a floating-point [3, 3] tensor (rows are the cell "
                                "vectors), got shape " + c10::str(cell.sizes()));
        if (positions.scalar_type() == torch::kFloat64)
          return neighbor_list<double>(positions, cell, pbc, cutoff, self_interaction);
        if (positions.scalar_type() == torch::kFloat32)
          return neighbor_list<float>(positions, cell, pbc, cutoff, self_interaction);
        throw py::value_error("neighbor_list: positions must be float32 or float64, got " +
                              std::string(c10::toString(positions.scalar_type())));
      },
      py::arg("positions"), py::arg("cell"), py::arg("pbc"), py::arg("cutoff"), py::arg("self_interaction") = false,
      "All pairs closer than cutoff, periodic images included, as ase.neighborlist.neighbor_list('ijS') with\n"
      "i = sender, j = receiver: returns a dict of tensors senders [E], receivers [E] (int64), shifts [E, 3]\n"
      "(int64) and vectors [E, 3] = x_receiver - x_sender + shifts @ cell (dtype of positions), sorted by\n"
      "receiver, then sender, then shift. positions [n, 3] float32 or float64; cell [3, 3], rows are the\n"
      "cell vectors (unused, may be zero, along non-periodic directions); pbc three bools. self_interaction adds\n"
      "each atom's zero-shift pair with itself (vector 0).");
}
