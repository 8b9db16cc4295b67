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
  halBias = force.getHalBias();
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
  const bool committee = !model->metadata().members.empty();
  options.member_results = committee && includeForces;  // the spread costs a few sums per member
  options.hal_tau = halBias;  // unitless: the bias and sigma_E are energies in the same units
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
  if (options.member_results) storeUncertainty(result);
  const double bias = committee ? result.bias_energy.item<double>() : 0.0;
  return (result.energy.item<double>() + bias) * kKJPerMolPerEV;
}

// As the ASE calculator's energy_var and forces_std_atom, in OpenMM's units.
void ReferenceCalcMACEForceKernel::storeUncertainty(const mace_deploy::Result& result) {
  energyUncertainty = result.energy_std.item<double>() * kKJPerMolPerEV;
  const auto spread = mace_deploy::force_spread(result.member_forces).contiguous();
  const double* s = spread.data_ptr<double>();
  forceUncertainty.assign(s, s + spread.size(0));
  for (double& value : forceUncertainty) value *= kKJPerMolPerEV * kAngstromPerNm;
}

double ReferenceCalcMACEForceKernel::getEnergyUncertainty() const {
  requireUncertainty();
  return energyUncertainty;
}

std::vector<double> ReferenceCalcMACEForceKernel::getForceUncertainty() const {
  requireUncertainty();
  return forceUncertainty;
}

void ReferenceCalcMACEForceKernel::requireUncertainty() const {
  if (model->metadata().members.empty()) {
    throw OpenMMException("MACEForce: '" + modelPath + "' is one model; uncertainties need a committee artifact " +
                          "(mace-deploy compile a.model b.model ... -o committee.mace.pt)");
  }
  if (forceUncertainty.empty()) {
    throw OpenMMException("MACEForce: no forces computed in this Context yet; take a step or call "
                          "context.getState(getForces=True) first");
  }
}

std::vector<std::vector<double>> ReferenceCalcMACEForceKernel::getDescriptors(OpenMM::ContextImpl& context) {
  if (model->metadata().descriptor_columns.empty()) {
    throw OpenMMException("MACEForce: '" + modelPath + "' cannot give descriptors (made before mace-deploy returned " +
                          "node features, or a committee whose members' features differ in shape); recompile it");
  }
  mace_deploy::ComputeOptions options;
  options.forces = options.virial = false;
  options.node_features = true;
  mace_deploy::Result result;
  try {
    result = model->compute(buildGraph(context), options);
  } catch (const std::exception& e) {
    throw OpenMMException("MACEForce: evaluating '" + modelPath + "' failed: " + e.what());
  }
  const auto selected = model->descriptors(result);  // [atoms, members x descriptors]
  std::vector<std::vector<double>> rows(atoms.size());
  const int64_t width = selected.size(1);
  for (size_t k = 0; k < atoms.size(); k++) {
    rows[k].assign(selected.data_ptr<double>() + k * width, selected.data_ptr<double>() + (k + 1) * width);
  }
  return rows;
}

}  // namespace MACEPlugin
