#pragma once
// The run: one thread, one io_uring, --concurrency connection slots kept
// busy (a slot whose connection ended starts the next one at once: a closed
// loop, so latencies are those of a server kept exactly this busy, not of
// an open arrival rate), the warm-up, the progress lines, and the end after
// --duration or --count.

#include <cstdint>
#include <memory>
#include <vector>

#include "connection.h"
#include "options.h"
#include "run_stats.h"
#include "tls_client.h"

namespace mtlsgw::loadgen {

struct RunResult {
  double measured_s = 0;      // from the end of the warm-up to the end
  double cpu_user_s = 0;      // this process, over the same period
  double cpu_system_s = 0;
  uint64_t abandoned = 0;     // connections still open when the run ended
  uint64_t held = 0;          // of those, idle ones held after their request
};

class LoadDriver final : public ConnectionHost {
 public:
  LoadDriver(const Options& options, ClientTlsContext& tls, RunStats& stats);
  // Throws std::runtime_error when the ring cannot be set up.
  RunResult run();

  bool claim_request() override;
  void slot_free(uint32_t slot) override;

 private:
  Kind next_kind();
  void start_free_slots(uint64_t now);
  void print_progress(uint64_t now, uint64_t run_start, bool warming);
  uint64_t held() const;

  const Options& options_;
  ClientTlsContext& tls_;
  RunStats& stats_;
  std::vector<Kind> kind_cycle_;
  size_t kind_next_ = 0;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<uint32_t> free_slots_;
  uint64_t claimed_ = 0;
  uint64_t last_progress_ns_ = 0;
};

uint64_t monotonic_ns();
// SIGINT and SIGTERM end the run early; it still reports what it measured.
void stop_on_signals();

}  // namespace mtlsgw::loadgen
