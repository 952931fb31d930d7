#include "run_stats.h"

namespace mtlsgw::loadgen {

void RunStats::handshake_done(uint64_t ns, bool offered, bool resumed) {
  for (Counters* c : {&total_, &interval_}) {
    if (offered) ++c->resumption_offered;
    if (resumed) ++c->resumed_handshakes;
    else ++c->full_handshakes;
  }
  total_latencies_.handshake.record(ns);
  interval_latencies_.handshake.record(ns);
}

void RunStats::request_done(uint64_t ns, uint64_t up, uint64_t down) {
  for (Counters* c : {&total_, &interval_}) {
    ++c->requests;
    c->bytes_up += up;
    c->bytes_down += down;
  }
  total_latencies_.request.record(ns);
  interval_latencies_.request.record(ns);
}

void RunStats::connection_done(uint64_t ns) {
  ++total_.connections_done;
  ++interval_.connections_done;
  total_latencies_.connection.record(ns);
  interval_latencies_.connection.record(ns);
}

void RunStats::failure(const std::string& kind, const std::string& detail) {
  ++total_.failures;
  ++interval_.failures;
  ++failures_[kind];
  if (!detail.empty()) first_detail_.emplace(kind, detail);
}

void RunStats::reset() {
  total_ = interval_ = Counters{};
  total_latencies_.reset();
  interval_latencies_.reset();
  failures_.clear();
  first_detail_.clear();
}

void RunStats::take_interval(Counters& counters, Latencies& latencies) {
  counters = interval_;
  latencies = interval_latencies_;
  interval_ = Counters{};
  interval_latencies_.reset();
}

}  // namespace mtlsgw::loadgen
