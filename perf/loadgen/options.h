#pragma once
// What one loadgen run does, as given on the command line (main.cc).

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>

namespace mtlsgw::loadgen {

// What a connection does between its connect and its close.
enum class Kind : uint8_t {
  kHandshake,  // full handshake, one request with Connection: close
  kResume,     // the same, offering the session of an earlier connection
  kRequests,   // keep-alive requests
  kBulk,       // keep-alive requests with large bodies
  kIdle,       // one keep-alive request, then held open and silent until the end
};
constexpr size_t kKinds = 5;
constexpr const char* kKindNames[kKinds] = {"handshake", "resume", "requests", "bulk", "idle"};

enum class BulkDirection : uint8_t { kDown, kUp, kBoth };

struct Options {
  sockaddr_in target{};
  std::string target_text;
  std::string sni;    // empty: no server_name extension
  std::string host;   // the Host field; empty: the SNI, else the target's address
  std::string path = "/";
  std::string bulk_down_path = "/bytes/{bytes}";  // {bytes} is replaced
  std::string cert, key, cafile;
  bool insecure = false;
  std::string tls_version = "1.3";
  std::string alpn = "http/1.1";  // empty: no ALPN extension

  std::string mode = "handshake";
  // Connections of each kind per round of the mix (mode "mix"); one mode:
  // only that kind.
  std::array<unsigned, kKinds> weights{1, 0, 0, 0, 0};
  unsigned concurrency = 64;
  double duration_s = 10;
  uint64_t count = 0;  // requests to complete (0: run for duration_s)
  double warmup_s = 0;
  unsigned requests_per_connection = 0;  // keep-alive kinds; 0: see main.cc
  uint64_t bulk_bytes = 1 << 20;
  BulkDirection bulk_direction = BulkDirection::kDown;

  int cpu = -1;
  bool json = false;
  double progress_interval_s = 1;
  double timeout_s = 10;  // no progress on a connection for this long: a failure
  double max_failure_ratio = 0;
};

}  // namespace mtlsgw::loadgen
