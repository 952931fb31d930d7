#include "control/policy_builder.h"

#include <fmt/format.h>

#include "dataplane/tls/revocation_set.h"
#include "dataplane/tls/trust_store.h"
#include "rules/rule_table.h"

namespace mtlsgw::control {

namespace {


std::shared_ptr<const tls::RevocationSet> build_revocations(const Config& state, std::string& error) {
  if (state.revocations.empty()) return nullptr;
  std::vector<tls::RevocationEntry> entries;
  for (size_t i = 0; i < state.revocations.size(); ++i) {
    const RevocationConfig& r = state.revocations[i];
    tls::RevocationEntry entry;
    std::string why;
    bool ok = false;
    if (!r.fingerprint.empty()) {
      entry.kind = tls::RevocationEntry::Kind::fingerprint;
      ok = tls::parse_fingerprint_hex(r.fingerprint, &entry.fingerprint, &why);
    } else {
      entry.kind = tls::RevocationEntry::Kind::ca_serial;
      entry.ca_name = r.ca;
      ok = tls::parse_serial_hex(r.serial, &entry.serial, &why);
    }
    if (!ok) {
      error = fmt::format("revocations[{}]: {}", i, why);
      return nullptr;
    }
    entries.push_back(std::move(entry));
  }
  std::vector<tls::CaSource> cas;
  for (const CaConfig& ca : state.cas) cas.push_back(tls::CaSource{ca.name, ca.cert_pem, ca.crl_pem});
  std::unique_ptr<const tls::RevocationSet> set = tls::RevocationSet::build(entries, cas, &error);
  if (!set) return nullptr;
  return set;
}

}  // namespace

std::shared_ptr<const rules::RuleTable> build_rules(const Config& state, std::string& error) {
  if (state.rules.empty()) return nullptr;
  rules::RuleTableBuilder builder;
  for (size_t i = 0; i < state.rules.size(); ++i) {
    const RuleConfig& rule = state.rules[i];
    rules::RuleError why;
    if (!builder.add(rule.name, *rules::parse_action(to_string(rule.action)), rule.expression, why)) {
      error = fmt::format("rules[{}] ({}): {}", i, rule.name, why.to_string());
      return nullptr;
    }
  }
  return std::make_shared<const rules::RuleTable>(std::move(builder).build());
}

std::optional<ErrorInfo> check_rule(const RuleConfig& rule, const std::string& where) {
  rules::RuleTableBuilder builder;
  rules::RuleError why;
  if (builder.add(rule.name, *rules::parse_action(to_string(rule.action)), rule.expression, why)) return std::nullopt;
  return ErrorInfo{ErrorCode::bad_field, why.to_string(), where};
}

std::unique_ptr<gateway::Policy> build_policy(const Config& state, const Config* previous_state,
                                              const gateway::Policy* previous, uint64_t generation,
                                              bool close_revoked, gateway::HostSlots* rule_slots,
                                              std::string& error) {
  auto policy = std::make_unique<gateway::Policy>();
  policy->generation = generation;
  policy->close_revoked = close_revoked;
  if (previous != nullptr && previous_state != nullptr && state.revocations == previous_state->revocations &&
      state.cas == previous_state->cas) {
    policy->revocations = previous->revocations;
  } else {
    policy->revocations = build_revocations(state, error);
    if (!state.revocations.empty() && !policy->revocations) return nullptr;
  }
  const bool same_rules = previous != nullptr && previous_state != nullptr && state.rules == previous_state->rules;
  if (same_rules) {
    policy->rules = previous->rules;
  } else {
    policy->rules = build_rules(state, error);
    if (!state.rules.empty() && !policy->rules) return nullptr;
  }
  if (rule_slots != nullptr) {
    std::vector<std::string> live;
    for (const RuleConfig& rule : state.rules) live.push_back(rule.name);
    for (const RuleConfig& rule : state.rules) policy->rule_slots.push_back(rule_slots->assign(rule.name, live));
  }
  return policy;
}

}  // namespace mtlsgw::control
