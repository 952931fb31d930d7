#pragma once
// What the operator decides per connection and per request, apart from the
// hosts: the revocations (`revoke add`) and the rules (`rule add`). One
// immutable Policy is shared by every worker and replaced whole on each
// commit that changes it; unlike GatewayTables it holds no SSL_CTX, so a
// revocation or a rule takes effect without touching the hosts' contexts or
// the session caches.
//
// Publication is RCU with quiescent-state reclamation (DPDK's
// rte_rcu_qsbr): the control thread swaps the pointer and keeps the old
// Policy until every online worker has reported a quiescent state, which a
// worker does once per poll iteration, between packets; a worker reads the
// pointer as often as it likes inside an iteration and keeps no Policy
// pointer across iterations. The read path is one acquire load: no lock, no
// reference count, no write to a shared line.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct rte_rcu_qsbr;

namespace mtlsgw::tls {
class RevocationSet;
}
namespace mtlsgw::rules {
class RuleTable;
}

namespace mtlsgw::gateway {

struct Policy {
  uint64_t generation = 0;
  // Null: nothing revoked by the operator (CRLs live in the trust stores).
  std::shared_ptr<const tls::RevocationSet> revocations;
  // Null: no rules, every connection and request is allowed.
  std::shared_ptr<const rules::RuleTable> rules;
  // rules' counter slots (host_slots.h's registry, by rule name), one per
  // rule in table order: a rule's hits add up under its name across
  // changes of the table.
  std::vector<uint32_t> rule_slots;
  // `revoke add --close`: workers close the live connections whose client
  // certificate this policy revokes, once, when they first see it.
  bool close_revoked = false;
};

class PolicyCell {
 public:
  // Readers are the workers 0..max_workers-1 (their index is the QSBR
  // thread id). Throws std::bad_alloc / std::runtime_error at setup.
  explicit PolicyCell(uint32_t max_workers);
  ~PolicyCell();
  PolicyCell(const PolicyCell&) = delete;
  PolicyCell& operator=(const PolicyCell&) = delete;

  // Worker: the current policy, valid until this worker's next quiescent().
  // Never null (an empty Policy at first).
  const Policy* read() const noexcept { return current_.load(std::memory_order_acquire); }

  // Worker: registration when its loop starts and ends, and one report per
  // iteration that it holds no Policy pointer.
  void online(uint32_t worker) noexcept;
  void offline(uint32_t worker) noexcept;
  void quiescent(uint32_t worker) noexcept;

  // Control thread: makes `next` current, then waits (up to `timeout`) until
  // every online worker has passed a quiescent state, so that the caller
  // may answer "committed" knowing the next handshake on any worker sees
  // it; the superseded policy is freed then. False when some worker did not
  // report in time (it is stuck or stopped): the old policy is kept aside
  // and freed by a later publish or the destructor.
  bool publish(std::unique_ptr<const Policy> next, std::chrono::milliseconds timeout);

  uint64_t generation() const noexcept { return read()->generation; }

 private:
  bool wait_for_readers(uint64_t token, std::chrono::milliseconds timeout) noexcept;

  std::atomic<const Policy*> current_;
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::vector<std::pair<uint64_t, const Policy*>> waiting_;  // (token, superseded) not yet safe to free
};

}  // namespace mtlsgw::gateway
