#include "runtime/funnelled_exchange.h"

#include <ATen/ThreadLocalState.h>

namespace mace_deploy {

void FunnelledExchange::forward(at::Tensor features, int64_t n_local, int64_t layer) {
  on_host_thread([&] { host_.forward(features, n_local, layer); });
}

void FunnelledExchange::reverse(at::Tensor gradients, int64_t n_local, int64_t layer) {
  on_host_thread([&] { host_.reverse(gradients, n_local, layer); });
}

void FunnelledExchange::on_host_thread(const std::function<void()>& call) {
  if (std::this_thread::get_id() == host_thread_) {
    call();
    return;
  }
  std::unique_lock lock(mutex_);
  pending_ = &call;
  changed_.notify_all();
  changed_.wait(lock, [&] { return pending_ == nullptr; });
  if (pending_error_) std::rethrow_exception(std::exchange(pending_error_, nullptr));
}

void FunnelledExchange::run_on_worker(const std::function<void()>& work) {
  std::exception_ptr work_error;
  const at::ThreadLocalState torch_state;  // grad mode and the like, as on the host thread
  std::thread worker([&] {
    try {
      const at::ThreadLocalStateGuard guard(torch_state);
      work();
    } catch (...) {
      work_error = std::current_exception();
    }
    const std::lock_guard lock(mutex_);
    worker_done_ = true;
    changed_.notify_all();
  });
  {
    std::unique_lock lock(mutex_);
    while (true) {
      changed_.wait(lock, [&] { return pending_ != nullptr || worker_done_; });
      if (pending_ == nullptr) break;  // the worker is done
      try {
        (*pending_)();
      } catch (...) {
        pending_error_ = std::current_exception();
      }
      pending_ = nullptr;
      changed_.notify_all();
    }
    worker_done_ = false;
  }
  worker.join();
  if (work_error) std::rethrow_exception(work_error);
}

}  // namespace mace_deploy
