#include "control/stats_prometheus.h"

#include <fmt/format.h>

namespace mtlsgw::control {

namespace {

// Label values escape backslash, double quote and newline (the format's
// only escapes).
std::string label_value(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

bool is_gauge(std::string_view name) {
  return name == "active" || name == "http_slots" || name == "ssl_pool_idle" || name == "tcp_buffers_held" ||
         name.starts_with("tcp_state_") || name.starts_with("connections_");
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string stats_to_prometheus(const StatsSnapshot& stats) {
  std::string out;
  for (const auto& [name, value] : stats.counters) {
    const std::string metric = fmt::format("mtlsgw_{}", name);
    family(out, metric, is_gauge(name) ? "gauge" : "counter", "summed over workers (docs/telemetry.md)");
    out += fmt::format("{} {}\n", metric, value);
  }
  family(out, "mtlsgw_drops", "counter", "frames dropped, by reason");
  for (const auto& [reason, value] : stats.drops) {
    out += fmt::format("mtlsgw_drops{{reason=\"{}\"}} {}\n", label_value(reason), value);
  }
  family(out, "mtlsgw_worker_busy_cycles", "counter", "TSC cycles of poll iterations that found work");
  for (const WorkerStats& w : stats.workers) {
    out += fmt::format("mtlsgw_worker_busy_cycles{{worker=\"{}\"}} {}\n", w.index, w.busy_cycles);
  }
  family(out, "mtlsgw_worker_idle_cycles", "counter", "TSC cycles of poll iterations and sleeps without work");
  for (const WorkerStats& w : stats.workers) {
    out += fmt::format("mtlsgw_worker_idle_cycles{{worker=\"{}\"}} {}\n", w.index, w.idle_cycles);
  }
  if (stats.tls.enabled) {
    for (const auto& [name, value] : stats.tls.counters) {
      const std::string metric = fmt::format("mtlsgw_tls_{}", name);
      family(out, metric, is_gauge(name) ? "gauge" : "counter", "TLS gateway, summed over workers");
      out += fmt::format("{} {}\n", metric, value);
    }
    family(out, "mtlsgw_tls_host_handshakes", "counter", "handshakes per host and outcome");
    for (const TlsHostStats& host : stats.tls.hosts) {
      const std::string h = label_value(host.name);
      out += fmt::format("mtlsgw_tls_host_handshakes{{host=\"{}\",outcome=\"ok\"}} {}\n", h, host.handshakes_ok);
      out += fmt::format("mtlsgw_tls_host_handshakes{{host=\"{}\",outcome=\"failed\"}} {}\n", h,
                         host.handshakes_failed);
    }
    family(out, "mtlsgw_tls_host_verify", "counter", "client-certificate verification outcomes per host and reason");
    for (const TlsHostStats& host : stats.tls.hosts) {
      for (size_t r = 0; r < tls::kVerifyReasonCount; ++r) {
        out += fmt::format("mtlsgw_tls_host_verify{{host=\"{}\",reason=\"{}\"}} {}\n", label_value(host.name),
                           tls::kVerifyReasonNames[r], host.verify[r]);
      }
    }
  }
  if (stats.tls.enabled) {
    family(out, "mtlsgw_rule_hits", "counter", "matches per rule: a log rule's hits, or the rule that decided");
    for (const auto& [name, hits] : stats.tls.rule_hits) {
      out += fmt::format("mtlsgw_rule_hits{{rule=\"{}\"}} {}\n", label_value(name), hits);
    }
  }
  family(out, "mtlsgw_memory_in_use_bytes", "gauge", "what connections hold (docs/telemetry.md /mtlsgw/memory)");
  out += fmt::format("mtlsgw_memory_in_use_bytes {}\n", stats.memory.in_use_bytes());
  return out;
}

}  // namespace mtlsgw::control
