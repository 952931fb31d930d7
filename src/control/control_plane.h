#pragma once
// Everything the control thread keeps for live changes, in start order:
//
//   prepare()        before EAL: the state directory's saved state replaces
//                    the config's hosts, CAs, rules and revocations; the
//                    gateway spec is made with name-stable counter slots.
//   worker_shared()  what every worker shares: the policy cell (with the
//                    config's revocations and rules) and the verdict cache.
//   start()          once the workers run: the publisher, the commands and
//                    the control socket.
//   loop()           what run_control_thread calls.

#include <memory>
#include <string>

#include "control/config.h"
#include "control/control_thread.h"
#include "control/gateway_spec.h"
#include "control/options.h"
#include "dataplane/gateway/gateway_tables.h"
#include "dataplane/gateway/host_slots.h"
#include "dataplane/gateway/policy.h"
#include "dataplane/tls/verdict_cache.h"

namespace mtlsgw::dataplane {
class Dataplane;
}

namespace mtlsgw::control {

class ControlService;
class ControlSocket;
class GatewayPublisher;
class StateStore;

class ControlPlane {
 public:
  ControlPlane();
  ~ControlPlane();
  ControlPlane(const ControlPlane&) = delete;
  ControlPlane& operator=(const ControlPlane&) = delete;

  // config is replaced by the restored state when the state directory has
  // one (restored is then true). The spec is null when no listener serves
  // tls. False with `error` (a message for the operator).
  bool prepare(const Options& options, Config& config, std::shared_ptr<const gateway::GatewaySpec>& spec,
               bool& restored, std::string& error);

  // For WorkerSettings; worker_count bounds the policy's RCU readers.
  bool worker_shared(const Config& config, unsigned worker_count, std::shared_ptr<gateway::PolicyCell>& policy,
                     std::shared_ptr<tls::VerdictCache>& cache, std::shared_ptr<const gateway::HostSlots>& rule_slots,
                     std::string& error);

  bool start(const Options& options, const Config& config, const dataplane::Dataplane& dataplane, std::string& error);

  ControlLoop loop();

  const std::string& socket_path() const noexcept { return socket_path_; }

 private:
  std::shared_ptr<gateway::HostSlots> slots_;
  TrustStoreCache trust_stores_;  // the initial spec's, for the publisher
  std::shared_ptr<gateway::HostSlots> rule_slots_;
  std::shared_ptr<gateway::PolicyCell> policy_;
  std::unique_ptr<StateStore> store_;
  std::unique_ptr<GatewayPublisher> publisher_;
  std::unique_ptr<ControlService> service_;
  std::unique_ptr<ControlSocket> socket_;
  std::string socket_path_;
  const dataplane::Dataplane* dataplane_ = nullptr;
};

}  // namespace mtlsgw::control
