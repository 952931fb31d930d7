#pragma once
// From a committed state to the Policy the workers read (policy.h): the
// operator's revocations resolved against the CAs they name, and the rules
// compiled. Control thread.

#include <memory>
#include <string>

#include <optional>

#include "control/config.h"
#include "control/control_protocol.h"
#include "dataplane/gateway/host_slots.h"
#include "dataplane/gateway/policy.h"

namespace mtlsgw::control {

// Null with `error` when a revocation or a rule cannot be built (the
// commands check both first, so this means a state file edited by hand).
// previous: the policy in force; its revocation set is kept (same
// generation, so workers keep their resumable sessions) when neither the
// revocations nor the CAs they name changed.
// rule_slots: the registry of rule-hit counter slots (null: none).
std::unique_ptr<gateway::Policy> build_policy(const Config& state, const Config* previous_state,
                                              const gateway::Policy* previous, uint64_t generation,
                                              bool close_revoked, gateway::HostSlots* rule_slots,
                                              std::string& error);

// The rules language's verdict on one rule: null when it compiles, else the
// error with its line:column in the message, at `where`.
std::optional<ErrorInfo> check_rule(const RuleConfig& rule, const std::string& where);

}  // namespace mtlsgw::control
