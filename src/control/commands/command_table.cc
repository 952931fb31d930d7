#include <array>

#include "control/commands/command.h"

namespace mtlsgw::control {

namespace {

constexpr std::array kCommands = {
    CommandInfo{"host.add", host_add, true},       CommandInfo{"host.del", host_del, true},
    CommandInfo{"host.show", host_show, false},    CommandInfo{"host.list", host_list, false},
    CommandInfo{"ca.add", ca_add, true},           CommandInfo{"ca.del", ca_del, true},
    CommandInfo{"ca.list", ca_list, false},        CommandInfo{"crl.load", crl_load, true},
    CommandInfo{"revoke.add", revoke_add, true},   CommandInfo{"revoke.del", revoke_del, true},
    CommandInfo{"revoke.list", revoke_list, false}, CommandInfo{"rule.add", rule_add, true},
    CommandInfo{"rule.del", rule_del, true},       CommandInfo{"rule.move", rule_move, true},
    CommandInfo{"rule.list", rule_list, false},
};

}  // namespace

const CommandInfo* find_command(std::string_view name) {
  for (const CommandInfo& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

ErrorInfo error_from_config(const ConfigError& e) {
  // ConfigError's text is "path: problem"; the socket carries them apart.
  std::string message = e.what();
  if (!e.path().empty() && message.starts_with(e.path() + ": ")) message.erase(0, e.path().size() + 2);
  ErrorCode code = ErrorCode::bad_field;
  if (message.starts_with("is required")) {
    code = ErrorCode::missing_field;
  } else if (message.starts_with("unknown field")) {
    code = ErrorCode::unknown_field;
  } else if (const std::string& p = e.path(); p.ends_with("_pem") || p.ends_with(".cert") ||
                                               p.ends_with(".key") || p.ends_with(".crl")) {
    // Past the "is required" and "unknown field" cases, what is wrong with
    // a certificate, key or CRL field is its PEM content (or its file).
    code = ErrorCode::bad_pem;
  } else if (message.starts_with("no CA named") || message.starts_with("no host named")) {
    code = ErrorCode::not_found;
  }
  return ErrorInfo{code, std::move(message), e.path()};
}

CommandOutcome fail(ErrorCode code, std::string message, std::string where) {
  CommandOutcome out;
  out.error = ErrorInfo{code, std::move(message), std::move(where)};
  return out;
}

CommandOutcome fail(const ArgReader& reader) {
  CommandOutcome out;
  out.error = reader.error();
  if (!out.error) out.error = ErrorInfo{ErrorCode::internal, "argument check failed", ""};
  return out;
}

}  // namespace mtlsgw::control
