#pragma once
// A consistent-enough read of every worker's counters, summed, for the
// telemetry commands and the reports printed by the control thread.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/dataplane.h"

namespace mtlsgw::control {

// One direction of a worker's fault injectors (summed over its ports).
struct FaultStats {
  bool enabled = false;
  std::string spec;  // format_fault_spec(), when enabled
  dataplane::FaultInjector::Stats counts;
};

struct WorkerStats {
  unsigned index = 0;
  unsigned lcore = 0;
  uint64_t busy_cycles = 0;
  uint64_t idle_cycles = 0;
  uint64_t iterations = 0;
  uint64_t busy_iterations = 0;
  uint64_t sleeps = 0;
  FaultStats fault_rx;
  FaultStats fault_tx;
  double busy_percent() const noexcept {
    const uint64_t total = busy_cycles + idle_cycles;
    return total == 0 ? 0.0 : 100.0 * static_cast<double>(busy_cycles) / static_cast<double>(total);
  }
};

// One TLS host's handshake outcomes, summed over workers and listeners.
struct TlsHostStats {
  std::string name;
  uint64_t handshakes_ok = 0;
  uint64_t handshakes_failed = 0;
  uint64_t passed_unverified = 0;
  std::array<uint64_t, tls::kVerifyReasonCount> verify{};
};

struct TlsStats {
  bool enabled = false;  // some listener is "tls"
  std::vector<std::pair<std::string_view, uint64_t>> counters;  // gateway_counters.h, then "active"
  std::vector<TlsHostStats> hosts;
  std::vector<std::pair<std::string, uint64_t>> rule_hits;  // by rule name, every name ever used
};

// What the gateway holds for its connections now, summed over workers
// (/mtlsgw/memory, docs/telemetry.md). Issue 5's "memory per idle
// connection" is the change of in_use_bytes() over a number of idle
// connections, divided by that number.
struct MemoryStats {
  int64_t openssl_heap_bytes = -1;  // whole process; -1: not counted (openssl_heap.h)
  uint64_t tcbs = 0;                // TCBs in use, every state
  uint64_t tcb_bytes = 0;
  uint64_t tcp_buffers = 0;         // pool buffers attached to connections
  uint64_t tcp_buffer_bytes = 0;
  uint64_t tls_sessions = 0;        // gateway session slots in use
  uint64_t tls_session_bytes = 0;
  uint64_t http_slots = 0;          // `http` exchange slots in use
  uint64_t http_slot_bytes = 0;
  uint64_t ssl_pool_idle = 0;       // SSL objects waiting for a connection
  uint64_t ssl_pool_bytes = 0;      // their share of openssl_heap_bytes
  uint64_t reserved_bytes = 0;      // preallocated at start (pages backed on first use)
  uint64_t in_use_bytes() const noexcept {
    const uint64_t heap = openssl_heap_bytes > 0 ? static_cast<uint64_t>(openssl_heap_bytes) : 0;
    const uint64_t connections_heap = heap > ssl_pool_bytes ? heap - ssl_pool_bytes : 0;
    return connections_heap + tcb_bytes + tcp_buffer_bytes + tls_session_bytes + http_slot_bytes;
  }
};

struct StatsSnapshot {
  std::vector<std::pair<std::string_view, uint64_t>> counters;  // summed over workers, see below
  std::vector<std::pair<std::string_view, uint64_t>> drops;     // every reason, summed
  uint64_t dropped_total = 0;
  std::vector<WorkerStats> workers;
  std::vector<std::vector<std::pair<std::string_view, uint64_t>>> worker_counters;
  TlsStats tls;
  MemoryStats memory;
};

StatsSnapshot collect_stats(const dataplane::Dataplane& dataplane);

// In counters summed over workers, counts a segment that one worker passed
// to another (software dispatch) once in tcp_segments_in, as it counts a
// segment that reached its owner directly; per-worker values keep it in
// both (docs/telemetry.md).
void count_dispatched_segments_once(std::vector<std::pair<std::string_view, uint64_t>>& summed);

// Human-readable report: non-zero counters, drops by reason, worker load,
// and what each enabled fault injector did.
std::string format_report(const StatsSnapshot& stats);

}  // namespace mtlsgw::control
