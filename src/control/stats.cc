#include "control/stats.h"

#include <fmt/format.h>

#include <algorithm>

#include "dataplane/tls/openssl_heap.h"

namespace mtlsgw::control {
namespace {

FaultStats fault_stats_of(const dataplane::Worker& worker, dataplane::FaultDirection direction) {
  FaultStats f;
  f.enabled = worker.fault_spec(direction).enabled();
  if (f.enabled) f.spec = dataplane::format_fault_spec(worker.fault_spec(direction));
  f.counts = worker.fault_stats(direction);
  return f;
}

void append_faults(std::string& out, unsigned worker, const char* direction, const FaultStats& f) {
  if (!f.enabled) return;
  out += fmt::format("\nworker {} fault-{} ({}):", worker, direction, f.spec);
  f.counts.for_each([&](const char* name, uint64_t value) { out += fmt::format(" {}={}", name, value); });
}

void add_tls(TlsStats& tls, const gateway::TlsGateway& gw) {
  size_t i = 0;
  auto add = [&](std::string_view name, uint64_t value) {
    if (i == tls.counters.size()) tls.counters.emplace_back(name, 0);
    tls.counters[i++].second += value;
  };
  gw.counters().visit(add);
  add("active", gw.counters().active.get());
  add("http_slots", gw.counters().http_slots.get());
  add("ssl_pool_idle", gw.counters().ssl_pool_idle.get());
  tls.enabled = true;
  const std::vector<std::string> rule_names = gw.rule_slot_names();
  for (uint32_t r = 0; r < rule_names.size(); ++r) {
    auto it = std::find_if(tls.rule_hits.begin(), tls.rule_hits.end(),
                           [&](const auto& entry) { return entry.first == rule_names[r]; });
    if (it == tls.rule_hits.end()) {
      tls.rule_hits.emplace_back(rule_names[r], 0);
      it = tls.rule_hits.end() - 1;
    }
    it->second += gw.rule_hits(r);
  }
  const gateway::HostCounterTable& hosts = gw.host_counters();
  const std::vector<std::string> names = gw.host_slot_names();
  for (uint32_t h = 0; h < hosts.size() && h < names.size(); ++h) {
    const std::string& name = names[h];
    auto it = std::find_if(tls.hosts.begin(), tls.hosts.end(), [&](const TlsHostStats& t) { return t.name == name; });
    if (it == tls.hosts.end()) {
      tls.hosts.push_back(TlsHostStats{name});
      it = tls.hosts.end() - 1;
    }
    const gateway::HostCounters& c = hosts[h];
    it->handshakes_ok += c.handshakes_ok.get();
    it->handshakes_failed += c.handshakes_failed.get();
    it->passed_unverified += c.passed_unverified.get();
    for (size_t r = 0; r < tls::kVerifyReasonCount; ++r) it->verify[r] += c.verify[r].get();
  }
}

void append_tls(std::string& out, const TlsStats& tls) {
  if (!tls.enabled) return;
  out += "\ntls:";
  for (const auto& [name, value] : tls.counters) {
    if (value != 0) out += fmt::format(" {}={}", name, value);
  }
  for (const TlsHostStats& host : tls.hosts) {
    out += fmt::format("\ntls host {}: handshakes_ok={} handshakes_failed={} passed_unverified={}", host.name,
                       host.handshakes_ok, host.handshakes_failed, host.passed_unverified);
    for (size_t r = 0; r < tls::kVerifyReasonCount; ++r) {
      if (host.verify[r] != 0) out += fmt::format(" verify_{}={}", tls::kVerifyReasonNames[r], host.verify[r]);
    }
  }
}

void add_memory(MemoryStats& m, const dataplane::Worker& worker) {
  const net::tcp::TcpCounters& tcp = worker.tcp_counters();
  uint64_t tcbs = 0;
  for (const Counter& state : tcp.connections_by_state) tcbs += state.get();
  m.tcbs += tcbs;
  m.tcb_bytes += tcbs * net::tcp::TcpStack::tcb_bytes();
  m.tcp_buffers += tcp.buffers_held.get();
  m.tcp_buffer_bytes += tcp.buffers_held.get() * worker.tcp_buffer_size();
  m.reserved_bytes += worker.tcp_reserved_bytes();
  for (const gateway::TlsGateway* gw : worker.gateways()) {
    const uint64_t sessions = gw->counters().active.get();
    const uint64_t http = gw->counters().http_slots.get();
    m.tls_sessions += sessions;
    m.tls_session_bytes += sessions * gateway::TlsGateway::session_bytes();
    m.http_slots += http;
    m.http_slot_bytes += http * gateway::TlsGateway::http_slot_bytes();
    m.ssl_pool_idle += gw->counters().ssl_pool_idle.get();
    m.ssl_pool_bytes += gw->pooled_ssl_bytes();
    m.reserved_bytes += gw->reserved_bytes();
  }
}

}  // namespace

StatsSnapshot collect_stats(const dataplane::Dataplane& dataplane) {
  StatsSnapshot stats;
  for (std::string_view name : net::kDropReasonNames) stats.drops.emplace_back(name, 0);
  bool first = true;
  for (const auto& worker : dataplane.workers()) {
    const net::StackCounters& c = worker->counters();
    std::vector<std::pair<std::string_view, uint64_t>> own;
    size_t i = 0;
    auto add = [&](std::string_view name, uint64_t value) {
      own.emplace_back(name, value);
      if (first) {
        stats.counters.emplace_back(name, value);
      } else {
        stats.counters[i].second += value;
      }
      ++i;
    };
    net::for_each_counter(c, add);
    net::tcp::for_each_counter(worker->tcp_counters(), add);
    first = false;
    for (size_t r = 0; r < net::kDropReasonCount; ++r) {
      const uint64_t n = c.drops[r].get();
      stats.drops[r].second += n;
      stats.dropped_total += n;
      own.emplace_back(net::kDropReasonNames[r], n);
    }
    stats.worker_counters.push_back(std::move(own));

    const dataplane::WorkerLoad& load = worker->load();
    WorkerStats w;
    w.index = worker->index();
    w.lcore = worker->lcore();
    w.busy_cycles = load.busy_cycles.get();
    w.idle_cycles = load.idle_cycles.get();
    w.iterations = load.iterations.get();
    w.busy_iterations = load.busy_iterations.get();
    w.sleeps = load.sleeps.get();
    w.fault_rx = fault_stats_of(*worker, dataplane::FaultDirection::rx);
    w.fault_tx = fault_stats_of(*worker, dataplane::FaultDirection::tx);
    stats.workers.push_back(w);
    for (const gateway::TlsGateway* gw : worker->gateways()) add_tls(stats.tls, *gw);
    add_memory(stats.memory, *worker);
  }
  stats.memory.openssl_heap_bytes = tls::openssl_heap_bytes();
  count_dispatched_segments_once(stats.counters);
  return stats;
}

void count_dispatched_segments_once(std::vector<std::pair<std::string_view, uint64_t>>& summed) {
  // A segment passed to the worker that owns its connection (software
  // dispatch) went through the TCP input of both workers, the receiver's
  // (which looked it up and passed it on) and the owner's, so each counted
  // it in tcp_segments_in; its Ethernet and IPv4 counts are the receiver's
  // alone (Interface::input_dispatched).
  uint64_t* segments_in = nullptr;
  uint64_t dispatched = 0;
  for (auto& [name, value] : summed) {
    if (name == "tcp_segments_in") segments_in = &value;
    if (name == "dispatched_from_peer") dispatched = value;
  }
  // Counters are read one after another while the workers run: never
  // below zero, whatever the order.
  if (segments_in != nullptr) *segments_in -= std::min(*segments_in, dispatched);
}

std::string format_report(const StatsSnapshot& stats) {
  std::string out = "counters:";
  for (const auto& [name, value] : stats.counters) {
    if (value != 0) out += fmt::format(" {}={}", name, value);
  }
  out += fmt::format("\ndrops: total={}", stats.dropped_total);
  for (const auto& [name, value] : stats.drops) {
    if (value != 0) out += fmt::format(" {}={}", name, value);
  }
  for (const WorkerStats& w : stats.workers) {
    out += fmt::format(
        "\nworker {} (lcore {}): busy {:.2f}% ({} busy / {} idle cycles), {} iterations, {} "
        "sleeps",
        w.index, w.lcore, w.busy_percent(), w.busy_cycles, w.idle_cycles, w.iterations,
        w.sleeps);
    append_faults(out, w.index, "rx", w.fault_rx);
    append_faults(out, w.index, "tx", w.fault_tx);
  }
  append_tls(out, stats.tls);
  const MemoryStats& m = stats.memory;
  out += fmt::format("\nmemory: in_use_bytes={} openssl_heap_bytes={} tcbs={} tcp_buffers={} tls_sessions={} "
                     "http_slots={} reserved_bytes={}",
                     m.in_use_bytes(), m.openssl_heap_bytes, m.tcbs, m.tcp_buffers, m.tls_sessions, m.http_slots,
                     m.reserved_bytes);
  out += '\n';
  return out;
}

}  // namespace mtlsgw::control
