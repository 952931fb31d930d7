#include "report.h"

#include <fmt/format.h>

namespace mtlsgw::loadgen {
namespace {

double ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }
double per_second(uint64_t n, double s) { return s > 0 ? static_cast<double>(n) / s : 0.0; }
constexpr double kMB = 1e6;  // MB = 10^6 bytes, as in research/baseline-this-machine.md

nlohmann::json latency_json(const LatencyHistogram& h) {
  return {{"count", h.count()},
          {"mean", ms(static_cast<uint64_t>(h.mean()))},
          {"p50", ms(h.percentile(0.50))},
          {"p99", ms(h.percentile(0.99))},
          {"p999", ms(h.percentile(0.999))},
          {"max", ms(h.max())}};
}

std::string brief_latency(const char* name, const LatencyHistogram& h) {
  if (h.count() == 0) return {};
  return fmt::format("  {} p50 {:.2f} p99 {:.2f} ms", name, ms(h.percentile(0.5)),
                     ms(h.percentile(0.99)));
}

}  // namespace

double failure_ratio(const RunStats& stats) {
  const Counters& c = stats.total();
  const uint64_t attempts = c.requests + c.failures;
  return attempts == 0 ? 0.0 : static_cast<double>(c.failures) / static_cast<double>(attempts);
}

std::string progress_line(double elapsed_s, double interval_s, const Counters& c,
                          const Latencies& l, unsigned active) {
  return fmt::format(
      "[{:6.1f} s] {:8.1f} hs/s ({:.0f} % resumed) {:9.1f} req/s  down {:.1f} MB/s  up {:.1f} "
      "MB/s{}{}  failures {}  active {}",
      elapsed_s, per_second(c.full_handshakes + c.resumed_handshakes, interval_s),
      c.full_handshakes + c.resumed_handshakes == 0
          ? 0.0
          : 100.0 * static_cast<double>(c.resumed_handshakes) /
                static_cast<double>(c.full_handshakes + c.resumed_handshakes),
      per_second(c.requests, interval_s), per_second(c.bytes_down, interval_s) / kMB,
      per_second(c.bytes_up, interval_s) / kMB, brief_latency("hs", l.handshake),
      brief_latency("req", l.request), c.failures, active);
}

nlohmann::json report_json(const Options& o, const RunStats& stats, const RunResult& r) {
  const Counters& c = stats.total();
  const double s = r.measured_s;
  const uint64_t handshakes = c.full_handshakes + c.resumed_handshakes;
  nlohmann::json failures = nlohmann::json::object();
  for (const auto& [kind, n] : stats.failures_by_kind()) failures[kind] = n;
  nlohmann::json details = nlohmann::json::object();
  for (const auto& [kind, text] : stats.first_detail()) details[kind] = text;
  return {
      {"mode", o.mode},
      {"target", o.target_text},
      {"tls", o.tls_version},
      {"concurrency", o.concurrency},
      {"cpu", o.cpu},
      {"warmup_s", o.warmup_s},
      {"measured_s", s},
      {"handshakes",
       {{"count", handshakes},
        {"per_s", per_second(handshakes, s)},
        {"full", c.full_handshakes},
        {"resumed", c.resumed_handshakes},
        {"offered_session", c.resumption_offered}}},
      {"connections",
       {{"established", c.connects}, {"completed", c.connections_done},
        {"per_s", per_second(c.connections_done, s)}, {"open_at_end", r.abandoned},
        {"held_idle", r.held}}},
      {"requests", {{"count", c.requests}, {"per_s", per_second(c.requests, s)}}},
      {"bytes",
       {{"down", c.bytes_down}, {"up", c.bytes_up},
        {"down_mb_per_s", per_second(c.bytes_down, s) / kMB},
        {"up_mb_per_s", per_second(c.bytes_up, s) / kMB}}},
      {"latency_ms",
       {{"handshake", latency_json(stats.latencies().handshake)},
        {"request", latency_json(stats.latencies().request)},
        {"connection", latency_json(stats.latencies().connection)}}},
      {"failures",
       {{"count", c.failures}, {"ratio", failure_ratio(stats)}, {"by_kind", failures},
        {"first_detail", details}}},
      {"client_cpu",
       {{"user_s", r.cpu_user_s}, {"system_s", r.cpu_system_s},
        {"percent", s > 0 ? 100.0 * (r.cpu_user_s + r.cpu_system_s) / s : 0.0}}},
  };
}

std::string report_text(const Options& o, const RunStats& stats, const RunResult& r) {
  const Counters& c = stats.total();
  const double s = r.measured_s;
  const uint64_t handshakes = c.full_handshakes + c.resumed_handshakes;
  std::string out = fmt::format(
      "loadgen: mode {}, target {}, TLS {}, {} connections, measured {:.2f} s{}{}\n", o.mode,
      o.target_text, o.tls_version, o.concurrency, s,
      o.warmup_s > 0 ? fmt::format(" after {:.1f} s of warm-up", o.warmup_s) : "",
      o.cpu >= 0 ? fmt::format(", pinned to CPU {}", o.cpu) : "");
  out += fmt::format("  handshakes   {:10} {:12.1f} /s   full {}, resumed {} (of {} offered a session)\n",
                     handshakes, per_second(handshakes, s), c.full_handshakes,
                     c.resumed_handshakes, c.resumption_offered);
  out += fmt::format("  requests     {:10} {:12.1f} /s\n", c.requests, per_second(c.requests, s));
  out += fmt::format("  connections  {:10} {:12.1f} /s   closed after their last response; {} open at the end\n",
                     c.connections_done, per_second(c.connections_done, s), r.abandoned);
  if (o.weights[size_t(Kind::kIdle)] != 0) {
    out += fmt::format("  idle         {:10} held open and silent after one request each\n", r.held);
  }
  out += fmt::format("  body bytes   down {} ({:.1f} MB/s), up {} ({:.1f} MB/s)\n", c.bytes_down,
                     per_second(c.bytes_down, s) / kMB, c.bytes_up, per_second(c.bytes_up, s) / kMB);
  out += "  latency (ms)      count       p50       p99      p999       max      mean\n";
  const auto row = [&](const char* name, const LatencyHistogram& h) {
    if (h.count() == 0) return;
    out += fmt::format("    {:<12} {:10} {:9.2f} {:9.2f} {:9.2f} {:9.2f} {:9.2f}\n", name,
                       h.count(), ms(h.percentile(0.5)), ms(h.percentile(0.99)),
                       ms(h.percentile(0.999)), ms(h.max()), ms(static_cast<uint64_t>(h.mean())));
  };
  row("handshake", stats.latencies().handshake);
  row("request", stats.latencies().request);
  row("connection", stats.latencies().connection);
  out += fmt::format("  failures     {} ({:.3f} % of attempts)\n", c.failures,
                     100.0 * failure_ratio(stats));
  for (const auto& [kind, n] : stats.failures_by_kind()) {
    const auto detail = stats.first_detail().find(kind);
    out += fmt::format("    {:<32} {:8}{}\n", kind, n,
                       detail == stats.first_detail().end() ? "" : "   first: " + detail->second);
  }
  out += fmt::format("  client CPU   {:.0f} % of one CPU (user {:.2f} s, system {:.2f} s)\n",
                     s > 0 ? 100.0 * (r.cpu_user_s + r.cpu_system_s) / s : 0.0, r.cpu_user_s,
                     r.cpu_system_s);
  return out;
}

}  // namespace mtlsgw::loadgen
