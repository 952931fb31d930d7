// revoke add | del | list: certificates refused from the next handshake on,
// by a CA's name and a serial, or by SHA-256 fingerprint.

#include <fmt/format.h>

#include <algorithm>

#include "control/commands/command.h"
#include "control/config_writer.h"

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

// The entry without "close_connections", which is an instruction for this
// commit, not part of the revocation kept in the state.
std::optional<RevocationConfig> read_revocation(const json& args, const Config& state, bool* close,
                                                CommandOutcome* error) {
  if (!args.is_object()) {
    *error = fail(ErrorCode::bad_field, "expected an object", "args");
    return std::nullopt;
  }
  json entry = args;
  if (auto it = entry.find("close_connections"); it != entry.end()) {
    if (close == nullptr || !it->is_boolean()) {
      *error = fail(close == nullptr ? ErrorCode::unknown_field : ErrorCode::bad_field,
                    close == nullptr ? "unknown field (only revoke add closes connections)" : "expected true or false",
                    "args.close_connections");
      return std::nullopt;
    }
    *close = it->get<bool>();
    entry.erase(it);
  }
  try {
    return parse_revocation_entry(entry, "args", state);
  } catch (const ConfigError& e) {
    error->error = error_from_config(e);
    return std::nullopt;
  }
}

std::string describe(const RevocationConfig& r) {
  return r.fingerprint.empty() ? fmt::format("serial {} of CA \"{}\"", r.serial, r.ca)
                               : fmt::format("fingerprint {}", r.fingerprint);
}

}  // namespace

CommandOutcome revoke_add(const json& args, Config& state, const CommandChecks&) {
  CommandOutcome out;
  bool close = false;
  std::optional<RevocationConfig> r = read_revocation(args, state, &close, &out);
  if (!r) return out;
  if (std::find(state.revocations.begin(), state.revocations.end(), *r) != state.revocations.end()) {
    return fail(ErrorCode::exists, fmt::format("{} is revoked already", describe(*r)), "args");
  }
  out.result = revocation_to_json(*r);
  out.result["close_connections"] = close;
  state.revocations.push_back(std::move(*r));
  out.changed = true;
  out.close_revoked = close;
  return out;
}

CommandOutcome revoke_del(const json& args, Config& state, const CommandChecks&) {
  CommandOutcome out;
  std::optional<RevocationConfig> r = read_revocation(args, state, nullptr, &out);
  if (!r) return out;
  auto it = std::find(state.revocations.begin(), state.revocations.end(), *r);
  if (it == state.revocations.end()) return fail(ErrorCode::not_found, fmt::format("{} is not revoked", describe(*r)), "args");
  state.revocations.erase(it);
  out.result = revocation_to_json(*r);
  out.changed = true;
  return out;
}

CommandOutcome revoke_list(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  if (!reader.finish()) return fail(reader);
  CommandOutcome out;
  out.result = json::array();
  for (const RevocationConfig& r : state.revocations) out.result.push_back(revocation_to_json(r));
  return out;
}

}  // namespace mtlsgw::control
