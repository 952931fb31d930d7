#include "ctl/ctl_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>

namespace mtlsgw::ctl {
namespace {

using clock = std::chrono::steady_clock;

// Answers are a line each; a config dump of a large gateway is the largest
// (hosts with their PEMs). Past this the peer is not a gateway.
constexpr std::size_t kMaxReplyBytes = std::size_t{256} << 20;

clock::time_point deadline_after(std::chrono::milliseconds timeout) {
  return timeout.count() == 0 ? clock::time_point::max() : clock::now() + timeout;
}

// Waits for events on fd until deadline; false on timeout or error.
bool wait_for(int fd, short events, clock::time_point deadline, std::string& error) {
  for (;;) {
    int wait_ms = -1;
    if (deadline != clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      if (left.count() <= 0) {
        error = "timed out waiting for the gateway";
        return false;
      }
      wait_ms = static_cast<int>(std::min<int64_t>(left.count() + 1, 1 << 30));
    }
    pollfd entry{fd, events, 0};
    const int rc = ::poll(&entry, 1, wait_ms);
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) {
      error = fmt::format("poll: {}", std::strerror(errno));
      return false;
    }
  }
}

std::string text_field(const nlohmann::ordered_json& object, const char* key, bool& valid) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) {
    valid = false;
    return {};
  }
  return it->get<std::string>();
}

}  // namespace

Reply parse_reply(std::string_view line, int64_t sent_id, std::string& error) {
  Reply reply;
  const auto document = nlohmann::ordered_json::parse(line.begin(), line.end(), nullptr, false);
  if (document.is_discarded() || !document.is_object()) {
    error = "malformed response from the gateway (not a JSON object)";
    return reply;
  }
  auto ok = document.find("ok");
  auto id = document.find("id");
  if (ok == document.end() || !ok->is_boolean() || id == document.end()) {
    error = "malformed response from the gateway (no \"ok\" or \"id\")";
    return reply;
  }
  const bool id_matches = id->is_number_integer() && id->get<int64_t>() == sent_id;
  reply.ok = ok->get<bool>();
  if (reply.ok) {
    auto result = document.find("result");
    if (result == document.end() || !id_matches) {
      error = "malformed response from the gateway (no result, or another request's id)";
      return reply;
    }
    reply.result = *result;
    return reply;
  }
  auto body = document.find("error");
  bool valid = body != document.end() && body->is_object() && (id_matches || id->is_null());
  if (valid) {
    reply.code = text_field(*body, "code", valid);
    reply.message = text_field(*body, "message", valid);
    if (body->contains("where")) reply.where = text_field(*body, "where", valid);
  }
  if (!valid) error = "malformed error response from the gateway";
  return reply;
}

std::unique_ptr<ControlClient> ControlClient::connect(const std::string& path,
                                                      std::chrono::milliseconds timeout,
                                                      std::string& error) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    error = fmt::format("bad control socket path \"{}\"", path);
    return nullptr;
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = fmt::format("socket: {}", std::strerror(errno));
    return nullptr;
  }
  std::unique_ptr<ControlClient> client(new ControlClient(fd, timeout));
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    // A Unix socket connects at once or not at all, except when the
    // listener's backlog is full (EAGAIN): wait for room then.
    if (errno != EAGAIN && errno != EINPROGRESS) {
      error = fmt::format("cannot connect to {}: {}{}", path, std::strerror(errno),
                          errno == ENOENT || errno == ECONNREFUSED ? " (is the gateway running?)" : "");
      return nullptr;
    }
    const auto deadline = deadline_after(timeout);
    for (;;) {
      if (!wait_for(fd, POLLOUT, deadline, error)) return nullptr;
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) == 0 ||
          errno == EISCONN) {
        break;
      }
      if (errno != EAGAIN && errno != EINPROGRESS && errno != EALREADY) {
        error = fmt::format("cannot connect to {}: {}", path, std::strerror(errno));
        return nullptr;
      }
    }
  }
  return client;
}

ControlClient::~ControlClient() {
  if (fd_ >= 0) ::close(fd_);
}

bool ControlClient::read_line(std::string& line, clock::time_point deadline, std::string& error) {
  std::size_t scanned = 0;
  for (;;) {
    if (const std::size_t newline = buffered_.find('\n', scanned); newline != std::string::npos) {
      line.assign(buffered_, 0, newline);
      buffered_.erase(0, newline + 1);
      return true;
    }
    scanned = buffered_.size();
    if (buffered_.size() > kMaxReplyBytes) {
      error = fmt::format("response longer than {} bytes", kMaxReplyBytes);
      return false;
    }
    char chunk[65536];
    const ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buffered_.append(chunk, static_cast<std::size_t>(n));
    } else if (n == 0) {
      error = "the gateway closed the connection without answering";
      return false;
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait_for(fd_, POLLIN, deadline, error)) return false;
    } else {
      error = fmt::format("receiving from the gateway: {}", std::strerror(errno));
      return false;
    }
  }
}

bool ControlClient::call(const std::string& command, const nlohmann::json& args, Reply& reply,
                         std::string& error) {
  const int64_t id = next_id_++;
  nlohmann::json request = {{"id", id}, {"command", command}, {"args", args}};
  std::string line = request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  const auto deadline = deadline_after(timeout_);
  std::size_t sent = 0;
  std::string send_error;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait_for(fd_, POLLOUT, deadline, error)) return false;
    } else {
      // The gateway may have refused us and closed (forbidden, busy,
      // too_large): its answer is still there to be read.
      send_error = fmt::format("sending to the gateway: {}", std::strerror(errno));
      break;
    }
  }
  std::string answer;
  if (!read_line(answer, deadline, error)) {
    if (!send_error.empty()) error = send_error;
    return false;
  }
  reply = parse_reply(answer, id, error);
  return error.empty();
}

}  // namespace mtlsgw::ctl
