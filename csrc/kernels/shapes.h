// Problem shapes of the fused kernels, shared by their CPU (kernels/cpu) and CUDA (kernels/cuda)
// versions, which the ops fill from the same tensors.
#pragma once

#include <cstdint>

namespace mace_deploy {

// Message passing: x [N, in_components, channels], sh [E, sh_components], w [W, paths, channels],
// out [R, out_components, channels].
struct MessageShape {
  int64_t in_components, channels, sh_components, paths, out_components;
};

// Neighbour density by sender element: radial [W, K], sh [E, M], out [R, M, S, K].
struct DensityShape {
  int64_t radial, sh_components, species;  // K, M, S
};

// Symmetric contraction: x [N, components, channels], out [N, out_components, channels],
// monomials [monomials, 1 + max_degree].
struct ContractionShape {
  int64_t components, channels, out_components, monomials, max_degree;
};

}  // namespace mace_deploy
