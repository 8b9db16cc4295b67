// Process heap settings for repeated model evaluations.
#pragma once

namespace mace_deploy {

// A model evaluation allocates and frees the same large tensors every step (radial weights and
// their gradients: hundreds of MB for a thousand atoms). glibc serves blocks above 32 MB with
// fresh mmap()s and gives freed heap tops back to the system, so every step page-faults and
// zeroes those pages again, which cost 30-40% of a step. This keeps freed memory in the heap for
// reuse instead (mallopt: no mmap for large blocks, no trimming). The process keeps its peak heap
// size, which a molecular dynamics run reaches on the first step anyway. Applied once per process
// when the first model is loaded; set MACE_DEPLOY_KEEP_HEAP=0 to leave malloc's settings alone.
void keep_freed_memory_for_reuse();

}  // namespace mace_deploy
