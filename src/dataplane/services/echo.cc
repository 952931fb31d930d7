#include "dataplane/services/echo.h"

namespace mtlsgw::services {

using net::tcp::ConnHandle;
using net::tcp::TcpStack;

void Echo::pump(TcpStack& stack, ConnHandle h) noexcept {
  // Read only what can be sent back at once: when the client does not read
  // its echo, our receive window closes and the client is flow-controlled
  // (RFC 9293 3.8.6) instead of us buffering without bound.
  for (;;) {
    const auto spans = stack.peek(h);
    uint32_t moved = 0;
    for (int i = 0; i < 2; ++i) {
      if (spans.len[i] == 0) continue;
      const uint32_t sent = stack.send(h, spans.data[i], spans.len[i]);
      moved += sent;
      if (sent < spans.len[i]) break;
    }
    if (moved == 0) break;
    stack.consume(h, moved);
  }
  if (stack.user(h) != nullptr && stack.readable(h) == 0) stack.shutdown(h);
}

void Echo::on_accepted(TcpStack&, ConnHandle, const net::tcp::FourTuple&) noexcept {}

void Echo::on_readable(TcpStack& stack, ConnHandle h) noexcept { pump(stack, h); }

void Echo::on_writable(TcpStack& stack, ConnHandle h) noexcept { pump(stack, h); }

void Echo::on_peer_closed(TcpStack& stack, ConnHandle h) noexcept {
  // Finish echoing what is still buffered, then close our side too.
  stack.set_user(h, this);
  pump(stack, h);
}

void Echo::on_closed(TcpStack&, ConnHandle, net::tcp::CloseReason) noexcept {}

}  // namespace mtlsgw::services
