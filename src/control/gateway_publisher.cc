#include "control/gateway_publisher.h"

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <thread>

#include "control/gateway_spec.h"
#include "dataplane/dataplane.h"

namespace mtlsgw::control {

using json = nlohmann::json;

namespace {

// A worker adopts new tables at its next poll iteration: microseconds when
// it runs, a few hundred µs after an idle sleep. Seconds mean a stuck worker.
constexpr std::chrono::milliseconds kAdoptionTimeout{5'000};


struct PreparedState final : StatePublisher::Prepared {
  // Per worker, per "tls" listener (Worker::gateways() order); empty when
  // the hosts did not change.
  std::vector<std::vector<std::unique_ptr<gateway::GatewayTables>>> tables;
  uint64_t tables_generation = 0;
  std::unique_ptr<gateway::Policy> policy;  // null: unchanged
  std::optional<TrustStoreCache> trust_stores;  // those the new tables use
  std::vector<std::string> warnings;
};

}  // namespace

GatewayPublisher::GatewayPublisher(const dataplane::Dataplane& dataplane, std::shared_ptr<gateway::PolicyCell> policy,
                                   std::shared_ptr<gateway::HostSlots> slots, uint64_t first_generation,
                                   TrustStoreCache stores, std::shared_ptr<gateway::HostSlots> rule_slots)
    : dataplane_(dataplane),
      policy_(std::move(policy)),
      slots_(std::move(slots)),
      tables_generation_(first_generation),
      policy_generation_(policy_ ? policy_->generation() : 0),
      trust_stores_(std::move(stores)),
      rule_slots_(std::move(rule_slots)) {}

std::unique_ptr<StatePublisher::Prepared> GatewayPublisher::prepare(const Config& next, const Config& current,
                                                                    bool close_revoked, std::string& error) {
  auto prepared = std::make_unique<PreparedState>();
  const bool hosts_changed =
      next.cas != current.cas || next.hosts != current.hosts || next.default_host != current.default_host;
  if (hosts_changed) {
    bool any_gateway = false;
    for (const auto& worker : dataplane_.workers()) any_gateway = any_gateway || !worker->gateways().empty();
    if (!any_gateway) {
      prepared->warnings.push_back("no listener has service \"tls\": the hosts are kept but serve nothing");
    } else if (next.hosts.empty()) {
      error = "the tls listeners need at least one host";
      return nullptr;
    } else {
      const uint64_t generation = tables_generation_ + 1;
      TrustStoreCache stores = trust_stores_;
      std::shared_ptr<const gateway::GatewaySpec> spec =
          make_gateway_spec(next, error, prepared->warnings, slots_, generation, &stores);
      if (!spec) return nullptr;
      prepared->trust_stores = std::move(stores);
      for (const auto& worker : dataplane_.workers()) {
        auto& per_worker = prepared->tables.emplace_back();
        for (size_t g = 0; g < worker->gateways().size(); ++g) {
          std::unique_ptr<gateway::GatewayTables> tables = gateway::GatewayTables::build(*spec, error);
          if (!tables) return nullptr;
          per_worker.push_back(std::move(tables));
        }
      }
      prepared->tables_generation = generation;
    }
  }
  const bool policy_changed = close_revoked || next.cas != current.cas || next.rules != current.rules ||
                              next.revocations != current.revocations;
  if (policy_changed && policy_) {
    prepared->policy =
        build_policy(next, &current, policy_->read(), policy_generation_ + 1, close_revoked, rule_slots_.get(), error);
    if (!prepared->policy) return nullptr;
  }
  return prepared;
}

json GatewayPublisher::publish(std::unique_ptr<Prepared> base) {
  auto& prepared = static_cast<PreparedState&>(*base);
  json facts = json::object();
  if (prepared.tables_generation != 0) {
    const auto& workers = dataplane_.workers();
    for (size_t w = 0; w < workers.size(); ++w) {
      for (size_t g = 0; g < workers[w]->gateways().size(); ++g) {
        workers[w]->gateways()[g]->publish(std::move(prepared.tables[w][g]));
      }
    }
    tables_generation_ = prepared.tables_generation;
    if (prepared.trust_stores) trust_stores_ = std::move(*prepared.trust_stores);
    const auto deadline = std::chrono::steady_clock::now() + kAdoptionTimeout;
    bool adopted = false;
    while (!adopted && std::chrono::steady_clock::now() < deadline) {
      adopted = true;
      for (const auto& worker : workers) {
        for (const gateway::TlsGateway* gw : worker->gateways()) {
          adopted = adopted && gw->tables_generation() == tables_generation_;
        }
      }
      if (!adopted) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    facts["tables_generation"] = tables_generation_;
    if (!adopted) prepared.warnings.push_back("a worker has not taken the new hosts yet (is it stuck?)");
    reclaim();
  }
  if (prepared.policy) {
    policy_generation_ = prepared.policy->generation;
    if (!policy_->publish(std::move(prepared.policy), kAdoptionTimeout)) {
      prepared.warnings.push_back("a worker has not passed a quiescent state yet (is it stuck?)");
    }
    facts["policy_generation"] = policy_generation_;
  }
  if (!prepared.warnings.empty()) facts["warnings"] = prepared.warnings;
  return facts;
}

uint32_t GatewayPublisher::reclaim() {
  uint32_t freed = 0;
  for (const auto& worker : dataplane_.workers()) {
    for (gateway::TlsGateway* gw : worker->gateways()) freed += gw->free_retired();
  }
  return freed;
}

}  // namespace mtlsgw::control
