#pragma once
// Commits reach the workers here (control_service.h's StatePublisher for
// the running gateway):
//
// - hosts, CAs or the default host changed: new GatewaySpec, then one
//   GatewayTables per worker and "tls" listener, built on the control
//   thread; published with one pointer exchange each (TlsGateway::publish),
//   and the commit waits until every worker has adopted them, so that the
//   next handshake anywhere sees the change.
// - revocations or rules changed (or CAs, which revocations by serial
//   refer to): a new Policy, published by RCU (policy.h).
//
// Superseded tables come back from the workers when their last connection
// ends; reclaim() frees them (the control thread calls it periodically).

#include <memory>
#include <string>
#include <vector>

#include "control/control_service.h"
#include "control/gateway_spec.h"
#include "control/policy_builder.h"
#include "dataplane/gateway/host_slots.h"
#include "dataplane/gateway/policy.h"

namespace mtlsgw::dataplane {
class Dataplane;
}

namespace mtlsgw::control {

class GatewayPublisher final : public StatePublisher {
 public:
  // slots: the registry the initial spec used; first_generation: that
  // spec's generation.
  // stores: the trust stores the initial spec was made with.
  GatewayPublisher(const dataplane::Dataplane& dataplane, std::shared_ptr<gateway::PolicyCell> policy,
                   std::shared_ptr<gateway::HostSlots> slots, uint64_t first_generation, TrustStoreCache stores,
                   std::shared_ptr<gateway::HostSlots> rule_slots);

  std::unique_ptr<Prepared> prepare(const Config& next, const Config& current, bool close_revoked,
                                    std::string& error) override;
  nlohmann::json publish(std::unique_ptr<Prepared> prepared) override;

  // Frees tables no worker uses any more; returns how many.
  uint32_t reclaim();

 private:
  const dataplane::Dataplane& dataplane_;
  std::shared_ptr<gateway::PolicyCell> policy_;
  std::shared_ptr<gateway::HostSlots> slots_;
  uint64_t tables_generation_;
  uint64_t policy_generation_ = 0;
  TrustStoreCache trust_stores_;
  std::shared_ptr<gateway::HostSlots> rule_slots_;
};

}  // namespace mtlsgw::control
