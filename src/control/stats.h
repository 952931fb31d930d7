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
};

struct StatsSnapshot {
  std::vector<std::pair<std::string_view, uint64_t>> counters;  // summed over workers, see below
  std::vector<std::pair<std::string_view, uint64_t>> drops;     // every reason, summed
  uint64_t dropped_total = 0;
  std::vector<WorkerStats> workers;
  std::vector<std::vector<std::pair<std::string_view, uint64_t>>> worker_counters;
  TlsStats tls;
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
