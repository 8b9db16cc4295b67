// Index tables the kernels read (built once per op call, compiled once: not per instruction set).
#include <algorithm>
#include <numeric>

#include "kernels/cpu/message_passing.h"
#include "kernels/cpu/symmetric_contraction.h"

namespace mace_deploy::cpu {

CouplingTable::CouplingTable(const int64_t* cg_index, int64_t nnz) : order(nnz) {
  std::iota(order.begin(), order.end(), 0);
  auto key = [&](int64_t q) { return std::make_pair(cg_index[4 * q + 3], cg_index[4 * q]); };  // (path, k_in)
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return key(a) < key(b); });
  for (int64_t i = 0; i < nnz; ++i) {
    const int64_t q = order[i];
    if (groups.empty() || key(q) != std::make_pair(groups.back().path, groups.back().k_in)) {
      groups.push_back({cg_index[4 * q + 3], cg_index[4 * q], i, i});
    }
    groups.back().end = i + 1;
    k_sh.push_back(cg_index[4 * q + 1]);
    k_out.push_back(cg_index[4 * q + 2]);
  }
}

EdgeIndex::EdgeIndex(const int64_t* node_of_edge, int64_t num_edges, int64_t num_nodes)
    : offsets(num_nodes + 1, 0), edges(num_edges) {
  for (int64_t e = 0; e < num_edges; ++e) ++offsets[node_of_edge[e] + 1];
  std::partial_sum(offsets.begin(), offsets.end(), offsets.begin());
  std::vector<int64_t> next(offsets.begin(), offsets.end() - 1);
  for (int64_t e = 0; e < num_edges; ++e) edges[next[node_of_edge[e]]++] = e;  // stable: edge order kept
}

std::vector<int64_t> balanced_row_ranges(const EdgeIndex& by_row, int64_t parts) {
  const int64_t num_rows = static_cast<int64_t>(by_row.offsets.size()) - 1;
  const int64_t num_edges = by_row.offsets.back();
  std::vector<int64_t> row_begin(parts + 1, num_rows);
  // part t starts at the first row whose edges start at or after t * E / parts
  for (int64_t t = 0, row = 0; t < parts; ++t) {
    while (row < num_rows && by_row.offsets[row] * parts < t * num_edges) ++row;
    row_begin[t] = row;
  }
  return row_begin;
}

RowPartition::RowPartition(const int64_t* weight_rows, const int64_t* receivers, int64_t num_edges,
                           int64_t num_rows, int64_t num_receivers, int64_t parts)
    : row_begin(balanced_row_ranges(EdgeIndex(weight_rows, num_edges, num_rows), parts)),
      edge_offsets(parts + 1, 0),
      edges(num_edges) {
  std::vector<int64_t> part_of_row(num_rows);
  for (int64_t t = 0; t < parts; ++t) {
    std::fill(part_of_row.begin() + row_begin[t], part_of_row.begin() + row_begin[t + 1], t);
  }
  const EdgeIndex by_receiver(receivers, num_edges, num_receivers);
  for (const int64_t e : by_receiver.edges) ++edge_offsets[part_of_row[weight_rows[e]] + 1];
  std::partial_sum(edge_offsets.begin(), edge_offsets.end(), edge_offsets.begin());
  std::vector<int64_t> next(edge_offsets.begin(), edge_offsets.end() - 1);
  for (const int64_t e : by_receiver.edges) edges[next[part_of_row[weight_rows[e]]]++] = e;
}

MonomialTable::MonomialTable(const ContractionShape& s, const int64_t* monomials) {
  for (int64_t m = 0; m < s.monomials; ++m) {
    const int64_t* row = monomials + m * (1 + s.max_degree);
    int64_t degree = 0;
    while (degree < s.max_degree && row[1 + degree] >= 0) ++degree;
    rows[degree].push_back(m);
    rows[degree].insert(rows[degree].end(), row, row + 1 + degree);
  }
}

}  // namespace mace_deploy::cpu
