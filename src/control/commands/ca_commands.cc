// ca add | del | list and crl load: the CAs client certificates chain to.

#include <fmt/format.h>

#include <algorithm>

#include "control/commands/command.h"
#include "control/config_writer.h"

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

json ca_summary(const Config& state, const CaConfig& ca) {
  json users = json::array();
  for (const HostConfig& host : state.hosts) {
    if (std::find(host.client_cas.begin(), host.client_cas.end(), ca.name) != host.client_cas.end()) {
      users.push_back(host.name);
    }
  }
  return {{"name", ca.name},
          {"certificates", ca.certificate_count},
          {"crls", ca.crl_count},
          {"max_depth", ca.max_depth},
          {"hosts", users}};
}

CaConfig* find_ca(Config& state, std::string_view name) {
  for (CaConfig& ca : state.cas) {
    if (ca.name == name) return &ca;
  }
  return nullptr;
}

}  // namespace

// The CA object of the config file: "name", "cert" or "cert_pem", "crl" or
// "crl_pem", "max_depth". Its trust store is built here once, so that a CRL
// its CA did not sign or a certificate that does not decode is refused now.
CommandOutcome ca_add(const json& args, Config& state, const CommandChecks& checks) {
  CaConfig ca;
  try {
    ca = parse_ca_entry(args, "args", "", state);
  } catch (const ConfigError& e) {
    CommandOutcome out;
    out.error = error_from_config(e);
    return out;
  }
  if (state.find_ca(ca.name) != nullptr) {
    return fail(ErrorCode::exists, fmt::format("a CA named \"{}\" exists (crl load replaces its CRL)", ca.name),
                "args.name");
  }
  if (checks.ca) {
    if (std::string why = checks.ca(ca); !why.empty()) return fail(ErrorCode::bad_pem, why, "args");
  }
  CommandOutcome out;
  out.result = ca_summary(state, ca);
  state.cas.push_back(std::move(ca));
  out.changed = true;
  return out;
}

CommandOutcome ca_del(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  const std::optional<std::string> name = reader.string("name", true);
  if (!reader.finish()) return fail(reader);
  if (find_ca(state, *name) == nullptr) {
    return fail(ErrorCode::not_found, fmt::format("no CA named \"{}\"", *name), "args.name");
  }
  for (const HostConfig& host : state.hosts) {
    if (std::find(host.client_cas.begin(), host.client_cas.end(), *name) != host.client_cas.end()) {
      return fail(ErrorCode::in_use, fmt::format("host {} trusts \"{}\" (change or delete the host first)",
                                                 host.name, *name),
                  "args.name");
    }
  }
  for (const RevocationConfig& r : state.revocations) {
    if (r.ca == *name) {
      return fail(ErrorCode::in_use, fmt::format("serial {} is revoked under \"{}\" (revoke del it first)",
                                                 r.serial, *name),
                  "args.name");
    }
  }
  state.cas.erase(std::find_if(state.cas.begin(), state.cas.end(), [&](const CaConfig& c) { return c.name == *name; }));
  CommandOutcome out;
  out.result = {{"name", *name}};
  out.changed = true;
  return out;
}

CommandOutcome ca_list(const json& args, Config& state, const CommandChecks&) {
  ArgReader reader(args);
  if (!reader.finish()) return fail(reader);
  CommandOutcome out;
  out.result = json::array();
  for (const CaConfig& ca : state.cas) out.result.push_back(ca_summary(state, ca));
  return out;
}

// Replaces a CA's CRLs ("crl_pem" text, or "crl" a file): the usual way a
// CRL is refreshed before its nextUpdate. Checked with the CA's
// certificates: a CRL none of them signed is refused.
CommandOutcome crl_load(const json& args, Config& state, const CommandChecks& checks) {
  ArgReader reader(args);
  const std::optional<std::string> name = reader.string("ca", true);
  const bool has_text = reader.has("crl_pem");
  const bool has_file = reader.has("crl");
  if (!reader.finish()) return fail(reader);
  CaConfig* ca = find_ca(state, *name);
  if (ca == nullptr) return fail(ErrorCode::not_found, fmt::format("no CA named \"{}\"", *name), "args.ca");
  if (!has_text && !has_file) return fail(ErrorCode::missing_field, "is required (or \"crl\" a file)", "args.crl_pem");
  json entry = {{"name", ca->name}, {"cert_pem", ca->cert_pem}, {"max_depth", ca->max_depth}};
  if (has_text) entry["crl_pem"] = args["crl_pem"];
  if (has_file) entry["crl"] = args["crl"];
  CaConfig updated;
  try {
    Config scratch;
    updated = parse_ca_entry(entry, "args", "", scratch);
  } catch (const ConfigError& e) {
    CommandOutcome out;
    out.error = error_from_config(e);
    return out;
  }
  if (checks.ca) {
    if (std::string why = checks.ca(updated); !why.empty()) return fail(ErrorCode::bad_pem, why, "args.crl_pem");
  }
  ca->crl_pem = std::move(updated.crl_pem);
  ca->crl_path = std::move(updated.crl_path);
  ca->crl_count = updated.crl_count;
  CommandOutcome out;
  out.result = ca_summary(state, *ca);
  out.changed = true;
  return out;
}

}  // namespace mtlsgw::control
