#include "ctl/ctl_commands.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>

#include "ctl/ctl_certificate.h"
#include "mtlsgw_version.h"

namespace mtlsgw::ctl {
namespace {

using nlohmann::json;
using Action = std::variant<CommandRequest, BatchRequest, Finished>;
// Set by the chosen command's callback, run once parsing has succeeded; file
// reading happens there, outside CLI11.
using Builder = std::function<Action()>;

// A usage problem found while building a request (a file that cannot be
// read, options that do not fit together).
struct UsageProblem {
  std::string message;
};

Finished usage_error(const std::string& message) {
  return Finished{kExitUsage, "",
                  fmt::format("mtlsgwctl: {}\nRun with --help for more information.\n", message)};
}

std::string read_pem(const std::string& path) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    throw UsageProblem{fmt::format("cannot read {}: {}", path, std::strerror(errno))};
  }
  if (!S_ISREG(info.st_mode)) throw UsageProblem{fmt::format("{} is not a regular file", path)};
  if (static_cast<std::size_t>(info.st_size) > kMaxPemFileBytes) {
    throw UsageProblem{fmt::format("{} is larger than {} MiB, the most one PEM file may be", path,
                                   kMaxPemFileBytes >> 20)};
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw UsageProblem{fmt::format("cannot read {}: {}", path, std::strerror(errno))};
  return text.str();
}

bool given(const CLI::Option* option) { return option->count() > 0; }

// CLI11 reads "-5" into a uint64_t as 2^64 - 5; counts and indices are
// digits only.
CLI::Validator unsigned_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const bool digits = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos;
        return digits ? "" : fmt::format("{} is not a non-negative integer", text);
      },
      "", "");
}

// Accepts what `openssl x509 -fingerprint -sha256` prints (upper case,
// colons) and the access log's form (lower case), and sends the latter.
std::string normalize_fingerprint(const std::string& text) {
  std::string hex;
  for (char c : text) {
    if (c == ':') continue;
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      throw UsageProblem{fmt::format("--fingerprint {}: not hexadecimal", text)};
    }
    hex += c;
  }
  if (hex.size() != 64) {
    throw UsageProblem{fmt::format("--fingerprint {}: a SHA-256 fingerprint has 64 hex digits, "
                                   "this has {}",
                                   text, hex.size())};
  }
  return hex;
}

CLI::App* noun(CLI::App& app, const char* name, const char* description) {
  CLI::App* sub = app.add_subcommand(name, description);
  sub->require_subcommand(1);
  sub->fallthrough();
  return sub;
}

CLI::App* verb(CLI::App& parent, const char* name, const char* description) {
  CLI::App* sub = parent.add_subcommand(name, description);
  sub->fallthrough();
  return sub;
}

// A value option given once per occurrence, repeatable: `--alpn h2 --alpn
// http/1.1`. Without allow_extra_args(false) CLI11 would let `--client-ca a
// NAME` swallow the positional NAME.
CLI::Option* repeatable(CLI::App& app, const char* name, std::vector<std::string>& values,
                        const char* description) {
  return app.add_option(name, values, description)->allow_extra_args(false)->type_name("NAME");
}

// The positioning options shared by `rule add` and `rule move`.
struct Position {
  std::string before;
  std::string after;
  uint64_t position = 0;
  CLI::Option* before_option = nullptr;
  CLI::Option* after_option = nullptr;
  CLI::Option* position_option = nullptr;

  void add_to(CLI::App& app) {
    before_option = app.add_option("--before", before, "Place it just before rule NAME")
                        ->type_name("NAME");
    after_option = app.add_option("--after", after, "Place it just after rule NAME")
                       ->type_name("NAME");
    position_option = app.add_option("--position", position,
                                     "Place it at index N of the list (0: first)")
                          ->check(unsigned_number())->type_name("N");
    before_option->excludes(after_option)->excludes(position_option);
    after_option->excludes(position_option);
  }
  bool any() const { return given(before_option) || given(after_option) || given(position_option); }
  void write(json& args) const {
    if (given(before_option)) args["before"] = before;
    if (given(after_option)) args["after"] = after;
    if (given(position_option)) args["position"] = position;
  }
};

// The ways to name a revoked certificate, shared by `revoke add` and
// `revoke del`.
struct RevokedCertificate {
  std::string ca;
  std::string serial;
  std::string fingerprint;
  std::string cert_file;
  CLI::Option* ca_option = nullptr;
  CLI::Option* serial_option = nullptr;
  CLI::Option* fingerprint_option = nullptr;
  CLI::Option* cert_option = nullptr;

  void add_to(CLI::App& app) {
    ca_option = app.add_option("--ca", ca, "The issuing CA's name (with --serial)")
                    ->type_name("NAME");
    serial_option = app.add_option("--serial", serial,
                                   "The certificate's serial number in hex (with --ca)")
                        ->type_name("HEX");
    fingerprint_option = app.add_option("--fingerprint", fingerprint,
                                        "SHA-256 of the certificate's DER (64 hex digits, "
                                        "colons allowed)")
                             ->type_name("SHA256HEX");
    cert_option = app.add_option("--cert", cert_file,
                                 "A PEM certificate file: its SHA-256 fingerprint is sent")
                      ->type_name("FILE");
    ca_option->needs(serial_option);
    serial_option->needs(ca_option);
    fingerprint_option->excludes(ca_option)->excludes(serial_option)->excludes(cert_option);
    cert_option->excludes(ca_option)->excludes(serial_option);
  }
  void write(json& args, const char* verb_name) const {
    if (given(ca_option)) {
      args["ca"] = ca;
      args["serial"] = serial;
    } else if (given(fingerprint_option)) {
      args["fingerprint"] = normalize_fingerprint(fingerprint);
    } else if (given(cert_option)) {
      std::string error;
      auto fingerprint_hex = certificate_fingerprint(read_pem(cert_file), error);
      if (!fingerprint_hex) throw UsageProblem{fmt::format("{}: {}", cert_file, error)};
      args["fingerprint"] = *fingerprint_hex;
    } else {
      throw UsageProblem{fmt::format(
          "revoke {}: name the certificate with --ca and --serial, --fingerprint or --cert",
          verb_name)};
    }
  }
};

// A command without args.
void simple(CLI::App& parent, const char* name, const char* command, const char* description,
            Builder& build) {
  CLI::App* sub = verb(parent, name, description);
  const std::string command_name = command;
  sub->callback([&build, command_name] {
    build = [command_name]() -> Action { return CommandRequest{command_name, json::object()}; };
  });
}

// A command whose args are a single positional name.
void named(CLI::App& parent, const char* name, const char* command, const char* description,
           const char* positional_description, Builder& build) {
  CLI::App* sub = verb(parent, name, description);
  auto value = std::make_shared<std::string>();
  sub->add_option("name", *value, positional_description)->required()->type_name("NAME");
  const std::string command_name = command;
  sub->callback([&build, command_name, value] {
    build = [command_name, value]() -> Action {
      return CommandRequest{command_name, json{{"name", *value}}};
    };
  });
}

void add_host_commands(CLI::App& app, Builder& build) {
  CLI::App* host = noun(app, "host", "TLS hosts, chosen by the client's SNI");
  struct Fields {
    std::string name, cert, key, mtls, upstream, forward, min_version;
    std::vector<std::string> client_cas, alpn;
    uint64_t handshake_timeout_ms = 0, idle_timeout_ms = 0, connect_timeout_ms = 0;
    bool no_alpn = false, is_default = false;
  };
  auto f = std::make_shared<Fields>();
  CLI::App* add = verb(*host, "add", "Add a host, or replace the one of that name");
  add->add_option("name", f->name, "Host name (exact, or a *.wildcard)")->required()->type_name("NAME");
  add->add_option("--cert", f->cert, "PEM file: the host's certificate, then its intermediates")
      ->required()->type_name("FILE");
  add->add_option("--key", f->key, "PEM file: the certificate's private key, unencrypted")
      ->required()->type_name("FILE");
  auto* mtls = add->add_option("--mtls", f->mtls, "Client certificates: off, optional or required")
                   ->check(CLI::IsMember({"off", "optional", "required"}))->type_name("MODE");
  auto* client_cas = repeatable(*add, "--client-ca", f->client_cas,
                                "A CA whose client certificates the host accepts (repeatable)");
  auto* upstream = add->add_option("--upstream", f->upstream, "Origin server, A.B.C.D:PORT")
                       ->type_name("IP:PORT");
  auto* forward = add->add_option("--forward", f->forward, "What the origin gets: tcp, proxy_v2 or http")
                      ->check(CLI::IsMember({"tcp", "proxy_v2", "http"}))->type_name("MODE");
  auto* alpn = repeatable(*add, "--alpn", f->alpn, "An ALPN protocol, in order of preference (repeatable)")
                   ->type_name("PROTOCOL");
  auto* no_alpn = add->add_flag("--no-alpn", f->no_alpn, "Turn ALPN off for the host (alpn: [])");
  no_alpn->excludes(alpn);
  auto* min_version = add->add_option("--min-version", f->min_version, "Lowest TLS version: 1.2 or 1.3")
                          ->check(CLI::IsMember({"1.2", "1.3"}))->type_name("VERSION");
  auto* handshake = add->add_option("--handshake-timeout-ms", f->handshake_timeout_ms,
                                    "From TCP establishment to the end of the handshake")->check(unsigned_number())->type_name("N");
  auto* idle = add->add_option("--idle-timeout-ms", f->idle_timeout_ms,
                               "Without bytes either way")->check(unsigned_number())->type_name("N");
  auto* connect = add->add_option("--connect-timeout-ms", f->connect_timeout_ms,
                                  "For the connection to the upstream")->check(unsigned_number())->type_name("N");
  auto* is_default = add->add_flag("--default", f->is_default,
                                   "Make it the default host (no SNI, or an unknown one)");
  add->callback([&build, f, mtls, client_cas, upstream, forward, alpn, no_alpn, min_version,
                 handshake, idle, connect, is_default] {
    build = [=]() -> Action {
      json args = {{"name", f->name}, {"cert_pem", read_pem(f->cert)}, {"key_pem", read_pem(f->key)}};
      if (given(mtls)) args["mtls"] = f->mtls;
      if (given(client_cas)) args["client_cas"] = f->client_cas;
      if (given(upstream)) args["upstream"] = f->upstream;
      if (given(forward)) args["forward"] = f->forward;
      if (given(alpn)) args["alpn"] = f->alpn;
      if (given(no_alpn)) args["alpn"] = json::array();
      if (given(min_version)) args["min_version"] = f->min_version;
      if (given(handshake)) args["handshake_timeout_ms"] = f->handshake_timeout_ms;
      if (given(idle)) args["idle_timeout_ms"] = f->idle_timeout_ms;
      if (given(connect)) args["connect_timeout_ms"] = f->connect_timeout_ms;
      if (given(is_default)) args["default"] = true;
      return CommandRequest{"host.add", std::move(args)};
    };
  });
  named(*host, "del", "host.del", "Remove a host", "Host name", build);
  named(*host, "show", "host.show", "Show a host's settings", "Host name", build);
  simple(*host, "list", "host.list", "List the hosts", build);
}

void add_ca_commands(CLI::App& app, Builder& build) {
  CLI::App* ca = noun(app, "ca", "CAs that client certificates may chain to");
  struct Fields {
    std::string name, cert, crl;
    uint64_t max_depth = 0;
  };
  auto f = std::make_shared<Fields>();
  CLI::App* add = verb(*ca, "add", "Add a CA, or replace the one of that name");
  add->add_option("name", f->name, "CA name, as hosts' --client-ca refer to it")->required()->type_name("NAME");
  add->add_option("--cert", f->cert, "PEM file: the CA's root, optionally with intermediates")
      ->required()->type_name("FILE");
  auto* crl = add->add_option("--crl", f->crl, "PEM file: its CRLs")->type_name("FILE");
  auto* depth = add->add_option("--max-depth", f->max_depth,
                                "Deepest position of the trust anchor in a client's chain")->check(unsigned_number())->type_name("N");
  add->callback([&build, f, crl, depth] {
    build = [=]() -> Action {
      json args = {{"name", f->name}, {"cert_pem", read_pem(f->cert)}};
      if (given(crl)) args["crl_pem"] = read_pem(f->crl);
      if (given(depth)) args["max_depth"] = f->max_depth;
      return CommandRequest{"ca.add", std::move(args)};
    };
  });
  named(*ca, "del", "ca.del", "Remove a CA (no host may still name it)", "CA name", build);
  simple(*ca, "list", "ca.list", "List the CAs", build);
}

void add_crl_commands(CLI::App& app, Builder& build) {
  CLI::App* crl = noun(app, "crl", "Certificate revocation lists of the CAs");
  struct Fields {
    std::string ca, file;
  };
  auto f = std::make_shared<Fields>();
  CLI::App* load = verb(*crl, "load", "Replace a CA's CRLs with those of a PEM file");
  load->add_option("ca", f->ca, "CA name")->required()->type_name("CA");
  load->add_option("file", f->file, "PEM file with one or more CRLs")->required()->type_name("FILE");
  load->callback([&build, f] {
    build = [f]() -> Action {
      return CommandRequest{"crl.load", json{{"ca", f->ca}, {"crl_pem", read_pem(f->file)}}};
    };
  });
}

void add_revoke_commands(CLI::App& app, Builder& build) {
  CLI::App* revoke = noun(app, "revoke", "Certificates refused on top of the CRLs");
  auto added = std::make_shared<RevokedCertificate>();
  auto close = std::make_shared<bool>(false);
  CLI::App* add = verb(*revoke, "add", "Revoke a client certificate");
  added->add_to(*add);
  auto* close_option = add->add_flag("--close", *close,
                                     "Also close the connections that use it now");
  add->callback([&build, added, close_option] {
    build = [=]() -> Action {
      json args = json::object();
      added->write(args, "add");
      if (given(close_option)) args["close_connections"] = true;
      return CommandRequest{"revoke.add", std::move(args)};
    };
  });
  auto removed = std::make_shared<RevokedCertificate>();
  CLI::App* del = verb(*revoke, "del", "Take a certificate off the revocation list");
  removed->add_to(*del);
  del->callback([&build, removed] {
    build = [=]() -> Action {
      json args = json::object();
      removed->write(args, "del");
      return CommandRequest{"revoke.del", std::move(args)};
    };
  });
  simple(*revoke, "list", "revoke.list", "List the revoked certificates", build);
}

void add_rule_commands(CLI::App& app, Builder& build) {
  CLI::App* rule = noun(app, "rule", "Rules on connections, in order");
  struct Fields {
    std::string name, expression, action;
    Position position;
  };
  auto f = std::make_shared<Fields>();
  CLI::App* add = verb(*rule, "add", "Add a rule (at the end unless placed)");
  add->add_option("name", f->name, "Rule name")->required()->type_name("NAME");
  add->add_option("--expression", f->expression, "What the rule matches")->required()->type_name("EXPR");
  add->add_option("--action", f->action, "block, allow or log")
      ->required()->check(CLI::IsMember({"block", "allow", "log"}))->type_name("ACTION");
  f->position.add_to(*add);
  add->callback([&build, f] {
    build = [f]() -> Action {
      json args = {{"name", f->name}, {"expression", f->expression}, {"action", f->action}};
      f->position.write(args);
      return CommandRequest{"rule.add", std::move(args)};
    };
  });
  named(*rule, "del", "rule.del", "Remove a rule", "Rule name", build);
  simple(*rule, "list", "rule.list", "List the rules in order", build);
  auto m = std::make_shared<Fields>();
  CLI::App* move = verb(*rule, "move", "Place a rule elsewhere in the order");
  move->add_option("name", m->name, "Rule name")->required()->type_name("NAME");
  m->position.add_to(*move);
  move->callback([&build, m] {
    build = [m]() -> Action {
      if (!m->position.any()) throw UsageProblem{"rule move: give --before, --after or --position"};
      json args = {{"name", m->name}};
      m->position.write(args);
      return CommandRequest{"rule.move", std::move(args)};
    };
  });
}

void add_other_commands(CLI::App& app, Builder& build) {
  simple(app, "begin", "begin",
         "Start a transaction on this connection (use inside a batch)", build);
  simple(app, "commit", "commit", "Apply the transaction's changes at once", build);
  simple(app, "abort", "abort", "Drop the transaction's changes", build);
  simple(app, "ping", "ping", "Check that the gateway answers", build);

  auto worker = std::make_shared<uint64_t>(0);
  CLI::App* stats = verb(app, "stats", "The gateway's counters");
  auto* worker_option = stats->add_option("--worker", *worker, "Only worker N's counters")->check(unsigned_number())->type_name("N");
  auto prometheus = std::make_shared<bool>(false);
  stats->add_flag("--prometheus", *prometheus, "Prometheus text exposition format instead");
  stats->callback([&build, worker, worker_option, prometheus] {
    build = [=]() -> Action {
      json args = json::object();
      if (given(worker_option)) args["worker"] = *worker;
      if (*prometheus) args["format"] = "prometheus";
      return CommandRequest{"stats", std::move(args)};
    };
  });

  CLI::App* config = noun(app, "config", "The running configuration");
  simple(*config, "dump", "config.dump", "Print the running configuration as JSON", build);
}

// Parses args (reversed, as CLI11 wants them) with the command tree,
// optionally with the global options and `batch`.
Action parse(std::vector<std::string> reversed, bool top_level, GlobalOptions& options) {
  CLI::App app{"mtlsgwctl: control client for the mtlsgw gateway", "mtlsgwctl"};
  app.require_subcommand(1);
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return fmt::format("mtlsgwctl: {}\nRun with --help for more information.\n", e.what());
  });
  Builder build;
  if (top_level) {
    app.set_version_flag("-V,--version", fmt::format("mtlsgwctl {}", MTLSGW_VERSION));
    if (const char* environment = std::getenv(kSocketEnvironment); environment != nullptr && *environment) {
      options.socket = environment;
    }
    app.add_option("-s,--socket", options.socket,
                   fmt::format("Control socket (default: ${}, else {})", kSocketEnvironment,
                               kDefaultSocket))
        ->type_name("PATH");
    app.add_flag("--json", options.json, "Print each result as one line of JSON");
    app.add_option("--timeout", options.timeout_s,
                   "Seconds to wait for the connection and for each answer (0: no limit)")
        ->check(CLI::Range(0.0, 86400.0))->type_name("SEC");
    app.footer(
        "Every command sends one request to the gateway's control socket; see docs/control.md.\n"
        "Exit codes: 0 done, 1 the gateway refused (its error is printed), 2 usage error,\n"
        "3 no connection, timeout or malformed answer.\n"
        "Transactions belong to one connection: put begin ... commit in a batch.");
    auto file = std::make_shared<std::string>("-");
    CLI::App* batch = app.add_subcommand(
        "batch", "Run the commands of FILE (one per line, '-' for standard input) on one connection, "
                 "stopping at the first error");
    batch->add_option("file", *file, "Batch file (default: standard input)")->type_name("FILE");
    batch->callback([&build, file] { build = [file]() -> Action { return BatchRequest{*file}; }; });
  }
  add_host_commands(app, build);
  add_ca_commands(app, build);
  add_crl_commands(app, build);
  add_revoke_commands(app, build);
  add_rule_commands(app, build);
  add_other_commands(app, build);

  std::ostringstream out;
  std::ostringstream err;
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e, out, err);
    // Help and version are successes; every usage error is exit code 2.
    return Finished{rc == 0 ? kExitOk : kExitUsage, out.str(), err.str()};
  }
  if (!build) return usage_error("no command given");
  try {
    return build();
  } catch (const UsageProblem& problem) {
    return usage_error(problem.message);
  }
}

}  // namespace

Invocation parse_command_line(const std::vector<std::string>& argv) {
  Invocation invocation;
  std::vector<std::string> reversed(argv.rbegin(), argv.rend());
  if (!reversed.empty()) reversed.pop_back();  // the program name
  invocation.action = parse(std::move(reversed), true, invocation.options);
  return invocation;
}

std::variant<CommandRequest, Finished> build_request(const std::vector<std::string>& words) {
  GlobalOptions unused;
  Action action = parse(std::vector<std::string>(words.rbegin(), words.rend()), false, unused);
  if (auto* request = std::get_if<CommandRequest>(&action)) return std::move(*request);
  if (auto* finished = std::get_if<Finished>(&action)) {
    if (finished->exit_code != kExitOk) return std::move(*finished);
  }
  return usage_error("only commands belong in a batch (no --help, no batch)");
}

}  // namespace mtlsgw::ctl
