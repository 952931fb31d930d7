#pragma once
// The control socket's commands, transactions and commits (docs/control.md).
//
// The committed state is a Config (hosts, CAs, revocations, rules, and the
// ports and listeners it started with). A command outside a transaction is
// applied to a copy of it and committed at once; `begin` gives the client
// its own staged copy, every later command is checked against that copy and
// recorded, and `commit` applies the recorded commands to the committed
// state as one change (replaying them if another client committed in the
// meantime, so that neither overwrites the other), `abort` or a closed
// connection drops them. A commit builds everything the new state needs off
// to the side (StatePublisher::prepare), writes it to the state directory,
// and only then publishes it; any failure before that leaves the gateway
// and the committed state exactly as they were.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/commands/command.h"
#include "control/config.h"
#include "control/control_socket.h"

namespace mtlsgw::control {

class StateStore;

// Applies committed states to the running gateway (gateway_publisher.h), or
// to a test's fake.
class StatePublisher {
 public:
  struct Prepared {
    virtual ~Prepared() = default;
  };
  virtual ~StatePublisher() = default;
  // Builds, without publishing, what `next` needs. Null with `error` when
  // it cannot be built (nothing changed).
  virtual std::unique_ptr<Prepared> prepare(const Config& next, const Config& current, bool close_revoked,
                                            std::string& error) = 0;
  // Publishes what prepare built and returns when every worker uses it;
  // returns facts for the commit's answer (generations, warnings).
  virtual nlohmann::json publish(std::unique_ptr<Prepared> prepared) = 0;
};

class ControlService final : public RequestHandler {
 public:
  // store may be null (no state directory); stats answers `stats`.
  // stats(prometheus): the `stats` answer, JSON or (true) Prometheus text.
  ControlService(Config committed, StatePublisher& publisher, CommandChecks checks, StateStore* store,
                 std::function<nlohmann::json(bool prometheus)> stats);

  std::string handle(uint64_t client_id, const Request& request) override;
  void client_closed(uint64_t client_id) override;

  const Config& committed() const noexcept { return committed_; }
  uint64_t commits() const noexcept { return commits_; }

 private:
  struct Transaction {
    Config staged;
    std::vector<Request> commands;
    uint64_t base_commits = 0;  // commits_ when it began
    bool close_revoked = false;
  };

  nlohmann::json run(uint64_t client_id, const Request& request, std::optional<ErrorInfo>& error);
  nlohmann::json commit(Config next, bool close_revoked, uint32_t changes, std::optional<ErrorInfo>& error);
  nlohmann::json commit_transaction(uint64_t client_id, std::optional<ErrorInfo>& error);

  Config committed_;
  StatePublisher& publisher_;
  CommandChecks checks_;
  StateStore* store_;
  std::function<nlohmann::json(bool prometheus)> stats_;
  std::unordered_map<uint64_t, Transaction> transactions_;
  uint64_t commits_ = 0;
};

}  // namespace mtlsgw::control
