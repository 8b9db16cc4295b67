// SHA-256 (FIPS 180-4) of a file, as lowercase hex: what serialization stores to recognise the
// model file a MACEForce was built with.
#pragma once

#include <string>

namespace MACEPlugin {

// Throws OpenMM::OpenMMException when the file cannot be read.
std::string sha256File(const std::string& path);

}  // namespace MACEPlugin
