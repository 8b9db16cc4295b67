// O(N) neighbour list (cell list) for open, periodic and mixed boundaries and any triclinic cell,
// including cells smaller than the cutoff (then an atom meets many images of its neighbours).
// Torch-free, so that every host (Python bindings, LAMMPS, OpenMM plugins) can link it.
//
// Convention (the same as ase.neighborlist.neighbor_list("ijS", atoms, cutoff) with
// i = sender, j = receiver): one edge per (sender i, receiver j, integer shift S) with
//   r = x_j - x_i + S · cell,   |r| < cutoff,
// where x are the positions as given (atoms may lie anywhere, also outside the cell) and S is
// zero along non-periodic directions. Both directions of a pair are edges; an atom's own
// periodic images (i = j, S != 0) are edges, the pair (i, i, S = 0) is not unless
// self_interaction is set. An edge is returned exactly when the length of its returned vector
// (computed in double precision) is below the cutoff.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace mace_deploy {

// Edges sorted by receiver, then sender, then shift (lexicographic), so the result is
// deterministic and per-receiver sums need no atomics.
template <typename T>
struct NeighborList {
  std::vector<int64_t> senders;    // [E]
  std::vector<int64_t> receivers;  // [E]
  std::vector<int64_t> shifts;     // [E * 3] integer cell shifts S
  std::vector<T> vectors;          // [E * 3] x_receiver - x_sender + S · cell

  int64_t num_edges() const { return static_cast<int64_t>(senders.size()); }
};

// positions: [n_atoms * 3], row-major; cell: [3 * 3], rows are the lattice vectors (as in ASE),
// always double so that float32 positions still get exact shifts · cell; pbc: periodic flags
// per lattice vector. Along a non-periodic direction the cell vector is unused and may be zero.
// The work is done in double precision for both T; T only sets the type of positions and
// returned vectors.
// Throws std::invalid_argument (negative n_atoms, cutoff not positive and finite, NaN or inf
// in positions or cell, a degenerate cell along periodic directions, a cell so small that the
// search would visit an unreasonable number of periodic images).
template <typename T>
NeighborList<T> neighbor_list(const T* positions, int64_t n_atoms, const double* cell,
                              std::array<bool, 3> pbc, double cutoff,
                              bool self_interaction = false);

extern template NeighborList<float> neighbor_list<float>(const float*, int64_t, const double*,
                                                         std::array<bool, 3>, double, bool);
extern template NeighborList<double> neighbor_list<double>(const double*, int64_t, const double*,
                                                           std::array<bool, 3>, double, bool);

}  // namespace mace_deploy
