#pragma once
// mtlsgwctl's side of the control socket: one connection, requests sent one
// at a time, each answer awaited before the next request (so that a batch
// stops at the first error with nothing after it executed).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace mtlsgw::ctl {

// An answer that follows the envelope (docs/control.md).
struct Reply {
  bool ok = false;
  nlohmann::ordered_json result;  // when ok
  std::string code;               // when not ok: the error's code, message and where
  std::string message;
  std::string where;
};

// Checks an answer line against the envelope and the id that was sent. An
// error answer may carry a null id (the server answers before it could read
// one: parse errors, too_large, a refused peer). Empty error text on success.
Reply parse_reply(std::string_view line, int64_t sent_id, std::string& error);

class ControlClient {
 public:
  // timeout: for the connect and then for each call; zero waits without end.
  static std::unique_ptr<ControlClient> connect(const std::string& path,
                                                std::chrono::milliseconds timeout,
                                                std::string& error);
  ~ControlClient();
  ControlClient(const ControlClient&) = delete;
  ControlClient& operator=(const ControlClient&) = delete;

  // Sends {"id", "command", "args"} and waits for its answer. False with
  // error set when the socket fails, the time runs out or the answer is
  // malformed.
  bool call(const std::string& command, const nlohmann::json& args, Reply& reply,
            std::string& error);

 private:
  ControlClient(int fd, std::chrono::milliseconds timeout) : fd_(fd), timeout_(timeout) {}
  bool read_line(std::string& line, std::chrono::steady_clock::time_point deadline,
                 std::string& error);

  int fd_ = -1;
  std::chrono::milliseconds timeout_;
  int64_t next_id_ = 1;
  std::string buffered_;  // bytes after the last answer line
};

}  // namespace mtlsgw::ctl
