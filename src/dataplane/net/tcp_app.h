#pragma once
// How applications (the built-in services now, TLS later) use a worker's TCP.
// Event-driven and run to completion: the stack calls the application from
// its receive path and timers; the application calls back into the stack
// (TcpStack::send/read/close) from inside those calls or from its own poll.
// Connections are named by handles with a generation, so a stale handle from
// a closed connection can never reach a reused slot.

#include <cstdint>

#include "dataplane/net/tcp_tuple.h"

namespace mtlsgw::net::tcp {

struct ConnHandle {
  uint32_t index = UINT32_MAX;
  uint32_t generation = 0;
  bool valid() const noexcept { return index != UINT32_MAX; }
  friend bool operator==(const ConnHandle&, const ConnHandle&) = default;
};

enum class CloseReason : uint8_t {
  closed,         // both sides finished (FIN both ways, or our close after the peer's)
  reset_by_peer,  // RST received
  aborted,        // we sent RST (application abort)
  timed_out,      // retransmissions or handshake exhausted (RFC 9293 3.8.3 R2)
  refused,        // active open answered with RST
  unreachable,    // no route / next hop never resolved
};
const char* name_of(CloseReason reason) noexcept;

class TcpStack;

class TcpApp {
 public:
  virtual ~TcpApp() = default;
  // A passive open completed (ESTABLISHED). The application may keep h.
  virtual void on_accepted(TcpStack& stack, ConnHandle h, const FourTuple& tuple) noexcept = 0;
  // An active open completed.
  virtual void on_connected(TcpStack&, ConnHandle) noexcept {}
  // New in-order data is readable (TcpStack::read / peek / consume).
  virtual void on_readable(TcpStack& stack, ConnHandle h) noexcept = 0;
  // Room appeared in the send buffer after it had refused data.
  virtual void on_writable(TcpStack&, ConnHandle) noexcept {}
  // The peer sent FIN: no more data will arrive (after what is readable).
  virtual void on_peer_closed(TcpStack& stack, ConnHandle h) noexcept = 0;
  // The connection is over for the application; it must not use h again.
  // A clean end is told once both FINs are exchanged and everything
  // received was read: when TIME-WAIT starts, not when it ends 2*MSL later
  // (the TCB lingers for the protocol alone, like Linux's timewait sockets).
  virtual void on_closed(TcpStack& stack, ConnHandle h, CloseReason reason) noexcept = 0;
  // Called once per worker loop iteration after the stack's own timers, for
  // an application's timers (handshake, idle and connect timeouts). Returns
  // how much work it did (0: none), for the worker's busy accounting.
  virtual uint32_t poll(TcpStack&, uint64_t /*now_us*/) noexcept { return 0; }
};

}  // namespace mtlsgw::net::tcp
