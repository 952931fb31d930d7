#include "load_driver.h"

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <string>

#include "report.h"
#include "uring.h"

namespace mtlsgw::loadgen {
namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;
// How often timeouts are looked for, and the longest wait for a completion.
constexpr uint64_t kTickNs = 50'000'000;

volatile std::sig_atomic_t stop_signal = 0;

void on_stop_signal(int) { stop_signal = 1; }

uint64_t seconds_to_ns(double s) { return static_cast<uint64_t>(s * 1e9); }

void cpu_seconds(double& user, double& system) {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  user = static_cast<double>(usage.ru_utime.tv_sec) + usage.ru_utime.tv_usec / 1e6;
  system = static_cast<double>(usage.ru_stime.tv_sec) + usage.ru_stime.tv_usec / 1e6;
}

}  // namespace

void stop_on_signals() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

uint64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSecond + static_cast<uint64_t>(ts.tv_nsec);
}

LoadDriver::LoadDriver(const Options& options, ClientTlsContext& tls, RunStats& stats)
    : options_(options), tls_(tls), stats_(stats) {
  // The kinds interleaved by weight: round r takes every kind whose weight
  // exceeds r, so weights 2,1,1,0 cycle handshake, resume, requests, handshake.
  const unsigned rounds = *std::max_element(options.weights.begin(), options.weights.end());
  for (unsigned round = 0; round < rounds; ++round) {
    for (size_t k = 0; k < kKinds; ++k) {
      if (options.weights[k] > round) kind_cycle_.push_back(static_cast<Kind>(k));
    }
  }
}

Kind LoadDriver::next_kind() {
  const Kind kind = kind_cycle_[kind_next_];
  kind_next_ = (kind_next_ + 1) % kind_cycle_.size();
  return kind;
}

bool LoadDriver::claim_request() {
  if (options_.count != 0 && claimed_ >= options_.count) return false;
  ++claimed_;
  return true;
}

void LoadDriver::slot_free(uint32_t slot) { free_slots_.push_back(slot); }

void LoadDriver::start_free_slots(uint64_t now) {
  while (!free_slots_.empty()) {
    if (!claim_request()) return;
    const uint32_t slot = free_slots_.back();
    free_slots_.pop_back();
    if (!connections_[slot]->start(next_kind(), now)) {
      // Out of descriptors or memory: try again at the next tick rather
      // than spin.
      free_slots_.push_back(slot);
      return;
    }
  }
}

uint64_t LoadDriver::held() const {
  uint64_t n = 0;
  for (const auto& c : connections_) n += c->phase() == Connection::Phase::kHolding ? 1 : 0;
  return n;
}

void LoadDriver::print_progress(uint64_t now, uint64_t run_start, bool warming) {
  if (now - last_progress_ns_ < 1'000'000) return;  // one was printed just now
  Counters counters;
  Latencies latencies;
  stats_.take_interval(counters, latencies);
  const double interval_s = static_cast<double>(now - last_progress_ns_) / 1e9;
  last_progress_ns_ = now;
  const unsigned active = static_cast<unsigned>(connections_.size() - free_slots_.size());
  // "held N" lets perf/compare wait until every idle connection is up.
  const std::string held_text =
      options_.weights[size_t(Kind::kIdle)] != 0 ? " held " + std::to_string(held()) : "";
  std::fprintf(stderr, "%s%s%s\n",
               progress_line(static_cast<double>(now - run_start) / 1e9, interval_s, counters,
                             latencies, active)
                   .c_str(),
               held_text.c_str(), warming ? "  (warm-up)" : "");
}

RunResult LoadDriver::run() {
  const unsigned n = options_.concurrency;
  Ring ring(n);
  const RequestSet requests = build_requests(options_);
  std::vector<uint8_t> plaintext(64 * 1024);
  LoadContext context{options_, requests, ring, tls_, stats_, *this, plaintext, {}};
  // Keep-alive connections in a mix close after a while, so that the mix
  // keeps mixing; on their own they stay open for the whole run.
  const bool mix = options_.mode == "mix";
  const unsigned per_connection = options_.requests_per_connection;
  context.requests_per_connection[size_t(Kind::kHandshake)] = 1;
  context.requests_per_connection[size_t(Kind::kResume)] = 1;
  context.requests_per_connection[size_t(Kind::kRequests)] =
      per_connection != 0 ? per_connection : (mix ? 100 : 0);
  context.requests_per_connection[size_t(Kind::kBulk)] =
      per_connection != 0 ? per_connection : (mix ? 4 : 0);
  context.requests_per_connection[size_t(Kind::kIdle)] = 0;

  for (uint32_t slot = 0; slot < n; ++slot) {
    connections_.push_back(std::make_unique<Connection>(context, slot));
    free_slots_.push_back(n - 1 - slot);
  }

  const uint64_t run_start = monotonic_ns();
  uint64_t measure_start = run_start + seconds_to_ns(options_.warmup_s);
  bool warming = options_.warmup_s > 0;
  const uint64_t progress_ns = seconds_to_ns(options_.progress_interval_s);
  const uint64_t timeout_ns = seconds_to_ns(options_.timeout_s);
  const uint64_t end = options_.count == 0 ? measure_start + seconds_to_ns(options_.duration_s)
                                           : UINT64_MAX;
  RunResult result;
  double user0 = 0, system0 = 0;
  cpu_seconds(user0, system0);
  last_progress_ns_ = run_start;
  uint64_t next_tick = run_start + kTickNs;
  uint64_t now = run_start;

  for (;;) {
    start_free_slots(now);
    if (options_.count != 0 && claimed_ >= options_.count && free_slots_.size() == n) break;
    // The completions of one wait share one timestamp, taken when the wait
    // returned: the granularity is one pass of this loop.
    uint64_t reaped = 0;
    ring.wait(kTickNs, [&](uint32_t slot, Op op, int res) {
      if (reaped == 0) reaped = monotonic_ns();
      connections_[slot]->on_completion(op, res, reaped);
    });
    now = monotonic_ns();
    if (progress_ns != 0 && now - last_progress_ns_ >= progress_ns) {
      print_progress(now, run_start, warming);
    }
    if (warming && now >= measure_start) {
      warming = false;
      if (progress_ns != 0) print_progress(now, run_start, true);  // the warm-up's last part
      stats_.reset();
      claimed_ = 0;
      measure_start = now;
      cpu_seconds(user0, system0);
    }
    if (now >= next_tick) {
      next_tick = now + kTickNs;
      for (auto& c : connections_) c->check_timeout(now, timeout_ns);
    }
    if (now >= end || stop_signal != 0) break;
  }

  result.measured_s = static_cast<double>(now - measure_start) / 1e9;
  double user1 = 0, system1 = 0;
  cpu_seconds(user1, system1);
  result.cpu_user_s = user1 - user0;
  result.cpu_system_s = system1 - system0;
  result.abandoned = n - free_slots_.size();
  result.held = held();

  // Close what is still open; its operations come back cancelled.
  for (auto& c : connections_) c->abandon();
  const uint64_t give_up = monotonic_ns() + 5 * kNsPerSecond;
  while (free_slots_.size() < n && monotonic_ns() < give_up) {
    ring.wait(kTickNs, [&](uint32_t slot, Op op, int res) {
      connections_[slot]->on_completion(op, res, monotonic_ns());
    });
  }
  return result;
}

}  // namespace mtlsgw::loadgen
