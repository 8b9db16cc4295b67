// Cell-list implementation of neighbor_list (see neighbor_list.h).
//
// 1. Binning frame M: its rows are a reduced basis of the periodic lattice (the same periodic
//    images as the given cell vectors, but a compact cell even when the given one is very
//    skewed) and, along non-periodic directions, unit vectors orthogonal to everything else, so
//    M is invertible even when the given cell is zero there, and fractional coordinates
//    f = x · M^-1 along a non-periodic direction are plain distances in Angstrom.
// 2. Wrap each atom into M's cell along periodic directions, x = x' + w · M with integer w, so
//    the search sees atoms inside the cell while the returned shifts refer to the positions as
//    given: S = (S' + w_sender - w_receiver) · basis, basis taking M's rows to the given cell's.
// 3. Sort the wrapped atoms into a grid of bins covering the cell (periodic directions) or the
//    atoms' extent (non-periodic directions), each bin at least one cutoff thick measured
//    perpendicular to its faces; a triclinic cell is binned in fractional coordinates.
// 4. For each receiver, visit the bins (and their periodic images) that can hold a sender within
//    the cutoff: |f_receiver - f_sender| < cutoff / h along a direction whose faces are h apart,
//    so a cell thinner than the cutoff is searched over several images.
// The number of bins is capped at about the number of atoms, so work and memory are O(N) at
// fixed density; receivers are processed in index order, giving receiver-sorted output.
#include "neighbors/neighbor_list.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mace_deploy {
namespace {

using Vec3 = std::array<double, 3>;

Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
Vec3 scaled(const Vec3& a, double s) { return {a[0] * s, a[1] * s, a[2] * s}; }

// Bins are at least cutoff * (1 + kBinMargin) thick, and the search reaches kSearchMargin bins
// further than the cutoff strictly needs, so round-off in the fractional coordinates never
// hides a pair; the final test on the returned vector decides exactly.
constexpr double kBinMargin = 1e-6;
constexpr double kSearchMargin = 1e-9;
// Pairs are screened on wrapped positions with this relative slack on the squared cutoff, then
// accepted on the vector computed from the positions as given (the two differ by round-off).
constexpr double kScreenSlack = 1e-8;
// |det M| below this fraction of the product of the row lengths: the periodic cell is degenerate.
constexpr double kDegenerate = 1e-12;
// Searching more periodic images than this per receiver means a cell far thinner than the
// cutoff (wrong units?): refused rather than left to run for hours.
constexpr double kMaxImages = 1e7;
// Beyond this many cell lengths from the cell, wrapping loses the position's precision.
constexpr double kMaxWrap = 1e12;

std::string pbc_string(std::array<bool, 3> pbc) {
  std::string s = "[";
  for (int k = 0; k < 3; ++k) s += std::string(pbc[k] ? "True" : "False") + (k < 2 ? ", " : "]");
  return s;
}

using Shift = std::array<int64_t, 3>;

struct Frame {
  std::array<Vec3, 3> rows;        // M
  std::array<Shift, 3> basis;      // periodic rows: m_k = sum_l basis[k][l] * cell_l (integer)
  std::array<Vec3, 3> reciprocal;  // b_k with m_l · b_k = delta_lk, so f_k = x · b_k
  Vec3 heights;                    // distance between the two faces normal to b_k: 1 / |b_k|
};

// Replaces the periodic rows by a pairwise-reduced basis of the same lattice (|m_k · m_l| <=
// |m_l|^2 / 2), recording the integer change of basis. The faces of a skewed cell are much
// closer than its vectors are long, so the search would visit many images in vain; the
// reduced cell spans the same periodic images and is about as compact as the lattice allows.
void reduce_lattice(Frame& frame, const double* cell, const std::array<int, 3>& periodic, int n_periodic) {
  for (bool changed = true; changed;) {
    changed = false;
    for (int a = 0; a < n_periodic; ++a) {
      for (int b = 0; b < n_periodic; ++b) {
        const int k = periodic[a], l = periodic[b];
        const Vec3& v = frame.rows[l];
        const double q = k == l ? 0 : std::round(dot(frame.rows[k], v) / dot(v, v));
        if (q == 0) continue;
        const Vec3 shorter{frame.rows[k][0] - q * v[0], frame.rows[k][1] - q * v[1], frame.rows[k][2] - q * v[2]};
        // Strictly shorter every time, so this terminates (equality: |m_k · m_l| = |m_l|^2 / 2).
        if (!(dot(shorter, shorter) < dot(frame.rows[k], frame.rows[k]))) continue;
        frame.rows[k] = shorter;
        for (int c = 0; c < 3; ++c) frame.basis[k][c] -= static_cast<int64_t>(q) * frame.basis[l][c];
        changed = true;
      }
    }
  }
  // Exact integer combinations of the given cell vectors, free of the round-off accumulated above.
  for (int a = 0; a < n_periodic; ++a) {
    const int k = periodic[a];
    for (int c = 0; c < 3; ++c) {
      frame.rows[k][c] = 0;
      for (int l = 0; l < 3; ++l) frame.rows[k][c] += static_cast<double>(frame.basis[k][l]) * cell[3 * l + c];
    }
  }
}

Frame binning_frame(const double* cell, std::array<bool, 3> pbc) {
  Frame frame;
  frame.basis = {Shift{1, 0, 0}, Shift{0, 1, 0}, Shift{0, 0, 1}};
  std::array<int, 3> periodic{}, open{};
  int n_periodic = 0, n_open = 0;
  for (int k = 0; k < 3; ++k) {
    if (pbc[k]) {
      frame.rows[k] = {cell[3 * k], cell[3 * k + 1], cell[3 * k + 2]};
      if (!(norm(frame.rows[k]) > 0))
        throw std::invalid_argument("neighbor_list: cell vector " + std::to_string(k) +
                                    " is zero but the cell is periodic along it (pbc = " +
                                    pbc_string(pbc) +
                                    "): set that cell vector or turn pbc off along it");
      periodic[n_periodic++] = k;
    } else {
      open[n_open++] = k;
    }
  }
  const std::string degenerate =
      "neighbor_list: the periodic cell vectors (pbc = " + pbc_string(pbc) +
      ") are linearly dependent, so the cell has no volume along its periodic directions: "
      "give the cell independent vectors or turn pbc off along the redundant direction";
  if (n_periodic == 0) {
    frame.rows = {Vec3{1, 0, 0}, Vec3{0, 1, 0}, Vec3{0, 0, 1}};
  } else if (n_periodic == 1) {
    const Vec3 a = scaled(frame.rows[periodic[0]], 1 / norm(frame.rows[periodic[0]]));
    int axis = 0;  // the Cartesian axis least aligned with a, so a x axis is well conditioned
    for (int c = 1; c < 3; ++c)
      if (std::abs(a[c]) < std::abs(a[axis])) axis = c;
    Vec3 e{0, 0, 0};
    e[axis] = 1;
    const Vec3 u = cross(a, e);
    frame.rows[open[0]] = scaled(u, 1 / norm(u));
    frame.rows[open[1]] = cross(a, frame.rows[open[0]]);
  } else if (n_periodic == 2) {
    const Vec3& a = frame.rows[periodic[0]];
    const Vec3& b = frame.rows[periodic[1]];
    const Vec3 n = cross(a, b);
    if (!(norm(n) > kDegenerate * norm(a) * norm(b))) throw std::invalid_argument(degenerate);
    frame.rows[open[0]] = scaled(n, 1 / norm(n));
  }
  const auto& m = frame.rows;
  if (!(std::abs(dot(m[0], cross(m[1], m[2]))) > kDegenerate * norm(m[0]) * norm(m[1]) * norm(m[2])))
    throw std::invalid_argument(degenerate);
  reduce_lattice(frame, cell, periodic, n_periodic);
  const double det = dot(m[0], cross(m[1], m[2]));
  for (int k = 0; k < 3; ++k) {
    frame.reciprocal[k] = scaled(cross(m[(k + 1) % 3], m[(k + 2) % 3]), 1 / det);
    frame.heights[k] = 1 / norm(frame.reciprocal[k]);
  }
  return frame;
}

// For bin b along one direction and search offset d in [-s, s]: the bin b + d lands in, and
// which periodic image of the cell it belongs to (-1 bin: outside a non-periodic grid).
struct NeighborBin {
  int64_t bin;
  int64_t image;
};

std::vector<NeighborBin> neighbor_bins(int64_t n_bins, int64_t reach, bool periodic) {
  std::vector<NeighborBin> table;
  table.reserve(n_bins * (2 * reach + 1));
  for (int64_t b = 0; b < n_bins; ++b) {
    for (int64_t d = -reach; d <= reach; ++d) {
      const int64_t c = b + d;
      const int64_t image = c >= 0 ? c / n_bins : -((-c + n_bins - 1) / n_bins);  // floor division
      if (periodic)
        table.push_back({c - image * n_bins, image});
      else
        table.push_back({image == 0 ? c : -1, 0});
    }
  }
  return table;
}

struct Edge {
  int64_t sender;
  Shift shift;
  Vec3 vector;
};

// What an accepted pair needs of its sender, stored in bin order next to the hot positions.
struct Sender {
  int64_t atom;
  Shift wrap;
};

// Makes room for `extra` more edges after `done` of `n` receivers. Once 1% of the receivers are
// done, grows straight to the projected total instead of doubling: each regrowth copies the
// whole output, and its first touch of new memory is a large part of the run time.
template <typename T>
void reserve_edges(NeighborList<T>& out, size_t extra, int64_t done, int64_t n) {
  const size_t needed = out.senders.size() + extra;
  if (needed <= out.senders.capacity()) return;
  size_t target = needed + needed / 2;
  if (100 * done >= n) target = std::max(target, static_cast<size_t>(1.05 * needed * n / done));
  out.senders.reserve(target);
  out.receivers.reserve(target);
  out.shifts.reserve(3 * target);
  out.vectors.reserve(3 * target);
}

}  // namespace

template <typename T>
NeighborList<T> neighbor_list(const T* positions, int64_t n_atoms, const double* cell,
                              std::array<bool, 3> pbc, double cutoff, bool self_interaction) {
  if (n_atoms < 0)
    throw std::invalid_argument("neighbor_list: n_atoms must be >= 0, got " + std::to_string(n_atoms));
  if (!(cutoff > 0) || !std::isfinite(cutoff)) {
    std::ostringstream message;
    message << "neighbor_list: the cutoff must be a positive, finite distance in Angstrom, got " << cutoff;
    throw std::invalid_argument(message.str());
  }
  for (int c = 0; c < 9; ++c)
    if (!std::isfinite(cell[c])) throw std::invalid_argument("neighbor_list: the cell contains NaN or inf");
  const Frame frame = binning_frame(cell, pbc);
  const auto& m = frame.rows;
  const int64_t n = n_atoms;

  // Wrapped positions x' and their integer wraps w (zero along non-periodic directions).
  std::vector<Vec3> wrapped(n), frac(n);
  std::vector<Shift> wrap(n);
  for (int64_t a = 0; a < n; ++a) {
    Vec3 x{static_cast<double>(positions[3 * a]), static_cast<double>(positions[3 * a + 1]),
           static_cast<double>(positions[3 * a + 2])};
    if (!std::isfinite(x[0]) || !std::isfinite(x[1]) || !std::isfinite(x[2]))
      throw std::invalid_argument("neighbor_list: the position of atom " + std::to_string(a) +
                                  " contains NaN or inf");
    for (int k = 0; k < 3; ++k) {
      double w = 0;
      if (pbc[k]) {
        w = std::floor(dot(x, frame.reciprocal[k]));
        if (std::abs(w) > kMaxWrap) {
          std::ostringstream message;
          message << "neighbor_list: atom " << a << " lies " << w << " cell lengths outside the cell along "
                  << "periodic direction " << k << ", too far to wrap it back without losing precision: "
                  << "wrap the positions into the cell first";
          throw std::invalid_argument(message.str());
        }
        for (int c = 0; c < 3; ++c) x[c] -= w * m[k][c];
      }
      wrap[a][k] = static_cast<int64_t>(w);
    }
    wrapped[a] = x;
    for (int k = 0; k < 3; ++k) frac[a][k] = dot(x, frame.reciprocal[k]);
  }

  // The binned region: the cell (fractional [0, 1)) along periodic directions, the atoms'
  // extent along non-periodic ones. Its thickness perpendicular to the bin faces sets the
  // number of bins, capped so that there are not many more bins than atoms.
  Vec3 low{0, 0, 0}, span{1, 1, 1};
  for (int k = 0; k < 3; ++k) {
    if (pbc[k] || n == 0) continue;
    double lo = frac[0][k], hi = frac[0][k];
    for (int64_t a = 1; a < n; ++a) {
      lo = std::min(lo, frac[a][k]);
      hi = std::max(hi, frac[a][k]);
    }
    low[k] = lo;
    span[k] = hi - lo;
  }
  const double max_bins = std::max<double>(2.0 * n, 1000.0);
  std::array<int64_t, 3> n_bins{};
  Vec3 thickness;
  for (int k = 0; k < 3; ++k) {
    thickness[k] = span[k] * frame.heights[k];
    const double fit = std::min(thickness[k] / (cutoff * (1 + kBinMargin)), max_bins);
    n_bins[k] = std::max<int64_t>(1, static_cast<int64_t>(fit));
  }
  while (static_cast<double>(n_bins[0]) * n_bins[1] * n_bins[2] > max_bins) {
    const int k = static_cast<int>(std::max_element(n_bins.begin(), n_bins.end()) - n_bins.begin());
    n_bins[k] = (n_bins[k] + 1) / 2;
  }
  // reach: how many bins the search extends either side; scale: bins per fractional unit.
  Vec3 needed{0, 0, 0}, scale{0, 0, 0};
  double images = 1;  // bins and their periodic images that one receiver's search visits
  double thinnest = std::numeric_limits<double>::infinity();
  for (int k = 0; k < 3; ++k) {
    if (!pbc[k] && n_bins[k] == 1) continue;  // one bin and nothing beyond it
    scale[k] = n_bins[k] / span[k];
    needed[k] = std::ceil(cutoff * n_bins[k] / thickness[k] + kSearchMargin);
    if (pbc[k]) {
      images *= 2 * needed[k] + 1;
      thinnest = std::min(thinnest, frame.heights[k]);
    } else {
      needed[k] = std::min<double>(needed[k], n_bins[k] - 1);
    }
  }
  if (images > kMaxImages) {
    std::ostringstream message;
    message << "neighbor_list: the cell is far thinner than the cutoff (" << cutoff << " A): it is only "
            << thinnest << " A across along a periodic direction, so each atom would be searched against about "
            << images << " periodic images; check the cell (units?) and the cutoff";
    throw std::invalid_argument(message.str());
  }
  const std::array<int64_t, 3> reach{static_cast<int64_t>(needed[0]), static_cast<int64_t>(needed[1]),
                                     static_cast<int64_t>(needed[2])};

  // Counting sort of the atoms into bins; sorted copies of what the inner loop reads.
  std::vector<std::array<int64_t, 3>> bin_of(n);
  const int64_t total_bins = n_bins[0] * n_bins[1] * n_bins[2];
  std::vector<int64_t> bin_start(total_bins + 1, 0);
  for (int64_t a = 0; a < n; ++a) {
    for (int k = 0; k < 3; ++k) {
      // Within a bin of [0, n_bins) up to round-off: wrapped or extent-bounded coordinates.
      const auto u = static_cast<int64_t>(std::floor((frac[a][k] - low[k]) * scale[k]));
      bin_of[a][k] = std::clamp<int64_t>(u, 0, n_bins[k] - 1);
    }
    ++bin_start[1 + bin_of[a][0] + n_bins[0] * (bin_of[a][1] + n_bins[1] * bin_of[a][2])];
  }
  for (int64_t b = 0; b < total_bins; ++b) bin_start[b + 1] += bin_start[b];
  std::vector<Vec3> sorted_position(n);
  std::vector<Sender> sorted_sender(n);
  {
    std::vector<int64_t> cursor(bin_start.begin(), bin_start.end() - 1);
    for (int64_t a = 0; a < n; ++a) {
      const int64_t p = cursor[bin_of[a][0] + n_bins[0] * (bin_of[a][1] + n_bins[1] * bin_of[a][2])]++;
      sorted_position[p] = wrapped[a];
      sorted_sender[p] = {a, wrap[a]};
    }
  }
  std::array<std::vector<NeighborBin>, 3> table;
  for (int k = 0; k < 3; ++k) table[k] = neighbor_bins(n_bins[k], reach[k], pbc[k]);

  NeighborList<T> out;
  const double screen = cutoff * cutoff * (1 + kScreenSlack);
  const auto x_given = [&](int64_t a, int c) { return static_cast<double>(positions[3 * a + c]); };
  std::vector<Edge> found;
  for (int64_t j = 0; j < n; ++j) {
    found.clear();
    const Vec3& xj = wrapped[j];
    for (int64_t d2 = 0; d2 <= 2 * reach[2]; ++d2) {
      const NeighborBin z = table[2][bin_of[j][2] * (2 * reach[2] + 1) + d2];
      if (z.bin < 0) continue;
      for (int64_t d1 = 0; d1 <= 2 * reach[1]; ++d1) {
        const NeighborBin y = table[1][bin_of[j][1] * (2 * reach[1] + 1) + d1];
        if (y.bin < 0) continue;
        for (int64_t d0 = 0; d0 <= 2 * reach[0]; ++d0) {
          const NeighborBin x = table[0][bin_of[j][0] * (2 * reach[0] + 1) + d0];
          if (x.bin < 0) continue;
          // The sender's image sits at x'_i + t, i.e. its shift in the wrapped frame is -image.
          Vec3 t;
          for (int c = 0; c < 3; ++c) t[c] = x.image * m[0][c] + y.image * m[1][c] + z.image * m[2][c];
          const int64_t bin = x.bin + n_bins[0] * (y.bin + n_bins[1] * z.bin);
          for (int64_t p = bin_start[bin]; p < bin_start[bin + 1]; ++p) {
            const Vec3& xi = sorted_position[p];
            const double dx = xj[0] - xi[0] - t[0], dy = xj[1] - xi[1] - t[1], dz = xj[2] - xi[2] - t[2];
            if (dx * dx + dy * dy + dz * dz >= screen) continue;
            const int64_t i = sorted_sender[p].atom;
            const Shift& wrap_i = sorted_sender[p].wrap;
            // Shift in the reduced frame, then in the basis of the given cell.
            const Shift reduced{-x.image + wrap_i[0] - wrap[j][0], -y.image + wrap_i[1] - wrap[j][1],
                                -z.image + wrap_i[2] - wrap[j][2]};
            Shift shift{0, 0, 0};
            for (int k = 0; k < 3; ++k)
              for (int c = 0; c < 3; ++c) shift[c] += reduced[k] * frame.basis[k][c];
            if (i == j && shift == Shift{0, 0, 0} && !self_interaction) continue;
            Vec3 r;
            for (int c = 0; c < 3; ++c)
              r[c] = (x_given(j, c) - x_given(i, c)) +
                     (shift[0] * cell[c] + shift[1] * cell[3 + c] + shift[2] * cell[6 + c]);
            if (std::sqrt(dot(r, r)) < cutoff) found.push_back({i, shift, r});
          }
        }
      }
    }
    std::sort(found.begin(), found.end(), [](const Edge& a, const Edge& b) {
      return a.sender != b.sender ? a.sender < b.sender : a.shift < b.shift;
    });
    reserve_edges(out, found.size(), j + 1, n);
    for (const Edge& e : found) {
      out.senders.push_back(e.sender);
      out.receivers.push_back(j);
      out.shifts.insert(out.shifts.end(), e.shift.begin(), e.shift.end());
      for (int c = 0; c < 3; ++c) out.vectors.push_back(static_cast<T>(e.vector[c]));
    }
  }
  return out;
}

template NeighborList<float> neighbor_list<float>(const float*, int64_t, const double*,
                                                  std::array<bool, 3>, double, bool);
template NeighborList<double> neighbor_list<double>(const double*, int64_t, const double*,
                                                    std::array<bool, 3>, double, bool);

}  // namespace mace_deploy
