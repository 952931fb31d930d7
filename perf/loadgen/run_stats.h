#pragma once
// What a run counted: completions, bytes, latencies and failures by kind,
// over the whole measured period and over the current progress interval.

#include <cstdint>
#include <map>
#include <string>

#include "latency_histogram.h"

namespace mtlsgw::loadgen {

struct Counters {
  uint64_t connects = 0;            // TCP connections established
  uint64_t full_handshakes = 0;
  uint64_t resumed_handshakes = 0;
  uint64_t resumption_offered = 0;  // handshakes that offered a session
  uint64_t requests = 0;            // complete 2xx responses
  uint64_t connections_done = 0;    // every request answered, then closed
  uint64_t bytes_up = 0;            // request bodies sent
  uint64_t bytes_down = 0;          // response bodies received
  uint64_t failures = 0;
};

struct Latencies {
  LatencyHistogram handshake;   // connect() issued -> handshake complete
  LatencyHistogram request;     // request head written -> response complete
  LatencyHistogram connection;  // connect() issued -> last response complete
  void reset() {
    handshake.reset();
    request.reset();
    connection.reset();
  }
};

class RunStats {
 public:
  void handshake_done(uint64_t ns, bool offered, bool resumed);
  void connected() { ++total_.connects; ++interval_.connects; }
  void request_done(uint64_t ns, uint64_t up, uint64_t down);
  void connection_done(uint64_t ns);
  void failure(const std::string& kind, const std::string& detail);

  // Forget everything counted so far (the end of the warm-up).
  void reset();
  // Hand out the interval's counters and latencies and start a new interval.
  void take_interval(Counters& counters, Latencies& latencies);

  const Counters& total() const { return total_; }
  const Latencies& latencies() const { return total_latencies_; }
  const std::map<std::string, uint64_t>& failures_by_kind() const { return failures_; }
  const std::map<std::string, std::string>& first_detail() const { return first_detail_; }

 private:
  Counters total_, interval_;
  Latencies total_latencies_, interval_latencies_;
  std::map<std::string, uint64_t> failures_;
  std::map<std::string, std::string> first_detail_;
};

}  // namespace mtlsgw::loadgen
