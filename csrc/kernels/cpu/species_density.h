// Neighbour density by sender element on the CPU (raw pointers, no torch).
//
//   out[r, m, s, k] = sum_{edges e -> r with sender element s} sh[e, m] * radial[row(e), k]
//
// the first layer's message passing regrouped (model/interaction.py, SpeciesConvolution): when
// a sender's features depend on its element only, the radial weights' last linear layer and
// the element's features can be applied per receiver after this sum instead of per edge.
// Layouts: radial [W, K], sh [E, M], out [R, M, S, K], contiguous; row(e) = weight_rows[e].
#pragma once

#include <cstdint>

#include "kernels/shapes.h"

namespace mace_deploy::cpu {

using mace_deploy::DensityShape;

// The kernels (KernelTable::species_density_forward / _backward, kernels/cpu/kernel_table.h):
// - forward: out rows of receivers [begin, end), visiting each receiver's edges (EdgeIndex).
// - backward: one part of a RowPartition (kernels/cpu/message_passing.h): grad_radial rows
//   [row_begin, row_end) zeroed then summed over `edges`, and grad_sh rows of those edges.

}  // namespace mace_deploy::cpu
