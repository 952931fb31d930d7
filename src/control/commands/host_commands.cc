// host add | del | show | list: the TLS hosts, chosen by SNI.

#include <fmt/format.h>

#include <algorithm>

#include "control/commands/command.h"
#include "control/config_writer.h"

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

// A host without its key, for show and list: the key never leaves the
// gateway through the socket except in `config dump`.
json host_summary(const Config& state, const HostConfig& host) {
  json out = host_to_json(host, false);
  out.erase("cert_pem");
  out["default"] = host.name == state.default_host;
  return out;
}

}  // namespace

// Takes the host object of the config file (docs/config.md), with "cert"
// and "key" as files the gateway reads or "cert_pem" and "key_pem" as text
// (mtlsgwctl sends the text), and "default": true to make it the default
// host. The same checks run as for the file, and the host's TLS context is
// built once here, so that a key that does not match its certificate or a
// chain that does not verify is refused now, with the field.
CommandOutcome host_add(const json& args, Config& state, const CommandChecks& checks) {
  if (!args.is_object()) return fail(ErrorCode::bad_field, "expected an object", "args");
  json entry = args;
  bool make_default = false;
  if (auto it = entry.find("default"); it != entry.end()) {
    if (!it->is_boolean()) return fail(ErrorCode::bad_field, "expected true or false", "args.default");
    make_default = it->get<bool>();
    entry.erase(it);
  }
  HostConfig host;
  try {
    host = parse_host_entry(entry, "args", "", state);
  } catch (const ConfigError& e) {
    CommandOutcome out;
    out.error = error_from_config(e);
    return out;
  }
  if (state.find_host(host.name) != nullptr) {
    return fail(ErrorCode::exists, fmt::format("a host named \"{}\" exists (host del first, in one transaction "
                                               "to replace it)",
                                               host.name),
                "args.name");
  }
  if (checks.host) {
    if (std::string why = checks.host(state, host); !why.empty()) {
      return fail(ErrorCode::bad_pem, why, "args");
    }
  }
  CommandOutcome out;
  out.result = {{"name", host.name}};
  state.hosts.push_back(std::move(host));
  if (make_default) state.default_host = state.hosts.back().name;
  out.changed = true;
  return out;
}

CommandOutcome host_del(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  const std::optional<std::string> name = reader.string("name", true);
  if (!reader.finish()) return fail(reader);
  std::string lower = *name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  auto it = std::find_if(state.hosts.begin(), state.hosts.end(), [&](const HostConfig& h) { return h.name == lower; });
  if (it == state.hosts.end()) return fail(ErrorCode::not_found, fmt::format("no host named \"{}\"", lower), "args.name");
  CommandOutcome out;
  out.result = {{"name", lower}, {"was_default", state.default_host == lower}};
  if (state.default_host == lower) state.default_host.clear();
  state.hosts.erase(it);
  out.changed = true;
  return out;
}

CommandOutcome host_show(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  const std::optional<std::string> name = reader.string("name", true);
  if (!reader.finish()) return fail(reader);
  std::string lower = *name;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  const HostConfig* host = state.find_host(lower);
  if (host == nullptr) return fail(ErrorCode::not_found, fmt::format("no host named \"{}\"", lower), "args.name");
  CommandOutcome out;
  out.result = host_summary(state, *host);
  out.result["cert_pem"] = host->cert_pem;
  return out;
}

CommandOutcome host_list(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  if (!reader.finish()) return fail(reader);
  CommandOutcome out;
  out.result = json::array();
  for (const HostConfig& host : state.hosts) out.result.push_back(host_summary(state, host));
  return out;
}

}  // namespace mtlsgw::control
