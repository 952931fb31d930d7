#pragma once
// A poll-mode worker: one per non-main lcore, pinned by EAL. It owns RX/TX
// queue `index` of every port, one Interface (addresses, ARP table) per port,
// and its counters; it runs to completion and never takes a lock. Other
// threads reach it only through its inbox ring (neighbour learning from
// peers) and a request/response mailbox (snapshots for telemetry).

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "common/counter.h"
#include "common/handles.h"
#include "common/siphash.h"
#include "dataplane/fault_injector.h"
#include "dataplane/flow_steering.h"
#include "dataplane/gateway/access_log_queue.h"
#include "dataplane/gateway/policy.h"
#include "dataplane/gateway/tls_gateway.h"
#include "dataplane/idle.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/tcp_stack.h"
#include "dataplane/services/services.h"
#include "dataplane/port.h"
#include "dataplane/port_io.h"

namespace mtlsgw::dataplane {

struct ListenerSpec {
  uint16_t port = 0;
  services::ServiceSpec service;
};

struct WorkerSettings {
  bool busy_poll = false;
  uint32_t idle_sleep_max_us = 200;
  uint32_t tick_interval_us = 10'000;  // ARP ageing and retries
  net::tcp::TcpConfig tcp;
  std::vector<ListenerSpec> listeners;
  SipKey key{};  // ISNs, ephemeral ports, SYN cookies: one key for all workers
  // Off by default; seeded per worker, port and direction for replay.
  FaultSpec fault_rx;
  FaultSpec fault_tx;
  uint64_t fault_seed = 1;
  // The "tls" listeners write one record per connection into the worker's
  // access log queue, drained by the control side's writer.
  bool access_log = false;
  // Revocations and rules, shared by every worker (null: none ever).
  std::shared_ptr<gateway::PolicyCell> policy;
  // Client-certificate verdicts shared by every worker (null: none).
  std::shared_ptr<tls::VerdictCache> verdict_cache;
  // Names of the rule-hit counter slots (null: hits counted in totals only).
  std::shared_ptr<const gateway::HostSlots> rule_slots;
};

struct PortBinding {
  Port* port = nullptr;
  net::InterfaceConfig interface;
};

// Where a poll-mode core's time goes: TSC cycles spent in iterations that
// found work, and in iterations (and sleeps) that did not.
struct WorkerLoad {
  Counter busy_cycles;
  Counter idle_cycles;
  Counter iterations;
  Counter busy_iterations;
  Counter sleeps;
};

enum class FaultDirection : uint8_t { rx, tx };

struct NeighborRow {
  uint16_t port_id;
  net::ArpCache::Snapshot entry;
};

class Worker final : private net::NeighborListener {
 public:
  Worker(unsigned index, unsigned lcore, const std::vector<PortBinding>& ports,
         const WorkerSettings& settings, const std::atomic<bool>& stop);
  ~Worker() override;
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Every worker, this one included, in index order: peers receive what
  // this worker learns about neighbours, and segments of flows they own.
  void set_workers(const std::vector<Worker*>& workers);

  // The poll loop; returns when stop becomes true.
  int run() noexcept;

  unsigned index() const noexcept { return index_; }
  unsigned lcore() const noexcept { return lcore_; }
  const net::StackCounters& counters() const noexcept { return counters_; }
  const net::tcp::TcpCounters& tcp_counters() const noexcept { return tcp_->counters(); }
  const WorkerLoad& load() const noexcept { return load_; }
  // Sizes fixed at construction (any thread may ask): the TCP stack's
  // reservation (tcp_stack.h) and one buffer of its pool.
  size_t tcp_reserved_bytes() const noexcept { return tcp_->reserved_bytes(); }
  uint32_t tcp_buffer_size() const noexcept { return tcp_->config().buffer_size; }
  // The worker's "tls" listeners, in listener order (their counters are
  // read by telemetry and the exit report).
  const std::vector<gateway::TlsGateway*>& gateways() const noexcept { return gateways_; }
  // Null unless WorkerSettings::access_log.
  gateway::AccessLogQueue* access_log_queue() const noexcept { return access_log_.get(); }
  // The fault injectors of one direction, summed over this worker's ports;
  // all zero when that direction has none. Any thread may ask.
  FaultInjector::Stats fault_stats(FaultDirection direction) const noexcept;
  const FaultSpec& fault_spec(FaultDirection direction) const noexcept {
    return direction == FaultDirection::rx ? settings_.fault_rx : settings_.fault_tx;
  }

  // From another thread: asks the running worker for its neighbour tables.
  // Empty when the worker does not answer within the timeout.
  std::optional<std::vector<NeighborRow>> neighbors(std::chrono::milliseconds timeout);

 private:
  struct NeighborMessage {
    uint32_t ip;
    uint16_t port_id;
    rte_ether_addr mac;
  };
  // rte_ring_elem stores elements in multiples of 4 bytes.
  static_assert(sizeof(NeighborMessage) % 4 == 0);

  void neighbor_learned(uint16_t port_id, net::Ipv4Address ip,
                        const rte_ether_addr& mac) noexcept override;
  void receive_from_peers(uint64_t now_us) noexcept;
  uint32_t receive_dispatched(uint64_t now_us) noexcept;
  static bool owns_port(void* self, const net::tcp::FourTuple& tuple) noexcept;
  static bool dispatch_foreign(void* self, net::Interface& iface, const net::Frame& frame,
                               const net::tcp::FourTuple& tuple) noexcept;
  const FlowSteering* steering_for_port(uint16_t port_id) const noexcept;
  const FlowSteering* steering_for_address(net::Ipv4Address local_ip) const noexcept;
  void serve_requests(uint64_t now_us) noexcept;
  net::Interface* interface_for(uint16_t port_id) noexcept;
  uint64_t now_us(uint64_t tsc) const noexcept;

  unsigned index_;
  unsigned lcore_;
  WorkerSettings settings_;
  const std::atomic<bool>& stop_;
  net::StackCounters counters_;
  WorkerLoad load_;
  std::vector<std::unique_ptr<PortQueueIo>> ios_;
  std::vector<std::unique_ptr<FaultInjector>> rx_faults_;     // per port, may be null
  std::vector<std::unique_ptr<FaultInjectingIo>> tx_faults_;  // per port, may be null
  std::vector<std::unique_ptr<net::Interface>> interfaces_;
  std::vector<FlowSteering> steering_;  // per port, like interfaces_: a copy each worker reads alone
  std::unique_ptr<net::tcp::TcpStack> tcp_;
  std::vector<std::unique_ptr<net::tcp::TcpApp>> services_;
  std::vector<gateway::TlsGateway*> gateways_;
  std::unique_ptr<gateway::AccessLogQueue> access_log_;
  std::vector<Worker*> peers_;
  std::vector<Worker*> workers_;
  RingHandle inbox_;
  RingHandle packet_inbox_;  // mbufs of flows this worker owns, from peers
  uint64_t tsc_start_ = 0;
  double us_per_tsc_ = 0;

  // Mailbox: requests are serialised by request_lock_ on the asking side;
  // the worker only compares two sequence numbers per iteration.
  std::mutex request_lock_;
  std::atomic<uint32_t> requested_{0};
  std::atomic<uint32_t> served_{0};
  std::vector<NeighborRow> neighbor_reply_;
};

}  // namespace mtlsgw::dataplane
