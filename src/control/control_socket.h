#pragma once
// The control socket's server: a Unix stream socket served from the control
// thread by an io_uring event loop (accept, recv and send as SQEs), so that
// many clients, long PEM-carrying requests and clients that do not read
// their answers never block the thread's other work. Framing, limits and the
// peer check are described in docs/control.md.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "control/control_protocol.h"

namespace mtlsgw::control {

// Called on the control thread, for one client's requests in their order.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // A well-formed request (the server answers envelope errors itself).
  // Returns the response line without its '\n' (format_result or
  // format_error). An exception is answered as an internal error.
  virtual std::string handle(uint64_t client_id, const Request& request) = 0;
  // The client's connection is over (closed by either side, dropped, or the
  // server is being destroyed); called once per client that handle() may
  // have seen, after its last handle().
  virtual void client_closed(uint64_t client_id) = 0;
};

struct ControlSocketOptions {
  std::string path;
  // Peers allowed besides uid 0 and the server's own effective uid. A gid
  // matches the peer's primary group or one of its supplementary groups.
  std::vector<uid_t> allowed_uids;
  std::vector<gid_t> allowed_gids;
  std::size_t max_clients = 64;
  std::size_t max_request_bytes = kMaxRequestBytes;
  // Answers a client has not read yet; past it the client is dropped.
  std::size_t max_pending_output = std::size_t{64} << 20;
};

class ControlSocket {
 public:
  // Binds and listens on options.path. Creates the parent directory (one
  // level) when it is missing. A socket file already at path is removed when
  // nothing answers on it (left by a gateway that died); when something does
  // answer, or path is another kind of file, open fails. Returns nullptr with
  // error set on failure. handler must outlive the socket.
  static std::unique_ptr<ControlSocket> open(const ControlSocketOptions& options,
                                             RequestHandler& handler, std::string& error);

  // Closes every client (client_closed for each) and removes the socket file
  // if it is still the one this server created.
  ~ControlSocket();
  ControlSocket(const ControlSocket&) = delete;
  ControlSocket& operator=(const ControlSocket&) = delete;

  // Waits up to max_wait for socket events, handles every one that is ready
  // (calling the handler), submits the resulting sends and returns. True when
  // at least one event was handled. Never throws; a failing io_uring call is
  // kept in last_error().
  bool poll(std::chrono::milliseconds max_wait);

  std::size_t client_count() const;
  const std::string& path() const;
  const std::string& last_error() const;

  struct State;  // the event loop's state, in control_socket.cc

 private:
  explicit ControlSocket(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace mtlsgw::control
