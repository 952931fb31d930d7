#pragma once
// The configuration back as the JSON the file parser reads (config.h):
// `config dump` prints it, and the state directory keeps it (state_store.h),
// so what the control socket committed restarts the gateway as it was.
// Certificates, keys and CRLs are written inline (cert_pem, key_pem,
// crl_pem), whatever files they first came from: the dump stands alone.

#include <nlohmann/json.hpp>

#include "control/config.h"

namespace mtlsgw::control {

nlohmann::json config_to_json(const Config& config);

// The sections the control socket changes (cas, hosts, default_host, rules,
// revocations): a subset config_to_json writes and the state file holds.
nlohmann::json control_sections_to_json(const Config& config);

nlohmann::json host_to_json(const HostConfig& host, bool with_key);
nlohmann::json ca_to_json(const CaConfig& ca);
nlohmann::json rule_to_json(const RuleConfig& rule);
nlohmann::json revocation_to_json(const RevocationConfig& revocation);

}  // namespace mtlsgw::control
