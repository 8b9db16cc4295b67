// What the ops' CUDA implementations share (compiled only into builds against a CUDA torch):
// the stream to launch on, and edge groupings (CSR) built on the device without host syncs.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels/cuda/kernels.h"

namespace mace_deploy {

inline cuda::Stream current_stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

// Edges grouped by a node index (int64 [E] on the device, values in [0, num_nodes)): a stable
// sort and a search of the group boundaries, so no host synchronisation. Owns its tensors.
class DeviceEdgeGroups {
 public:
  DeviceEdgeGroups(const at::Tensor& node_of_edge, int64_t num_nodes) : num_nodes_(num_nodes) {
    const auto [sorted, order] = node_of_edge.sort(/*stable=*/true, /*dim=*/0, /*descending=*/false);
    edges_ = order;
    offsets_ = at::searchsorted(sorted, at::arange(num_nodes + 1, node_of_edge.options()));
  }
  cuda::EdgeGroups view() const { return {offsets_.data_ptr<int64_t>(), edges_.data_ptr<int64_t>(), num_nodes_}; }

 private:
  at::Tensor offsets_, edges_;
  int64_t num_nodes_;
};

}  // namespace mace_deploy
