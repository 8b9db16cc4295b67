// Real spherical harmonics, e3nn 0.4 convention (component normalisation), up to l = 3.
#include <cmath>

#include "ops/ops.h"

namespace mace_deploy {

at::Tensor spherical_harmonics(const at::Tensor& vectors, int64_t lmax) {
  TORCH_CHECK(vectors.dim() == 2 && vectors.size(1) == 3, "spherical_harmonics: vectors must be [E, 3]");
  TORCH_CHECK(lmax >= 0 && lmax <= 3, "not supported: spherical harmonics with max_ell = ", lmax,
              " (mace-deploy supports max_ell 0..3)");
  // Same as torch.nn.functional.normalize, as e3nn uses it.
  const auto unit = vectors / vectors.norm(2, -1, true).clamp_min(1e-12);
  const auto x = unit.select(1, 0), y = unit.select(1, 1), z = unit.select(1, 2);
  const double s3 = std::sqrt(3.0), s5 = std::sqrt(5.0);

  std::vector<at::Tensor> sh{at::ones_like(x)};
  if (lmax >= 1) {
    for (const auto& c : {x, y, z}) sh.push_back(s3 * c);
  }
  if (lmax >= 2) {
    const auto y2 = y * y, x2z2 = x * x + z * z;
    const auto sh_2_0 = s3 * x * z, sh_2_1 = s3 * x * y, sh_2_2 = y2 - 0.5 * x2z2;
    const auto sh_2_3 = s3 * y * z, sh_2_4 = s3 / 2.0 * (z * z - x * x);
    for (const auto& c : {sh_2_0, sh_2_1, sh_2_2, sh_2_3, sh_2_4}) sh.push_back(s5 * c);
    if (lmax >= 3) {
      const double s7 = std::sqrt(7.0);
      const auto sh_3_0 = std::sqrt(5.0 / 6.0) * (sh_2_0 * z + sh_2_4 * x);
      const auto sh_3_1 = s5 * sh_2_0 * y;
      const auto sh_3_2 = std::sqrt(3.0 / 8.0) * (4.0 * y2 - x2z2) * x;
      const auto sh_3_3 = 0.5 * y * (2.0 * y2 - 3.0 * x2z2);
      const auto sh_3_4 = std::sqrt(3.0 / 8.0) * z * (4.0 * y2 - x2z2);
      const auto sh_3_5 = s5 * sh_2_4 * y;
      const auto sh_3_6 = std::sqrt(5.0 / 6.0) * (sh_2_4 * z - sh_2_0 * x);
      for (const auto& c : {sh_3_0, sh_3_1, sh_3_2, sh_3_3, sh_3_4, sh_3_5, sh_3_6}) sh.push_back(s7 * c);
    }
  }
  return at::stack(sh, -1);
}

}  // namespace mace_deploy
