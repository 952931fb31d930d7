#pragma once
// mtlsgwctl's command line: the global options and the NOUN VERB commands,
// each turned into the control request it stands for (the table in
// docs/control.md "Commands"). No socket here, so that the mapping is tested
// on its own.

#include <cstddef>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace mtlsgw::ctl {

inline constexpr const char* kDefaultSocket = "/run/mtlsgw/control.sock";
inline constexpr const char* kSocketEnvironment = "MTLSGW_CONTROL_SOCKET";
// The control socket takes 32 MiB requests; a host.add carries a
// certificate chain and a key, a ca.add a bundle and a CRL: 8 MiB each.
inline constexpr std::size_t kMaxPemFileBytes = std::size_t{8} << 20;

enum ExitCode : int {
  kExitOk = 0,
  kExitRefused = 1,    // the gateway answered with an error
  kExitUsage = 2,
  kExitTransport = 3,  // cannot connect, timeout, malformed answer
};

struct GlobalOptions {
  std::string socket = kDefaultSocket;  // -s, else $MTLSGW_CONTROL_SOCKET, else the default
  bool json = false;
  double timeout_s = 30;  // 0: no timeout
};

// One control request, without its id (the client numbers them).
struct CommandRequest {
  std::string command;
  nlohmann::json args = nlohmann::json::object();
  bool operator==(const CommandRequest&) const = default;
};

// `mtlsgwctl batch [FILE]`; "-" is standard input.
struct BatchRequest {
  std::string file = "-";
};

// Nothing to send: print and exit (--help, --version, a usage error).
struct Finished {
  int exit_code = kExitOk;
  std::string out;  // for standard output
  std::string err;  // for standard error
};

struct Invocation {
  GlobalOptions options;
  std::variant<CommandRequest, BatchRequest, Finished> action;
};

// argv as main() gets it, the program name first.
Invocation parse_command_line(const std::vector<std::string>& argv);

// One command of a batch: NOUN VERB [args] without global options. A batch
// within a batch and --help are usage errors there.
std::variant<CommandRequest, Finished> build_request(const std::vector<std::string>& words);

}  // namespace mtlsgw::ctl
