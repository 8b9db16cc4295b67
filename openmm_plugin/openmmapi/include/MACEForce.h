// MACEForce: the potential energy of (a subset of) the particles from a mace-deploy artifact.
//
// The model speaks eV and Angstrom; the kernels convert positions (nm), energies (kJ/mol) and
// forces (kJ/mol/nm) at the boundary with exact CODATA factors (see MACEKernels.h).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "openmm/Context.h"
#include "openmm/Force.h"

namespace MACEPlugin {

class MACEForce : public OpenMM::Force {
 public:
  // `atomicNumbers[k]` is the element of particle `atoms[k]`; an empty `atoms` means every
  // particle of the System, in order (then atomicNumbers.size() must equal the particle count).
  // Loads the artifact to validate it and the elements and hashes the file (SHA-256, stored by
  // serialization); throws OpenMM::OpenMMException with an actionable message on any problem.
  MACEForce(const std::string& modelPath, const std::vector<int>& atomicNumbers,
            const std::vector<int>& atoms = {});

  const std::string& getModelPath() const { return modelPath; }
  const std::string& getModelSha256() const { return modelSha256; }
  const std::vector<int>& getAtomicNumbers() const { return atomicNumbers; }
  // Empty when the force acts on all particles.
  const std::vector<int>& getAtoms() const { return atoms; }
  // The artifact's dtype, "float64" or "float32".
  const std::string& getModelDtype() const { return modelDtype; }
  // The model's cutoff r_max in nm.
  double getCutoff() const { return cutoff; }

  void setUsesPeriodicBoundaryConditions(bool periodic) { usePeriodic = periodic; }
  bool usesPeriodicBoundaryConditions() const override { return usePeriodic; }

  // "auto" (default): the artifact's dtype, since the Reference and CPU platforms hand the kernel
  // double-precision positions and accumulate its forces in double. "float64" / "float32": require
  // an artifact of that dtype (checked when a Context is created).
  void setPrecision(const std::string& precision);
  const std::string& getPrecision() const { return precision; }

  // Total charge (e) and spin multiplicity (2S + 1) of the particles the force acts on, for models
  // with embeddings of them (MACE-OMOL style); the model's defaults (0 and 1) until set. Setting
  // one that the model does not take, or a value outside what it embeds, throws. Set them before
  // creating the Context (or reinitialize it).
  void setCharge(double charge) { setGraphInput("total_charge", charge); }
  double getCharge() const { return getGraphInput("total_charge"); }
  void setSpinMultiplicity(double multiplicity) { setGraphInput("total_spin", multiplicity); }
  double getSpinMultiplicity() const { return getGraphInput("total_spin"); }
  // The per-structure inputs that were set, by the model's names (total_charge, total_spin).
  const std::map<std::string, double>& getGraphInputs() const { return graphInputs; }

  // A committee artifact (`mace-deploy compile a.model b.model ...`): the force is the members'
  // mean. Its number of members (1 for one model).
  int getNumMembers() const { return numMembers; }
  // Hyperactive learning: adds the bias -tau * sigma_E (sigma_E the members' energy standard
  // deviation, tau in kJ/mol per kJ/mol, i.e. unitless) to the energy and forces; a committee
  // only. Set it before creating the Context (or reinitialize it).
  void setHalBias(double tau);
  double getHalBias() const { return halBias; }
  // From the last evaluation in `context` of a committee: the standard deviation of the energy
  // over the members (kJ/mol), and per atom of the force (getAtoms() order, all particles when
  // empty) the norm of the force standard deviation (kJ/mol/nm).
  double getEnergyUncertainty(OpenMM::Context& context) const;
  std::vector<double> getForceUncertainty(OpenMM::Context& context) const;
  // mace-torch's invariant descriptors of each atom of the force (getAtoms() order), every layer's
  // (a committee's members side by side), at the Context's current positions: [atoms][features].
  std::vector<std::vector<double>> getDescriptors(OpenMM::Context& context) const;

 protected:
  OpenMM::ForceImpl* createImpl() const override;

 private:
  void setGraphInput(const std::string& name, double value);
  double getGraphInput(const std::string& name) const;

  std::string modelPath, modelSha256, modelDtype, precision = "auto";
  std::map<std::string, double> graphInputs, graphInputDefaults;
  std::vector<int> atomicNumbers, atoms;
  double cutoff = 0.0, halBias = 0.0;
  int numMembers = 1;
  bool usePeriodic = false;
};

}  // namespace MACEPlugin
