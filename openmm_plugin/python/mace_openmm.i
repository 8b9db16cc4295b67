// SWIG interface of MACEForce. Imports OpenMM's own interface (from the pip openmm wheel's
// OpenMM.libs/include/swig) so that a MACEForce is an openmm.Force for System.addForce,
// XmlSerializer and CustomCVForce. Users import it through mace_deploy.openmm, which first
// loads the kernel library.
%module mace_openmm

%import(module="openmm") "swig/OpenMMSwigHeaders.i"
%include <std_string.i>
%include <std_vector.i>
// Conversions between Python sequences and std::vector<int> (OpenMM's own are internal to its module).
%template(IntVector) std::vector<int>;
%template(DoubleVector) std::vector<double>;
%template(DoubleVectorVector) std::vector<std::vector<double>>;

// The wrapper code casts between every class OpenMM's interface declares, so it needs all their headers.
%{
#include "MACEForce.h"
#include "OpenMM.h"
#include "OpenMMAmoeba.h"
#include "OpenMMDrude.h"
#include "openmm/RPMDIntegrator.h"
#include "openmm/RPMDMonteCarloBarostat.h"
%}

// C++ exceptions become openmm.OpenMMException, as in OpenMM's own wrapper.
%exception {
  try {
    $action
  } catch (std::exception& e) {
    PyObject* openmm = PyImport_ImportModule("openmm");
    PyObject* type = openmm != NULL ? PyObject_GetAttrString(openmm, "OpenMMException") : NULL;
    PyErr_SetString(type != NULL ? type : PyExc_RuntimeError, e.what());
    Py_XDECREF(type);
    Py_XDECREF(openmm);
    SWIG_fail;
  }
}

// Python constructor: keyword arguments, atoms=None for all particles (C++: an empty vector), and
// any integer sequences (numpy arrays too) or path-like model paths.
%feature("shadow") MACEPlugin::MACEForce::MACEForce %{
def __init__(self, model_path, atomic_numbers, atoms=None):
    import os
    if atoms is not None:
        atoms = [int(i) for i in atoms]
        if not atoms:
            import openmm
            raise openmm.OpenMMException("MACEForce: atoms is empty; pass None to use every particle")
    _mace_openmm.MACEForce_swiginit(self, _mace_openmm.new_MACEForce(
        os.fspath(model_path), [int(z) for z in atomic_numbers], [] if atoms is None else atoms))
%}

namespace MACEPlugin {

%feature("docstring") MACEForce "MACEForce(model_path, atomic_numbers, atoms=None)

Potential energy and forces of a mace-deploy artifact (made by `mace-deploy compile`).
atoms: the particle indices the model sees (None: all particles); atomic_numbers: their elements.";

class MACEForce : public OpenMM::Force {
 public:
  MACEForce(const std::string& modelPath, const std::vector<int>& atomicNumbers, const std::vector<int>& atoms);
  const std::string& getModelPath() const;
  const std::string& getModelSha256() const;
  const std::vector<int>& getAtomicNumbers() const;
  const std::vector<int>& getAtoms() const;
  const std::string& getModelDtype() const;
  double getCutoff() const;
  void setUsesPeriodicBoundaryConditions(bool periodic);
  virtual bool usesPeriodicBoundaryConditions() const;
  void setPrecision(const std::string& precision);
  const std::string& getPrecision() const;
  void setCharge(double charge);
  double getCharge() const;
  void setSpinMultiplicity(double multiplicity);
  double getSpinMultiplicity() const;
  int getNumMembers() const;
  void setHalBias(double tau);
  double getHalBias() const;
  double getEnergyUncertainty(OpenMM::Context& context) const;
  std::vector<double> getForceUncertainty(OpenMM::Context& context) const;
  std::vector<std::vector<double>> getDescriptors(OpenMM::Context& context) const;

  %extend {
    // The MACEForce behind an openmm.Force (e.g. from System.getForce or XmlSerializer.deserialize);
    // it refers to `force`, which must stay alive.
    static MACEPlugin::MACEForce& cast(OpenMM::Force& force) {
      return dynamic_cast<MACEPlugin::MACEForce&>(force);
    }
    static bool isinstance(OpenMM::Force& force) {
      return dynamic_cast<MACEPlugin::MACEForce*>(&force) != nullptr;
    }
    %pythoncode %{
    def getUncertainty(self, context):
        """(energy standard deviation in kJ/mol, [per-atom force standard deviation in kJ/mol/nm])
        over a committee's members at the last evaluation in `context`."""
        return self.getEnergyUncertainty(context), list(self.getForceUncertainty(context))
    %}
  }
};

}  // namespace MACEPlugin
