#include "control/stats_json.h"

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

json counters_object(const std::vector<std::pair<std::string_view, uint64_t>>& counters) {
  json out = json::object();
  for (const auto& [name, value] : counters) out[std::string(name)] = value;
  return out;
}

}  // namespace

json stats_to_json(const StatsSnapshot& stats) {
  json out = json::object();
  out["counters"] = counters_object(stats.counters);
  json drops = json::object();
  for (const auto& [name, value] : stats.drops) {
    if (value != 0) drops[std::string(name)] = value;
  }
  out["dropped"] = stats.dropped_total;
  out["drops"] = drops;
  json workers = json::array();
  for (size_t w = 0; w < stats.workers.size(); ++w) {
    const WorkerStats& ws = stats.workers[w];
    json worker = {{"busy_cycles", ws.busy_cycles},
                   {"idle_cycles", ws.idle_cycles},
                   {"iterations", ws.iterations},
                   {"busy_iterations", ws.busy_iterations},
                   {"sleeps", ws.sleeps}};
    if (w < stats.worker_counters.size()) worker["counters"] = counters_object(stats.worker_counters[w]);
    workers.push_back(std::move(worker));
  }
  out["workers"] = workers;
  if (stats.tls.enabled) {
    json tls = json::object();
    tls["counters"] = counters_object(stats.tls.counters);
    json hosts = json::array();
    for (const TlsHostStats& host : stats.tls.hosts) {
      json h = {{"name", host.name},
                {"handshakes_ok", host.handshakes_ok},
                {"handshakes_failed", host.handshakes_failed},
                {"passed_unverified", host.passed_unverified}};
      json verify = json::object();
      for (size_t r = 0; r < tls::kVerifyReasonCount; ++r) {
        if (host.verify[r] != 0) verify[tls::kVerifyReasonNames[r]] = host.verify[r];
      }
      h["verify"] = verify;
      hosts.push_back(std::move(h));
    }
    tls["hosts"] = hosts;
    json rule_hits = json::object();
    for (const auto& [name, hits] : stats.tls.rule_hits) rule_hits[name] = hits;
    tls["rule_hits"] = rule_hits;
    out["tls"] = tls;
  }
  const MemoryStats& m = stats.memory;
  out["memory"] = {{"in_use_bytes", m.in_use_bytes()}, {"reserved_bytes", m.reserved_bytes},
                   {"tcbs", m.tcbs}, {"tcp_buffers", m.tcp_buffers}, {"tls_sessions", m.tls_sessions},
                   {"http_slots", m.http_slots}, {"ssl_pool_idle", m.ssl_pool_idle}};
  return out;
}

}  // namespace mtlsgw::control
