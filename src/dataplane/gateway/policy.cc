#include "dataplane/gateway/policy.h"

#include <rte_common.h>
#include <rte_rcu_qsbr.h>

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <thread>

namespace mtlsgw::gateway {

PolicyCell::PolicyCell(uint32_t max_workers) : current_(new Policy) {
  const size_t bytes = rte_rcu_qsbr_get_memsize(max_workers == 0 ? 1 : max_workers);
  // rte_rcu_qsbr lays its per-thread counters out on cache lines; plain
  // aligned memory serves without EAL (unit tests), and it is control-plane
  // memory anyway.
  void* memory = std::aligned_alloc(RTE_CACHE_LINE_SIZE, RTE_ALIGN_CEIL(bytes, RTE_CACHE_LINE_SIZE));
  if (memory == nullptr) throw std::bad_alloc();
  qsbr_ = static_cast<rte_rcu_qsbr*>(memory);
  if (rte_rcu_qsbr_init(qsbr_, max_workers == 0 ? 1 : max_workers) != 0) {
    std::free(memory);
    throw std::runtime_error("rte_rcu_qsbr_init failed");
  }
}

PolicyCell::~PolicyCell() {
  for (auto& [token, policy] : waiting_) delete policy;
  delete current_.load();
  std::free(qsbr_);
}

void PolicyCell::online(uint32_t worker) noexcept {
  rte_rcu_qsbr_thread_register(qsbr_, worker);
  rte_rcu_qsbr_thread_online(qsbr_, worker);
}

void PolicyCell::offline(uint32_t worker) noexcept {
  rte_rcu_qsbr_thread_offline(qsbr_, worker);
  rte_rcu_qsbr_thread_unregister(qsbr_, worker);
}

void PolicyCell::quiescent(uint32_t worker) noexcept { rte_rcu_qsbr_quiescent(qsbr_, worker); }

bool PolicyCell::wait_for_readers(uint64_t token, std::chrono::milliseconds timeout) noexcept {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // A poll iteration takes microseconds; sleeping between checks keeps the
  // control thread off the workers' cores while it waits.
  while (rte_rcu_qsbr_check(qsbr_, token, false) != 1) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  return true;
}

bool PolicyCell::publish(std::unique_ptr<const Policy> next, std::chrono::milliseconds timeout) {
  const Policy* old = current_.exchange(next.release(), std::memory_order_acq_rel);
  const uint64_t token = rte_rcu_qsbr_start(qsbr_);
  waiting_.emplace_back(token, old);
  const bool all_passed = wait_for_readers(token, timeout);
  // Tokens grow: every entry up to the first one still waited on is safe.
  while (!waiting_.empty() && rte_rcu_qsbr_check(qsbr_, waiting_.front().first, false) == 1) {
    delete waiting_.front().second;
    waiting_.erase(waiting_.begin());
  }
  return all_passed;
}

}  // namespace mtlsgw::gateway
