// Keeps every call of a host's HaloExchange on the host's thread.
//
// LAMMPS initialises MPI without thread support, so its exchange may only run on the thread that
// called Model::compute. The backward pass runs wherever autograd puts it: torch runs a CUDA
// backward on its own device thread. Model::compute therefore runs a GPU backward through
// `run_on_worker`: a worker thread does the work while the host thread serves the exchanges the
// work asks for, one at a time, and the worker waits for each. (A CPU backward runs on the thread
// that calls autograd, the host's: there a second thread would only cost a second OpenMP team,
// milliseconds per step on a small system; ComputeOptions::backward_on_worker tests the path.)
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "ops/halo_exchange.h"

namespace mace_deploy {

class FunnelledExchange : public HaloExchange {
 public:
  // host: called on the thread that constructs this object only.
  explicit FunnelledExchange(HaloExchange& host) : host_(host), host_thread_(std::this_thread::get_id()) {}

  void forward(at::Tensor features, int64_t n_local, int64_t layer) override;
  void reverse(at::Tensor gradients, int64_t n_local, int64_t layer) override;

  // Runs `work` on a new thread and serves its exchange calls on this (the host) thread until it
  // ends; rethrows what `work` or an exchange threw.
  void run_on_worker(const std::function<void()>& work);

 private:
  // `call` on the host thread: directly there, else handed over and waited for.
  void on_host_thread(const std::function<void()>& call);

  HaloExchange& host_;
  std::thread::id host_thread_;
  std::mutex mutex_;
  std::condition_variable changed_;
  const std::function<void()>* pending_ = nullptr;  // the call waiting for the host thread
  std::exception_ptr pending_error_;                // what the last handed-over call threw
  bool worker_done_ = false;
};

}  // namespace mace_deploy
