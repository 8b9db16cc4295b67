#include "ReferenceMACEKernels.h"

#include <cmath>
#include <numeric>
#include <sstream>

#include "internal/MACEModel.h"
#include "internal/Sha256.h"
#include "neighbors/neighbor_list.h"
#include "openmm/OpenMMException.h"
#include "openmm/reference/ReferencePlatform.h"

namespace MACEPlugin {

using OpenMM::OpenMMException;
using OpenMM::Vec3;

namespace {

OpenMM::ReferencePlatform::PlatformData& platformData(OpenMM::ContextImpl& context) {
  return *static_cast<OpenMM::ReferencePlatform::PlatformData*>(context.getPlatformData());
}

}  // namespace

void ReferenceCalcMACEForceKernel::initialize(const OpenMM::System& system, const MACEForce& force) {
  modelPath = force.getModelPath();
  // The force was validated against the file as it was then; refuse a file replaced since.
  if (sha256File(modelPath) != force.getModelSha256()) {
    throw OpenMMException("MACEForce: the model file '" + modelPath + "' has changed since the MACEForce was " +
                          "created; create a new MACEForce for the new file");
  }
  model.emplace(loadModel(modelPath));
  const std::string& dtype = model->metadata().dtype;
  // The Reference and CPU platforms give this kernel double positions and accumulate its forces in
  // double, so "auto" serves the artifact at its own precision.
  if (force.getPrecision() != "auto" && force.getPrecision() != dtype) {
    throw OpenMMException("MACEForce: precision '" + force.getPrecision() + "' was requested but '" + modelPath +
                          "' is a " + dtype + " artifact; compile one with `mace-deploy compile MODEL.model -o OUT " +
                          "--dtype " + force.getPrecision() + "` or set the precision to 'auto'");
  }
  atoms = force.getAtoms();
  if (atoms.empty()) {
    atoms.resize(system.getNumParticles());
    std::iota(atoms.begin(), atoms.end(), 0);
  }
  species = torch::tensor(speciesIndices(model->metadata(), force.getAtomicNumbers(), force.getAtoms(), modelPath),
                          torch::kInt64);
  periodic = force.usesPeriodicBoundaryConditions();
  graphInputs = force.getGraphInputs();
}

mace_deploy::Graph ReferenceCalcMACEForceKernel::buildGraph(OpenMM::ContextImpl& context) const {
  const auto& data = platformData(context);
  const std::vector<Vec3>& positions = *data.positions;
  const int64_t n = static_cast<int64_t>(atoms.size());
  std::vector<double> x(3 * n);
  for (int64_t k = 0; k < n; k++) {
    for (int d = 0; d < 3; d++) x[3 * k + d] = positions[atoms[k]][d] * kAngstromPerNm;
  }
  double cell[9] = {0.0};
  if (periodic) {
    for (int i = 0; i < 3; i++) {
      for (int d = 0; d < 3; d++) cell[3 * i + d] = data.periodicBoxVectors[i][d] * kAngstromPerNm;
    }
  }
  mace_deploy::NeighborList<double> edges;
  try {
    edges = mace_deploy::neighbor_list<double>(x.data(), n, cell, {periodic, periodic, periodic},
                                               model->metadata().r_max);
  } catch (const std::exception& e) {
    throw OpenMMException(std::string("MACEForce: cannot build the neighbour list: ") + e.what());
  }
  const int64_t num_edges = edges.num_edges();
  for (int64_t e = 0; e < num_edges; e++) {
    const double* r = &edges.vectors[3 * e];
    const double length = std::sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]);
    if (length < mace_deploy::kOverlapDistance) {
      std::ostringstream message;
      message << "MACEForce: particles " << atoms[edges.senders[e]] << " and " << atoms[edges.receivers[e]]
              << " (or a periodic image) are " << length / kAngstromPerNm << " nm apart: overlapping particles";
      throw OpenMMException(message.str());
    }
  }
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  mace_deploy::Graph graph;
  graph.species = species;
  graph.edge_index = torch::stack({torch::from_blob(edges.senders.data(), {num_edges}, i64),
                                   torch::from_blob(edges.receivers.data(), {num_edges}, i64)});
  graph.edge_vectors = torch::from_blob(edges.vectors.data(), {num_edges, 3}, torch::kFloat64).clone();
  graph.n_local = n;
  graph.graph_inputs = graphInputs;
  return graph;
}

double ReferenceCalcMACEForceKernel::execute(OpenMM::ContextImpl& context, bool includeForces, bool includeEnergy) {
  if (!includeForces && !includeEnergy) return 0.0;
  const mace_deploy::Graph graph = buildGraph(context);
  mace_deploy::ComputeOptions options;
  options.forces = includeForces;
  options.virial = false;
  mace_deploy::Result result;
  try {
    result = model->compute(graph, options);
  } catch (const std::exception& e) {
    throw OpenMMException("MACEForce: evaluating '" + modelPath + "' failed: " + e.what());
  }
  if (includeForces) {
    const auto forces = result.forces.to(torch::kFloat64).contiguous();
    const double* f = forces.data_ptr<double>();
    std::vector<Vec3>& out = *platformData(context).forces;
    constexpr double scale = kKJPerMolPerEV * kAngstromPerNm;  // eV/Angstrom -> kJ/mol/nm
    for (size_t k = 0; k < atoms.size(); k++) out[atoms[k]] += Vec3(f[3 * k], f[3 * k + 1], f[3 * k + 2]) * scale;
  }
  return result.energy.item<double>() * kKJPerMolPerEV;
}

}  // namespace MACEPlugin
