#include "control/policy_builder.h"

namespace mtlsgw::control {

std::unique_ptr<gateway::Policy> build_policy(const Config& state, uint64_t generation, bool close_revoked,
                                              std::string& error) {
  (void)state;
  (void)error;
  auto policy = std::make_unique<gateway::Policy>();
  policy->generation = generation;
  policy->close_revoked = close_revoked;
  return policy;
}

}  // namespace mtlsgw::control
