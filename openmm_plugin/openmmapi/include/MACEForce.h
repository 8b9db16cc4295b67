// MACEForce: the potential energy of (a subset of) the particles from a mace-deploy artifact.
//
// The model speaks eV and Angstrom; the kernels convert positions (nm), energies (kJ/mol) and
// forces (kJ/mol/nm) at the boundary with exact CODATA factors (see MACEKernels.h).
#pragma once

#include <string>
#include <vector>

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

 protected:
  OpenMM::ForceImpl* createImpl() const override;

 private:
  std::string modelPath, modelSha256, modelDtype, precision = "auto";
  std::vector<int> atomicNumbers, atoms;
  double cutoff = 0.0;
  bool usePeriodic = false;
};

}  // namespace MACEPlugin
