#include "control/control_socket.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <unordered_map>

namespace mtlsgw::control {
namespace {

// What a completion belongs to: the kind in the low bits of user_data, the
// client id above them (0: the listening socket).
enum class Op : uint64_t { accept = 0, accept_retry = 1, recv = 2, send = 3, cancel = 4 };
constexpr unsigned kOpBits = 3;
constexpr uint64_t kOpMask = (uint64_t{1} << kOpBits) - 1;

uint64_t tag(Op op, uint64_t client_id) {
  return client_id << kOpBits | static_cast<uint64_t>(op);
}

// One recv's worth; a 32 MiB request takes 512 of them, which costs far less
// than the handler's work on such a request.
constexpr std::size_t kRecvChunk = std::size_t{64} << 10;
// Operations in flight: at most recv, send and cancel per client plus the
// accept; 256 entries cover 64 clients, and a fuller queue is submitted and
// reused (get_sqe), and the kernel keeps overflowing completions
// (IORING_FEAT_NODROP).
constexpr unsigned kRingEntries = 256;
constexpr int kListenBacklog = 64;
// After EMFILE/ENFILE/ENOMEM an immediate new accept fails the same way; the
// pause keeps the control thread from spinning until descriptors free up.
constexpr long kAcceptRetryNs = 100'000'000;
// The destructor waits this long for cancelled operations to complete before
// tearing the ring down under them.
constexpr auto kShutdownWait = std::chrono::seconds(2);

std::string errno_text(int err) { return std::strerror(err); }

// A client that once sent a PEM-sized request or got a config dump should
// not keep megabytes of capacity for the rest of its connection: 64 idle
// clients could otherwise hold 64 x 32 MiB.
void release_if_large(std::string& buffer) {
  if (buffer.empty() && buffer.capacity() > 16 * kRecvChunk) std::string().swap(buffer);
}

bool fill_address(const std::string& path, sockaddr_un& address, std::string& error) {
  address = {};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path)) {
    error = fmt::format("control socket path {} is longer than {} bytes", path,
                        sizeof(address.sun_path) - 1);
    return false;
  }
  std::memcpy(address.sun_path, path.data(), path.size());
  return true;
}

// Whether a server answers on the socket file at path.
enum class Probe { live, stale, failed };
Probe probe(const sockaddr_un& address, std::string& error) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    error = fmt::format("socket: {}", errno_text(errno));
    return Probe::failed;
  }
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address));
  const int err = errno;
  ::close(fd);
  // A full backlog (EAGAIN) is a live server too.
  if (rc == 0 || err == EAGAIN) return Probe::live;
  if (err == ECONNREFUSED) return Probe::stale;
  error = fmt::format("cannot check {}: {}", address.sun_path, errno_text(err));
  return Probe::failed;
}

struct Client {
  uint64_t id = 0;
  int fd = -1;
  std::unique_ptr<char[]> recv_buffer = std::make_unique<char[]>(kRecvChunk);
  std::string input;         // bytes after the last complete line
  std::size_t scanned = 0;   // input[0, scanned) holds no '\n'
  // The in-flight send reads `sending` from `sent` on, so it must not change
  // until its completion; answers queue in `pending` meanwhile.
  std::string sending;
  std::size_t sent = 0;
  std::string pending;
  bool reading = true;       // false after EOF or a too_large answer
  bool closing = false;      // shut down; freed when nothing is in flight
  bool recv_in_flight = false;
  bool send_in_flight = false;
  bool cancel_in_flight = false;

  std::size_t unsent() const { return sending.size() - sent + pending.size(); }
  bool busy() const { return recv_in_flight || send_in_flight || cancel_in_flight; }
};

}  // namespace

struct ControlSocket::State {
  ControlSocketOptions options;
  RequestHandler* handler = nullptr;
  io_uring ring{};
  bool ring_ready = false;
  int listen_fd = -1;
  dev_t socket_dev = 0;
  ino_t socket_ino = 0;
  uid_t own_uid = 0;
  bool stopping = false;
  bool accept_in_flight = false;
  bool retry_in_flight = false;
  __kernel_timespec retry_delay{0, kAcceptRetryNs};
  uint64_t next_client_id = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients;
  std::string last_error;

  ~State();

  io_uring_sqe* sqe();
  void arm_accept();
  void arm_accept_retry();
  void arm_recv(Client& client);
  void arm_send(Client& client);

  std::size_t drain_completions();
  void on_completion(uint64_t user_data, int result);
  void on_accept(int result);
  void on_recv(Client& client, int result);
  void on_send(Client& client, int result);

  bool peer_allowed(int fd);
  void reject(int fd, ErrorCode code, std::string message);
  void process_input(Client& client);
  void answer(Client& client, std::string_view line);
  void queue_output(Client& client, std::string_view line);
  void close_client(Client& client);
  void release_if_done(uint64_t client_id);
};

io_uring_sqe* ControlSocket::State::sqe() {
  io_uring_sqe* entry = io_uring_get_sqe(&ring);
  if (entry == nullptr) {
    io_uring_submit(&ring);
    entry = io_uring_get_sqe(&ring);
  }
  if (entry == nullptr) last_error = "io_uring submission queue full";
  return entry;
}

void ControlSocket::State::arm_accept() {
  if (stopping || accept_in_flight || retry_in_flight) return;
  io_uring_sqe* entry = sqe();
  if (entry == nullptr) return;
  io_uring_prep_accept(entry, listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  io_uring_sqe_set_data64(entry, tag(Op::accept, 0));
  accept_in_flight = true;
}

void ControlSocket::State::arm_accept_retry() {
  io_uring_sqe* entry = sqe();
  if (entry == nullptr) return;
  io_uring_prep_timeout(entry, &retry_delay, 0, 0);
  io_uring_sqe_set_data64(entry, tag(Op::accept_retry, 0));
  retry_in_flight = true;
}

void ControlSocket::State::arm_recv(Client& client) {
  if (client.closing || !client.reading || client.recv_in_flight) return;
  io_uring_sqe* entry = sqe();
  if (entry == nullptr) {
    close_client(client);
    return;
  }
  io_uring_prep_recv(entry, client.fd, client.recv_buffer.get(), kRecvChunk, 0);
  io_uring_sqe_set_data64(entry, tag(Op::recv, client.id));
  client.recv_in_flight = true;
}

void ControlSocket::State::arm_send(Client& client) {
  if (client.closing || client.send_in_flight) return;
  if (client.sent == client.sending.size()) {
    client.sending.clear();
    client.sent = 0;
    std::swap(client.sending, client.pending);
    release_if_large(client.pending);
  }
  if (client.sending.empty()) {
    // Everything is written: a client that stopped sending (EOF) or was
    // refused a too_large line is done.
    if (!client.reading) close_client(client);
    return;
  }
  io_uring_sqe* entry = sqe();
  if (entry == nullptr) {
    close_client(client);
    return;
  }
  io_uring_prep_send(entry, client.fd, client.sending.data() + client.sent,
                     client.sending.size() - client.sent, MSG_NOSIGNAL);
  io_uring_sqe_set_data64(entry, tag(Op::send, client.id));
  client.send_in_flight = true;
}

std::size_t ControlSocket::State::drain_completions() {
  std::size_t handled = 0;
  io_uring_cqe* cqe = nullptr;
  while (io_uring_peek_cqe(&ring, &cqe) == 0 && cqe != nullptr) {
    const uint64_t user_data = io_uring_cqe_get_data64(cqe);
    const int result = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    on_completion(user_data, result);
    ++handled;
  }
  return handled;
}

void ControlSocket::State::on_completion(uint64_t user_data, int result) {
  const auto op = static_cast<Op>(user_data & kOpMask);
  const uint64_t client_id = user_data >> kOpBits;
  if (op == Op::accept) {
    on_accept(result);
    return;
  }
  if (op == Op::accept_retry) {
    retry_in_flight = false;
    arm_accept();
    return;
  }
  auto it = clients.find(client_id);
  if (it == clients.end()) return;
  Client& client = *it->second;
  switch (op) {
    case Op::recv:
      on_recv(client, result);
      break;
    case Op::send:
      on_send(client, result);
      break;
    case Op::cancel:
      client.cancel_in_flight = false;
      break;
    default:
      break;
  }
  release_if_done(client_id);
}

void ControlSocket::State::on_accept(int result) {
  accept_in_flight = false;
  if (result < 0) {
    if (result == -ECANCELED || stopping) return;
    if (result == -EMFILE || result == -ENFILE || result == -ENOBUFS || result == -ENOMEM) {
      last_error = fmt::format("accept on {}: {}", options.path, errno_text(-result));
      arm_accept_retry();
    } else {
      arm_accept();
    }
    return;
  }
  const int fd = result;
  if (stopping) {
    ::close(fd);
    return;
  }
  arm_accept();
  if (!peer_allowed(fd)) {
    reject(fd, ErrorCode::forbidden, "this user may not use the control socket");
    return;
  }
  if (clients.size() >= options.max_clients) {
    reject(fd, ErrorCode::busy,
           fmt::format("the gateway serves its maximum of {} control clients; try again later",
                       options.max_clients));
    return;
  }
  auto client = std::make_unique<Client>();
  client->id = next_client_id++;
  client->fd = fd;
  Client& added = *client;
  clients.emplace(added.id, std::move(client));
  arm_recv(added);
}

bool ControlSocket::State::peer_allowed(int fd) {
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0) return false;
  if (peer.uid == 0 || peer.uid == own_uid) return true;
  const auto& uids = options.allowed_uids;
  if (std::find(uids.begin(), uids.end(), peer.uid) != uids.end()) return true;
  const auto& gids = options.allowed_gids;
  if (gids.empty()) return false;
  if (std::find(gids.begin(), gids.end(), peer.gid) != gids.end()) return true;
  // Operators are usually in the allowed group as a supplementary group.
  std::vector<gid_t> groups(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    socklen_t bytes = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &bytes) == 0) {
      groups.resize(bytes / sizeof(gid_t));
      for (gid_t group : groups) {
        if (std::find(gids.begin(), gids.end(), group) != gids.end()) return true;
      }
      return false;
    }
    if (errno != ERANGE) return false;
    groups.resize(bytes / sizeof(gid_t));  // ERANGE reports the size it needs
  }
  return false;
}

void ControlSocket::State::reject(int fd, ErrorCode code, std::string message) {
  // One short line into a fresh connection's empty buffer: a plain
  // non-blocking send cannot fall short. Data the client sent already stays
  // unread; it reads this line before the reset that closing with unread
  // data causes.
  std::string line = format_error(nullptr, ErrorInfo{code, std::move(message), ""});
  line += '\n';
  [[maybe_unused]] const ssize_t written =
      ::send(fd, line.data(), line.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::close(fd);
}

void ControlSocket::State::on_recv(Client& client, int result) {
  client.recv_in_flight = false;
  if (client.closing) return;
  if (result < 0) {
    close_client(client);
    return;
  }
  if (result == 0) {
    // The client has sent everything. An unterminated rest is a request cut
    // off by the disconnect: not answered. Answers still owed are written
    // before the close (arm_send), for clients that half-close after their
    // requests.
    client.reading = false;
    client.input.clear();
    arm_send(client);
    return;
  }
  client.input.append(client.recv_buffer.get(), static_cast<std::size_t>(result));
  process_input(client);
  arm_send(client);
  arm_recv(client);
}

void ControlSocket::State::on_send(Client& client, int result) {
  client.send_in_flight = false;
  if (client.closing) return;
  if (result < 0) {
    close_client(client);
    return;
  }
  client.sent += static_cast<std::size_t>(result);
  arm_send(client);
}

void ControlSocket::State::process_input(Client& client) {
  std::size_t start = 0;
  std::size_t search_from = client.scanned;
  while (client.reading && !client.closing) {
    const std::size_t newline = client.input.find('\n', search_from);
    if (newline == std::string::npos) break;
    const std::string_view line(client.input.data() + start, newline - start);
    start = newline + 1;
    search_from = start;
    if (line.size() > options.max_request_bytes) {
      client.reading = false;
      break;
    }
    answer(client, line);
  }
  if (client.closing) return;
  if (client.reading) {
    client.input.erase(0, start);
    release_if_large(client.input);
    client.scanned = client.input.size();
    if (client.input.size() <= options.max_request_bytes) return;
  }
  // A line past the limit, complete or not: answer, stop reading, and close
  // once the answer is written; reading on would mean buffering without end
  // or resynchronising inside someone's PEM.
  client.reading = false;
  client.input.clear();
  client.input.shrink_to_fit();
  queue_output(client,
               format_error(nullptr, ErrorInfo{ErrorCode::too_large,
                                               fmt::format("request line longer than {} bytes",
                                                           options.max_request_bytes),
                                               ""}));
}

void ControlSocket::State::answer(Client& client, std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF from telnet-like tools
  if (line.find_first_not_of(" \t") == std::string_view::npos) return;
  nlohmann::json id;
  auto parsed = parse_request(line, &id);
  std::string response;
  if (auto* error = std::get_if<ErrorInfo>(&parsed)) {
    response = format_error(id, *error);
  } else {
    const Request& request = std::get<Request>(parsed);
    try {
      response = handler->handle(client.id, request);
    } catch (const std::exception& e) {
      response = format_error(request.id, ErrorInfo{ErrorCode::internal, e.what(), ""});
    } catch (...) {
      response = format_error(request.id, ErrorInfo{ErrorCode::internal, "unknown exception", ""});
    }
  }
  queue_output(client, response);
}

void ControlSocket::State::queue_output(Client& client, std::string_view line) {
  // One answer is always taken, however large (a config dump); a client
  // that leaves earlier answers unread while asking for more is dropped.
  const std::size_t unsent = client.unsent();
  if (unsent > 0 && unsent + line.size() + 1 > options.max_pending_output) {
    close_client(client);
    return;
  }
  client.pending.append(line);
  client.pending += '\n';
}

void ControlSocket::State::close_client(Client& client) {
  if (client.closing) return;
  client.closing = true;
  try {
    handler->client_closed(client.id);
  } catch (...) {
    // The connection is gone whatever the handler thinks of it.
  }
  // shutdown wakes an operation waiting on the socket; the cancel catches
  // one that is not waiting on it. The descriptor stays open until both are
  // done, so that its number cannot be reused under them.
  ::shutdown(client.fd, SHUT_RDWR);
  if (client.recv_in_flight || client.send_in_flight) {
    if (io_uring_sqe* entry = sqe()) {
      io_uring_prep_cancel_fd(entry, client.fd, IORING_ASYNC_CANCEL_ALL);
      io_uring_sqe_set_data64(entry, tag(Op::cancel, client.id));
      client.cancel_in_flight = true;
    }
  }
}

void ControlSocket::State::release_if_done(uint64_t client_id) {
  auto it = clients.find(client_id);
  if (it == clients.end()) return;
  Client& client = *it->second;
  if (!client.closing || client.busy()) return;
  ::close(client.fd);
  clients.erase(it);
}

ControlSocket::State::~State() {
  if (ring_ready) {
    stopping = true;
    if (io_uring_sqe* entry = accept_in_flight || retry_in_flight ? sqe() : nullptr) {
      io_uring_prep_cancel64(entry, tag(accept_in_flight ? Op::accept : Op::accept_retry, 0), 0);
      io_uring_sqe_set_data64(entry, tag(Op::cancel, 0));
    }
    for (auto& [id, client] : clients) close_client(*client);
    for (auto it = clients.begin(); it != clients.end();) {
      auto next = std::next(it);
      release_if_done(it->first);
      it = next;
    }
    // Buffers of recvs and sends in flight belong to the clients: wait for
    // their completions before freeing them.
    const auto deadline = std::chrono::steady_clock::now() + kShutdownWait;
    while ((!clients.empty() || accept_in_flight || retry_in_flight) &&
           std::chrono::steady_clock::now() < deadline) {
      __kernel_timespec wait{0, 100'000'000};
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &wait, nullptr);
      drain_completions();
    }
    io_uring_queue_exit(&ring);
  }
  for (auto& [id, client] : clients) ::close(client->fd);
  if (listen_fd >= 0) {
    struct stat now {};
    if (::lstat(options.path.c_str(), &now) == 0 && now.st_dev == socket_dev &&
        now.st_ino == socket_ino) {
      ::unlink(options.path.c_str());
    }
    ::close(listen_fd);
  }
}

std::unique_ptr<ControlSocket> ControlSocket::open(const ControlSocketOptions& options,
                                                   RequestHandler& handler, std::string& error) {
  if (options.path.empty()) {
    error = "control socket path is empty";
    return nullptr;
  }
  sockaddr_un address{};
  if (!fill_address(options.path, address, error)) return nullptr;
  // With extra peers the kernel's file permissions would stop them before
  // SO_PEERCRED is asked: the socket is then open to all and the peer check
  // decides, and a directory we create lets them through without listing it.
  const bool extra_peers = !options.allowed_uids.empty() || !options.allowed_gids.empty();
  const mode_t socket_mode = extra_peers ? 0666 : 0600;
  const mode_t directory_mode = extra_peers ? 0711 : 0700;

  const std::filesystem::path parent = std::filesystem::path(options.path).parent_path();
  if (!parent.empty()) {
    struct stat info {};
    if (::stat(parent.c_str(), &info) != 0) {
      if (errno != ENOENT || ::mkdir(parent.c_str(), directory_mode) != 0) {
        error = fmt::format("cannot create the control socket's directory {}: {}", parent.string(),
                            errno_text(errno));
        return nullptr;
      }
    } else if (!S_ISDIR(info.st_mode)) {
      error = fmt::format("{} is not a directory", parent.string());
      return nullptr;
    }
  }

  struct stat existing {};
  if (::lstat(options.path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      error = fmt::format("{} exists and is not a socket; not replacing it", options.path);
      return nullptr;
    }
    switch (probe(address, error)) {
      case Probe::live:
        error = fmt::format(
            "another process (a running gateway?) answers on the control socket {}; "
            "stop it or choose another --control-socket",
            options.path);
        return nullptr;
      case Probe::failed:
        return nullptr;
      case Probe::stale:
        // Left behind by a gateway that did not stop cleanly.
        if (::unlink(options.path.c_str()) != 0 && errno != ENOENT) {
          error = fmt::format("cannot remove the stale socket {}: {}", options.path,
                              errno_text(errno));
          return nullptr;
        }
        break;
    }
  }

  auto state = std::make_unique<State>();
  state->options = options;
  state->handler = &handler;
  state->own_uid = ::geteuid();
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = fmt::format("socket: {}", errno_text(errno));
    return nullptr;
  }
  // Linux gives the socket file the mode of the socket's inode (less the
  // umask) at bind: set before bind, the file is never more open than
  // socket_mode; the chmod after bind undoes the umask.
  ::fchmod(fd, socket_mode);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
    const int err = errno;
    ::close(fd);
    error = err == EADDRINUSE
                ? fmt::format("another process bound {} meanwhile", options.path)
                : fmt::format("cannot bind the control socket {}: {}", options.path,
                              errno_text(err));
    return nullptr;
  }
  state->listen_fd = fd;  // from here on the State's destructor unlinks the file
  struct stat bound {};
  if (::lstat(options.path.c_str(), &bound) == 0) {
    state->socket_dev = bound.st_dev;
    state->socket_ino = bound.st_ino;
  }
  if (::chmod(options.path.c_str(), socket_mode) != 0 || ::listen(fd, kListenBacklog) != 0) {
    error = fmt::format("cannot set up the control socket {}: {}", options.path,
                        errno_text(errno));
    return nullptr;
  }
  if (const int rc = io_uring_queue_init(kRingEntries, &state->ring, 0); rc < 0) {
    error = fmt::format("io_uring_queue_init: {}", errno_text(-rc));
    return nullptr;
  }
  state->ring_ready = true;
  state->arm_accept();
  if (const int rc = io_uring_submit(&state->ring); rc < 0) {
    error = fmt::format("io_uring_submit: {}", errno_text(-rc));
    return nullptr;
  }
  return std::unique_ptr<ControlSocket>(new ControlSocket(std::move(state)));
}

ControlSocket::ControlSocket(std::unique_ptr<State> state) : state_(std::move(state)) {}
ControlSocket::~ControlSocket() = default;

bool ControlSocket::poll(std::chrono::milliseconds max_wait) {
  State& s = *state_;
  const auto wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::max(max_wait, std::chrono::milliseconds(0)));
  __kernel_timespec timeout{};
  timeout.tv_sec = wait_ns.count() / 1'000'000'000;
  timeout.tv_nsec = wait_ns.count() % 1'000'000'000;
  io_uring_cqe* cqe = nullptr;
  const int rc = io_uring_submit_and_wait_timeout(&s.ring, &cqe, 1, &timeout, nullptr);
  if (rc < 0 && rc != -ETIME && rc != -EINTR) {
    s.last_error = fmt::format("io_uring wait: {}", errno_text(-rc));
  }
  // Answers queued while handling completions go out before returning; a
  // few rounds pick up what completed meanwhile (sends that went through at
  // once) without letting a busy client keep the thread here.
  bool handled = false;
  for (int round = 0; round < 4; ++round) {
    if (s.drain_completions() == 0) break;
    handled = true;
    if (const int submitted = io_uring_submit(&s.ring); submitted < 0) {
      s.last_error = fmt::format("io_uring submit: {}", errno_text(-submitted));
    }
  }
  return handled;
}

std::size_t ControlSocket::client_count() const { return state_->clients.size(); }
const std::string& ControlSocket::path() const { return state_->options.path; }
const std::string& ControlSocket::last_error() const { return state_->last_error; }

}  // namespace mtlsgw::control
