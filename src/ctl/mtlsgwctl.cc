// mtlsgwctl: the control socket's client. Parses NOUN VERB into a request
// (ctl_commands), sends it (ctl_client), prints the answer (ctl_output); or
// runs a batch of commands on one connection, so that a transaction's
// begin ... commit share it. Protocol and commands: docs/control.md.

#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "ctl/ctl_batch.h"
#include "ctl/ctl_client.h"
#include "ctl/ctl_commands.h"
#include "ctl/ctl_output.h"

namespace {

using namespace mtlsgw::ctl;

std::chrono::milliseconds timeout_of(const GlobalOptions& options) {
  return std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000.0));
}

void print_result(const CommandRequest& request, const Reply& reply, const GlobalOptions& options,
                  bool in_batch) {
  if (options.json) {
    std::fputs((reply.result.dump(-1, ' ', false, ordered_json::error_handler_t::replace) + "\n").c_str(),
               stdout);
    return;
  }
  if (request.command == "config.dump") {
    // A config file's shape, indented as a person would write it.
    std::fputs((reply.result.dump(2, ' ', false, ordered_json::error_handler_t::replace) + "\n").c_str(),
               stdout);
    return;
  }
  const std::string text = format_human(reply.result);
  // One word for a bare success on its own; a batch stays quiet about them.
  if (text.empty() && !in_batch) {
    std::fputs("ok\n", stdout);
  } else {
    std::fputs(text.c_str(), stdout);
  }
}

void print_refusal(const Reply& reply, const std::string& context) {
  std::string text = fmt::format("mtlsgwctl: {}{}: {}", context, reply.code, reply.message);
  if (!reply.where.empty()) text += fmt::format(" (at {})", reply.where);
  fmt::print(stderr, "{}\n", text);
}

int run_one(const GlobalOptions& options, const CommandRequest& request) {
  std::string error;
  auto client = ControlClient::connect(options.socket, timeout_of(options), error);
  if (!client) {
    fmt::print(stderr, "mtlsgwctl: {}\n", error);
    return kExitTransport;
  }
  Reply reply;
  if (!client->call(request.command, request.args, reply, error)) {
    fmt::print(stderr, "mtlsgwctl: {}\n", error);
    return kExitTransport;
  }
  if (!reply.ok) {
    print_refusal(reply, "");
    return kExitRefused;
  }
  print_result(request, reply, options, false);
  return kExitOk;
}

int run_batch(const GlobalOptions& options, const BatchRequest& batch) {
  std::string text;
  const std::string name = batch.file == "-" ? "<stdin>" : batch.file;
  if (batch.file == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(batch.file, std::ios::binary);
    if (!in) {
      fmt::print(stderr, "mtlsgwctl: cannot read {}\n", batch.file);
      return kExitUsage;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto parsed = parse_batch(text);
  if (auto* error = std::get_if<BatchError>(&parsed)) {
    fmt::print(stderr, "mtlsgwctl: {}:{}: {}\n", name, error->line, error->message);
    return kExitUsage;
  }
  // Every line is checked (and its files read) before anything is sent, so
  // that a typo on line 40 does not leave lines 1 to 39 applied.
  std::vector<std::pair<std::size_t, CommandRequest>> requests;
  for (const BatchCommand& command : std::get<std::vector<BatchCommand>>(parsed)) {
    auto built = build_request(command.words);
    if (auto* finished = std::get_if<Finished>(&built)) {
      fmt::print(stderr, "{}:{}: {}", name, command.line, finished->err);
      return kExitUsage;
    }
    requests.emplace_back(command.line, std::get<CommandRequest>(std::move(built)));
  }
  if (requests.empty()) return kExitOk;

  std::string error;
  auto client = ControlClient::connect(options.socket, timeout_of(options), error);
  if (!client) {
    fmt::print(stderr, "mtlsgwctl: {}\n", error);
    return kExitTransport;
  }
  bool in_transaction = false;
  for (const auto& [line, request] : requests) {
    Reply reply;
    if (!client->call(request.command, request.args, reply, error)) {
      fmt::print(stderr, "mtlsgwctl: {}:{}: {}\n", name, line, error);
      return kExitTransport;
    }
    if (!reply.ok) {
      print_refusal(reply, fmt::format("{}:{}: ", name, line));
      if (in_transaction) {
        // Leave nothing half-done behind; the gateway would abort it when
        // the connection closes anyway, but say so here.
        Reply aborted;
        if (client->call("abort", nlohmann::json::object(), aborted, error) && aborted.ok) {
          fmt::print(stderr, "mtlsgwctl: transaction aborted\n");
        }
      }
      return kExitRefused;
    }
    if (request.command == "begin") in_transaction = true;
    if (request.command == "commit" || request.command == "abort") in_transaction = false;
    print_result(request, reply, options, true);
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  const Invocation invocation = parse_command_line(std::vector<std::string>(argv, argv + argc));
  if (const auto* finished = std::get_if<Finished>(&invocation.action)) {
    std::fputs(finished->out.c_str(), stdout);
    std::fputs(finished->err.c_str(), stderr);
    return finished->exit_code;
  }
  if (const auto* batch = std::get_if<BatchRequest>(&invocation.action)) {
    return run_batch(invocation.options, *batch);
  }
  return run_one(invocation.options, std::get<CommandRequest>(invocation.action));
}
