#include "control/control_service.h"

#include <fmt/format.h>

#include "control/config_writer.h"
#include "control/state_store.h"
#include "mtlsgw_version.h"

namespace mtlsgw::control {

using json = nlohmann::json;

ControlService::ControlService(Config committed, StatePublisher& publisher, CommandChecks checks, StateStore* store,
                               std::function<json(bool)> stats)
    : committed_(std::move(committed)),
      publisher_(publisher),
      checks_(std::move(checks)),
      store_(store),
      stats_(std::move(stats)) {}

std::string ControlService::handle(uint64_t client_id, const Request& request) {
  std::optional<ErrorInfo> error;
  json result = run(client_id, request, error);
  return error ? format_error(request.id, *error) : format_result(request.id, result);
}

void ControlService::client_closed(uint64_t client_id) { transactions_.erase(client_id); }

json ControlService::run(uint64_t client_id, const Request& request, std::optional<ErrorInfo>& error) {
  const std::string& name = request.command;
  auto no_args = [&]() {
    ArgReader reader(request.args);
    if (!reader.finish()) error = reader.error();
    return !error.has_value();
  };
  auto transaction = transactions_.find(client_id);
  const bool in_transaction = transaction != transactions_.end();

  if (name == "ping") {
    if (!no_args()) return nullptr;
    return {{"version", MTLSGW_VERSION}, {"commits", commits_}, {"in_transaction", in_transaction}};
  }
  if (name == "begin") {
    if (!no_args()) return nullptr;
    if (in_transaction) {
      error = ErrorInfo{ErrorCode::in_transaction, "a transaction is open on this connection (commit or abort it)", ""};
      return nullptr;
    }
    transactions_.emplace(client_id, Transaction{committed_, {}, commits_, false});
    return {{"transaction", "open"}};
  }
  if (name == "abort") {
    if (!no_args()) return nullptr;
    if (!in_transaction) {
      error = ErrorInfo{ErrorCode::no_transaction, "no transaction is open on this connection", ""};
      return nullptr;
    }
    const size_t dropped = transaction->second.commands.size();
    transactions_.erase(transaction);
    return {{"aborted", dropped}};
  }
  if (name == "commit") {
    if (!no_args()) return nullptr;
    if (!in_transaction) {
      error = ErrorInfo{ErrorCode::no_transaction, "no transaction is open on this connection", ""};
      return nullptr;
    }
    return commit_transaction(client_id, error);
  }
  if (name == "stats") {
    ArgReader reader(request.args);
    const std::optional<uint64_t> worker = reader.uint("worker", false, 0, UINT32_MAX);
    const std::optional<std::string> format = reader.choice("format", false, {"json", "prometheus"});
    if (!reader.finish()) {
      error = reader.error();
      return nullptr;
    }
    if (format == "prometheus") return stats_ ? stats_(true) : json("");
    json all = stats_ ? stats_(false) : json::object();
    if (!worker) return all;
    const json& workers = all.contains("workers") ? all["workers"] : json::array();
    if (*worker >= workers.size()) {
      error = ErrorInfo{ErrorCode::not_found, fmt::format("no worker {} ({} running)", *worker, workers.size()),
                        "args.worker"};
      return nullptr;
    }
    return {{"worker", *worker}, {"stats", workers[*worker]}};
  }
  if (name == "config.dump") {
    if (!no_args()) return nullptr;
    return config_to_json(in_transaction ? transaction->second.staged : committed_);
  }

  const CommandInfo* command = find_command(name);
  if (command == nullptr) {
    error = ErrorInfo{ErrorCode::unknown_command, fmt::format("no command \"{}\" (see mtlsgwctl --help)", name),
                      "command"};
    return nullptr;
  }
  if (!command->mutates) {
    Config& view = in_transaction ? transaction->second.staged : committed_;
    CommandOutcome out = command->run(request.args, view, checks_);
    error = std::move(out.error);
    return std::move(out.result);
  }
  if (in_transaction) {
    Transaction& t = transaction->second;
    CommandOutcome out = command->run(request.args, t.staged, checks_);
    if (out.error) {
      // The staged state is unchanged by a refused command: the
      // transaction stays open and the client may go on or abort.
      error = std::move(out.error);
      return nullptr;
    }
    t.commands.push_back(request);
    t.close_revoked = t.close_revoked || out.close_revoked;
    out.result["staged"] = t.commands.size();
    return std::move(out.result);
  }
  Config next = committed_;
  CommandOutcome out = command->run(request.args, next, checks_);
  if (out.error) {
    error = std::move(out.error);
    return nullptr;
  }
  json facts = commit(std::move(next), out.close_revoked, 1, error);
  if (error) return nullptr;
  out.result["commit"] = std::move(facts);
  return std::move(out.result);
}

json ControlService::commit_transaction(uint64_t client_id, std::optional<ErrorInfo>& error) {
  Transaction t = std::move(transactions_.at(client_id));
  transactions_.erase(client_id);
  if (t.commands.empty()) return {{"changes", 0}};
  Config next = std::move(t.staged);
  if (t.base_commits != commits_) {
    // Another client committed since `begin`: this transaction's commands
    // apply to what is committed now, as if they had been sent after it.
    next = committed_;
    for (size_t i = 0; i < t.commands.size(); ++i) {
      const Request& r = t.commands[i];
      CommandOutcome out = find_command(r.command)->run(r.args, next, checks_);
      if (out.error) {
        error = ErrorInfo{out.error->code,
                          fmt::format("the transaction's command {} ({}) no longer applies after another "
                                      "client's commit: {}; nothing was committed",
                                      i + 1, r.command, out.error->message),
                          out.error->where};
        return nullptr;
      }
    }
  }
  return commit(std::move(next), t.close_revoked, static_cast<uint32_t>(t.commands.size()), error);
}

json ControlService::commit(Config next, bool close_revoked, uint32_t changes, std::optional<ErrorInfo>& error) {
  std::string why;
  std::unique_ptr<StatePublisher::Prepared> prepared = publisher_.prepare(next, committed_, close_revoked, why);
  if (!prepared) {
    error = ErrorInfo{ErrorCode::bad_field, fmt::format("the new state cannot be built: {}; nothing was committed", why), ""};
    return nullptr;
  }
  if (store_ != nullptr && !store_->save(next, why)) {
    error = ErrorInfo{ErrorCode::internal, fmt::format("the state cannot be saved: {}; nothing was committed", why), ""};
    return nullptr;
  }
  json facts = publisher_.publish(std::move(prepared));
  committed_ = std::move(next);
  ++commits_;
  facts["changes"] = changes;
  facts["commits"] = commits_;
  return facts;
}

}  // namespace mtlsgw::control
