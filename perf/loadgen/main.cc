// loadgen: a TLS (mutual TLS) HTTP/1.1 load generator over kernel sockets,
// one thread and one io_uring, for measuring mtlsgw against nginx and
// HAProxy (issue 5; docs/benchmarks.md, "Load generator").
//
// Exit codes: 0 the run completed with failures within --max-failure-ratio;
// 1 more failures than that, or no request completed at all; 2 the run
// could not start (options, certificates, io_uring, CPU pinning).

#include <arpa/inet.h>
#include <sched.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <stdexcept>

#include "load_driver.h"
#include "options.h"
#include "report.h"
#include "run_stats.h"
#include "tls_client.h"

namespace {

using namespace mtlsgw::loadgen;

constexpr int kExitFailures = 1;
constexpr int kExitCannotStart = 2;

bool parse_target(const std::string& text, sockaddr_in& out) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  const std::string ip = text.substr(0, colon);
  unsigned long port = 0;
  try {
    size_t used = 0;
    port = std::stoul(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) return false;
  } catch (const std::exception&) {
    return false;
  }
  if (port == 0 || port > 65535) return false;
  out = sockaddr_in{};
  out.sin_family = AF_INET;
  out.sin_port = htons(static_cast<uint16_t>(port));
  return inet_pton(AF_INET, ip.c_str(), &out.sin_addr) == 1;
}

// "handshake=2,resume=1,requests=1,bulk=0"
bool parse_mix(const std::string& text, std::array<unsigned, kKinds>& weights) {
  weights.fill(0);
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq == std::string::npos) return false;
    const std::string name = item.substr(0, eq);
    size_t k = 0;
    while (k < kKinds && name != kKindNames[k]) ++k;
    // An idle connection never frees its slot: in a mix it would only
    // shrink the concurrency of the other kinds.
    if (k == kKinds || static_cast<Kind>(k) == Kind::kIdle) return false;
    try {
      weights[k] = static_cast<unsigned>(std::stoul(item.substr(eq + 1)));
    } catch (const std::exception&) {
      return false;
    }
    if (weights[k] > 1000) return false;
    start = end + 1;
  }
  for (unsigned w : weights) {
    if (w != 0) return true;
  }
  return false;
}

std::string validate(Options& o, const std::string& mix, const std::string& direction) {
  if (!parse_target(o.target_text, o.target)) return "--target: expected IPv4:PORT";
  if (o.cert.empty() != o.key.empty()) return "--cert and --key go together";
  if (o.insecure == !o.cafile.empty()) {
    return "give exactly one of --cafile (verify the server) and --insecure (do not)";
  }
  if (o.mode == "mix") {
    if (!parse_mix(mix, o.weights)) {
      return "--mix: expected KIND=WEIGHT,... with KIND handshake, resume, requests or bulk";
    }
  } else {
    o.weights.fill(0);
    size_t k = 0;
    while (k < kKinds && o.mode != kKindNames[k]) ++k;
    o.weights[k] = 1;
  }
  o.bulk_direction = direction == "up"     ? BulkDirection::kUp
                     : direction == "both" ? BulkDirection::kBoth
                                           : BulkDirection::kDown;
  if (o.count == 0 && o.duration_s <= 0) return "give --duration > 0 or --count > 0";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  std::string mix = "handshake=1,resume=1,requests=1,bulk=1";
  std::string direction = "down";
  CLI::App app{
      "loadgen: mutual-TLS HTTP/1.1 load over kernel sockets, one thread, one io_uring.\n"
      "Modes: handshake (connect, full handshake, one request, close), resume (the same,\n"
      "offering a session from an earlier connection), requests (keep-alive GETs),\n"
      "bulk (keep-alive requests with --bulk-bytes bodies), idle (one keep-alive GET,\n"
      "then the connection is held open and silent until the run ends: the server's\n"
      "memory per idle connection), mix (connections of each kind by --mix weights).\n"
      "Prints a progress line per --progress-interval on stderr and the report on\n"
      "stdout (--json for perf/compare)."};
  app.add_option("--target", o.target_text, "Server address, IPv4:PORT")->required();
  app.add_option("--sni", o.sni, "TLS server_name (default: none)");
  app.add_option("--host", o.host, "HTTP Host field (default: the SNI, else the target)");
  app.add_option("--path", o.path, "Request target of GETs, and of bulk POSTs")
      ->capture_default_str();
  app.add_option("--cert", o.cert, "Client certificate chain (PEM)")->check(CLI::ExistingFile);
  app.add_option("--key", o.key, "Client private key (PEM)")->check(CLI::ExistingFile);
  app.add_option("--cafile", o.cafile, "Verify the server against these CAs, and its name "
                                       "against --sni (else --host)")
      ->check(CLI::ExistingFile);
  app.add_flag("--insecure", o.insecure,
               "Skip server-certificate verification (the client then costs less than the "
               "server)");
  app.add_option("--tls", o.tls_version, "Protocol version")
      ->check(CLI::IsMember({"1.2", "1.3"}))
      ->capture_default_str();
  app.add_option("--alpn", o.alpn, "ALPN protocol offered (empty: no ALPN)")
      ->capture_default_str();
  app.add_option("--mode", o.mode, "handshake, resume, requests, bulk, idle or mix")
      ->check(CLI::IsMember({"handshake", "resume", "requests", "bulk", "idle", "mix"}))
      ->capture_default_str();
  app.add_option("--mix", mix, "Mode mix: connections of each kind per round")
      ->capture_default_str();
  app.add_option("-c,--concurrency", o.concurrency, "Connections kept open at once")
      ->check(CLI::Range(1u, 60000u))
      ->capture_default_str();
  auto* duration = app.add_option("-d,--duration", o.duration_s,
                                  "Seconds to measure (after the warm-up)")
                       ->check(CLI::PositiveNumber)
                       ->capture_default_str();
  app.add_option("-n,--count", o.count,
                 "Stop after this many requests (after the warm-up) instead of a duration")
      ->excludes(duration);
  app.add_option("--warmup", o.warmup_s, "Seconds of load before measuring")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--requests-per-connection", o.requests_per_connection,
                 "Keep-alive kinds: close after this many requests (0: never in requests and "
                 "bulk modes; 100 for requests and 4 for bulk connections in a mix)")
      ->capture_default_str();
  app.add_option("--bulk-bytes", o.bulk_bytes, "Bulk: body size, bytes")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 40))
      ->capture_default_str();
  app.add_option("--bulk-direction", direction,
                 "Bulk: down (GET --bulk-path, the server sends --bulk-bytes), up (POST of "
                 "--bulk-bytes to --path), both (alternate POST and GET on each connection)")
      ->check(CLI::IsMember({"down", "up", "both"}))
      ->capture_default_str();
  app.add_option("--bulk-path", o.bulk_down_path,
                 "Bulk down: request target answering --bulk-bytes bytes; {bytes} is replaced "
                 "by the size (tests/integration/tls_origins.py answers /bytes/N)")
      ->capture_default_str();
  app.add_option("--cpu", o.cpu, "Pin the process to this CPU (sched_setaffinity)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", o.json, "Final report as JSON");
  app.add_option("--progress-interval", o.progress_interval_s,
                 "Seconds between progress lines on stderr (0: none)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--timeout", o.timeout_s,
                 "A connection with no progress for this many seconds fails")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--max-failure-ratio", o.max_failure_ratio,
                 "Exit 1 when failures / (requests + failures) exceeds this")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitCannotStart;
  }
  if (const std::string problem = validate(o, mix, direction); !problem.empty()) {
    std::fprintf(stderr, "loadgen: %s\n", problem.c_str());
    return kExitCannotStart;
  }
  if (o.cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(o.cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
      std::perror("loadgen: sched_setaffinity");
      return kExitCannotStart;
    }
  }
  std::signal(SIGPIPE, SIG_IGN);
  stop_on_signals();

  RunStats stats;
  RunResult result;
  try {
    ClientTlsContext tls(o);
    LoadDriver driver(o, tls, stats);
    result = driver.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return kExitCannotStart;
  }
  if (o.json) {
    std::printf("%s\n", report_json(o, stats, result).dump(1).c_str());
  } else {
    std::printf("%s", report_text(o, stats, result).c_str());
  }
  std::fflush(stdout);
  if (stats.total().requests == 0) {
    std::fprintf(stderr, "loadgen: no request completed\n");
    return kExitFailures;
  }
  if (failure_ratio(stats) > o.max_failure_ratio) {
    std::fprintf(stderr, "loadgen: failure ratio %.6f above --max-failure-ratio %g\n",
                 failure_ratio(stats), o.max_failure_ratio);
    return kExitFailures;
  }
  return 0;
}
