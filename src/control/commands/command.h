#pragma once
// The control socket's commands over the gateway's state (a Config: hosts,
// CAs, revocations, rules). Each command reads its args, checks them against
// the state it is applied to, and changes that state or answers from it; it
// never touches the running gateway. ControlService (control_service.h)
// decides which state a command applies to (a transaction's staged copy or
// a copy of the committed one) and publishes the result.
//
// One file per noun: host_commands.cc, ca_commands.cc, revoke_commands.cc,
// rule_commands.cc.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "control/config.h"
#include "control/control_protocol.h"

namespace mtlsgw::control {

// What commands may need beyond the state: checks that build real objects
// (a host's TLS context, a CA's trust store, a rule's compiled program), so
// that a bad certificate, key, CRL or expression is refused by the command
// that brings it, with its field, rather than by the commit.
struct CommandChecks {
  // Each returns an error message (empty: fine).
  std::function<std::string(const Config& state, const HostConfig& host)> host;
  std::function<std::string(const CaConfig& ca)> ca;
  // The rules language's verdict on an expression, with the position.
  std::function<std::optional<ErrorInfo>(const RuleConfig& rule, const std::string& where)> rule;
};

struct CommandOutcome {
  std::optional<ErrorInfo> error;
  nlohmann::json result = nlohmann::json::object();
  bool changed = false;          // the state was changed (a commit follows)
  bool close_revoked = false;    // `revoke add` with close_connections
};

using CommandFn = CommandOutcome (*)(const nlohmann::json& args, Config& state, const CommandChecks& checks);

struct CommandInfo {
  std::string_view name;
  CommandFn run;
  bool mutates;
};

// The table of state commands (not begin/commit/abort/stats/ping, which
// ControlService answers itself); null when unknown.
const CommandInfo* find_command(std::string_view name);

// The error a ConfigError becomes on the socket: its path is the field
// ("args.cert_pem"), and its message says what is wrong.
ErrorInfo error_from_config(const ConfigError& e);

// Command sets, one per noun file.
CommandOutcome host_add(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome host_del(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome host_show(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome host_list(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome ca_add(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome ca_del(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome ca_list(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome crl_load(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome revoke_add(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome revoke_del(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome revoke_list(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome rule_add(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome rule_del(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome rule_move(const nlohmann::json& args, Config& state, const CommandChecks& checks);
CommandOutcome rule_list(const nlohmann::json& args, Config& state, const CommandChecks& checks);

// Shared by the noun files.
CommandOutcome fail(ErrorCode code, std::string message, std::string where = "");
CommandOutcome fail(const ArgReader& reader);

}  // namespace mtlsgw::control
