#include "dataplane/services/discard.h"

namespace mtlsgw::services {

using net::tcp::ConnHandle;
using net::tcp::TcpStack;

Chargen::Chargen() {
  for (uint32_t line = 0; line < kLines; ++line) {
    for (uint32_t i = 0; i < 72; ++i) pattern_[line * kLine + i] = static_cast<uint8_t>(' ' + (line + i) % 95);
    pattern_[line * kLine + 72] = '\r';
    pattern_[line * kLine + 73] = '\n';
  }
}

// The position in the pattern travels in the connection's user pointer, so
// the stream continues seamlessly across sends.
void Chargen::fill(TcpStack& stack, ConnHandle h) noexcept {
  auto offset = reinterpret_cast<uintptr_t>(stack.user(h));
  for (;;) {
    const uint32_t at = static_cast<uint32_t>(offset % sizeof pattern_);
    const uint32_t sent = stack.send(h, pattern_ + at, static_cast<uint32_t>(sizeof pattern_ - at));
    if (sent == 0) break;
    offset += sent;
  }
  stack.set_user(h, reinterpret_cast<void*>(offset));
}

void Chargen::on_accepted(TcpStack& stack, ConnHandle h, const net::tcp::FourTuple&) noexcept { fill(stack, h); }

void Chargen::on_readable(TcpStack& stack, ConnHandle h) noexcept { stack.consume(h, stack.readable(h)); }

void Chargen::on_writable(TcpStack& stack, ConnHandle h) noexcept { fill(stack, h); }

// RFC 864: the stream runs until the user closes the connection.
void Chargen::on_peer_closed(TcpStack& stack, ConnHandle h) noexcept { stack.close(h); }

}  // namespace mtlsgw::services
