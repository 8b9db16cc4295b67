// Process heap settings for repeated model evaluations.
#pragma once

namespace mace_deploy {

// A model evaluation allocates and frees the same large tensors every step (per-atom features and
// their gradients, per-edge harmonics and radial features: tens of MB per thousand atoms). glibc
// serves blocks above 32 MB with fresh mmap()s and gives freed heap tops back to the system, so
// every step page-faults and zeroes those pages again (30-40% of a step when the radial weights
// were still stored whole, 15-25% at 4000 atoms since). This keeps freed memory in the heap for
// reuse instead (mallopt: no mmap for large blocks, no trimming). The process keeps its peak heap
// size, and the heap grows by some more over the first steps (sizes change with the neighbour
// count, so freed blocks do not always fit: +35% over four steps of 4000 atoms). Applied once
// per process when the first model is loaded; MACE_DEPLOY_KEEP_HEAP=0 leaves malloc's settings
// alone (less memory, slower).
void keep_freed_memory_for_reuse();

}  // namespace mace_deploy
