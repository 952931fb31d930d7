#include "control/control_plane.h"

#include <fmt/format.h>

#include <algorithm>

#include "control/command_checks.h"
#include "control/control_service.h"
#include "control/control_socket.h"
#include "control/gateway_publisher.h"
#include "control/gateway_spec.h"
#include "control/policy_builder.h"
#include "control/state_store.h"
#include "control/stats.h"
#include "control/stats_json.h"
#include "control/stats_prometheus.h"
#include "dataplane/dataplane.h"
#include "dataplane/gateway/tls_gateway.h"

namespace mtlsgw::control {

ControlPlane::ControlPlane() = default;

// The socket goes first (its destructor tells the service every client is
// gone), then the service, then what it publishes through.
ControlPlane::~ControlPlane() {
  socket_.reset();
  service_.reset();
  publisher_.reset();
}

bool ControlPlane::prepare(const Options& options, Config& config, std::shared_ptr<const gateway::GatewaySpec>& spec,
                           bool& restored, std::string& error) {
  restored = false;
  if (!options.state_dir.empty()) {
    store_ = StateStore::open(options.state_dir, error);
    if (!store_) return false;
    if (std::optional<Config> saved = store_->restore(config, error)) {
      config = std::move(*saved);
      restored = true;
    } else if (!error.empty()) {
      return false;
    }
  }
  slots_ = std::make_shared<gateway::HostSlots>(gateway::GatewayLimits{}.host_slots);
  const bool serves_tls = std::any_of(config.listeners.begin(), config.listeners.end(),
                                      [](const ListenerConfig& l) { return l.service == "tls"; });
  if (serves_tls) {
    spec = make_gateway_spec(config, error, config.warnings, slots_, 1, &trust_stores_);
    if (!spec) return false;
  }
  return true;
}

bool ControlPlane::worker_shared(const Config& config, unsigned worker_count,
                                 std::shared_ptr<gateway::PolicyCell>& policy,
                                 std::shared_ptr<tls::VerdictCache>& cache,
                                 std::shared_ptr<const gateway::HostSlots>& rule_slots, std::string& error) {
  policy_ = std::make_shared<gateway::PolicyCell>(std::max(worker_count, 1u));
  // As many slots as a table may have rules (docs/rules.md's limit).
  rule_slots_ = std::make_shared<gateway::HostSlots>(4096);
  rule_slots = rule_slots_;
  std::unique_ptr<gateway::Policy> first = build_policy(config, nullptr, nullptr, 1, false, rule_slots_.get(), error);
  if (!first) return false;
  // No worker runs yet: nothing to wait for.
  policy_->publish(std::move(first), std::chrono::milliseconds(0));
  policy = policy_;
  std::unique_ptr<tls::VerdictCache> made = tls::VerdictCache::create(tls::VerdictCacheOptions{}, &error);
  if (!made) return false;
  cache = std::move(made);
  return true;
}

bool ControlPlane::start(const Options& options, const Config& config, const dataplane::Dataplane& dataplane,
                         std::string& error) {
  dataplane_ = &dataplane;
  publisher_ = std::make_unique<GatewayPublisher>(dataplane, policy_, slots_, 1, std::move(trust_stores_), rule_slots_);
  const dataplane::Dataplane* plane = &dataplane;
  service_ = std::make_unique<ControlService>(config, *publisher_, make_command_checks(), store_.get(),
                                              [plane](bool prometheus) -> nlohmann::json {
                                                const StatsSnapshot stats = collect_stats(*plane);
                                                if (prometheus) return stats_to_prometheus(stats);
                                                return stats_to_json(stats);
                                              });
  if (options.control_socket.empty()) return true;
  ControlSocketOptions socket_options;
  socket_options.path = options.control_socket;
  socket_options.allowed_uids = options.control_uids;
  socket_options.allowed_gids = options.control_gids;
  socket_ = ControlSocket::open(socket_options, *service_, error);
  if (!socket_) {
    error = fmt::format("control socket {}: {}", options.control_socket, error);
    return false;
  }
  socket_path_ = options.control_socket;
  return true;
}

ControlLoop ControlPlane::loop() {
  ControlLoop loop;
  if (socket_) {
    loop.serve = [this](std::chrono::milliseconds wait) { socket_->poll(wait); };
  }
  if (publisher_) {
    loop.housekeeping = [this] { publisher_->reclaim(); };
  }
  return loop;
}

}  // namespace mtlsgw::control
