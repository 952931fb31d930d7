#include "dataplane/services/relay.h"

namespace mtlsgw::services {

using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::TcpStack;

Relay::Relay(net::Interface& interface, net::Ipv4Address upstream_ip, uint16_t upstream_port,
             uint32_t max_pairs)
    : interface_(interface), upstream_ip_(upstream_ip), upstream_port_(upstream_port), pairs_(max_pairs) {
  free_.reserve(max_pairs);
  for (uint32_t i = max_pairs; i > 0; --i) free_.push_back(i - 1);
}

Relay::Pair* Relay::pair_of(TcpStack& stack, ConnHandle h) noexcept {
  return static_cast<Pair*>(stack.user(h));
}

void Relay::release(Pair& pair) noexcept {
  pair = Pair{};
  free_.push_back(static_cast<uint32_t>(&pair - pairs_.data()));
  --active_;
}

void Relay::on_accepted(TcpStack& stack, ConnHandle h, const net::tcp::FourTuple&) noexcept {
  if (free_.empty()) {
    stack.abort(h);
    return;
  }
  Pair& pair = pairs_[free_.back()];
  free_.pop_back();
  ++active_;
  pair.in_use = true;
  pair.client.handle = h;
  stack.set_user(h, &pair);
  const ConnHandle up = stack.connect(interface_, upstream_ip_, upstream_port_, this, stack.now_us());
  if (!up.valid()) {
    // No TCB or no port for the upstream: refuse the client the same way a
    // refused upstream would.
    stack.abort(h);
    release(pair);
    return;
  }
  pair.upstream.handle = up;
  stack.set_user(up, &pair);
}

void Relay::on_connected(TcpStack& stack, ConnHandle h) noexcept {
  Pair* pair = pair_of(stack, h);
  if (pair == nullptr) return;
  splice(stack, pair->client, pair->upstream);
}

void Relay::splice(TcpStack& stack, Side& from, Side& to) noexcept {
  if (from.closed || to.closed) return;
  for (;;) {
    const auto spans = stack.peek(from.handle);
    uint32_t moved = 0;
    bool full = false;
    for (int i = 0; i < 2 && !full; ++i) {
      if (spans.len[i] == 0) continue;
      const uint32_t sent = stack.send(to.handle, spans.data[i], spans.len[i]);
      moved += sent;
      full = sent < spans.len[i];
    }
    if (moved == 0) break;
    stack.consume(from.handle, moved);
    if (full) break;
  }
  // The FIN goes across after the last byte before it.
  if (from.eof && !to.shut && stack.readable(from.handle) == 0) {
    to.shut = true;
    stack.shutdown(to.handle);
  }
}

void Relay::on_readable(TcpStack& stack, ConnHandle h) noexcept {
  Pair* pair = pair_of(stack, h);
  if (pair == nullptr) return;
  if (h == pair->client.handle) {
    splice(stack, pair->client, pair->upstream);
  } else {
    splice(stack, pair->upstream, pair->client);
  }
}

void Relay::on_writable(TcpStack& stack, ConnHandle h) noexcept {
  Pair* pair = pair_of(stack, h);
  if (pair == nullptr) return;
  if (h == pair->client.handle) {
    splice(stack, pair->upstream, pair->client);
  } else {
    splice(stack, pair->client, pair->upstream);
  }
}

void Relay::on_peer_closed(TcpStack& stack, ConnHandle h) noexcept {
  Pair* pair = pair_of(stack, h);
  if (pair == nullptr) return;
  Side& from = h == pair->client.handle ? pair->client : pair->upstream;
  Side& to = h == pair->client.handle ? pair->upstream : pair->client;
  from.eof = true;
  splice(stack, from, to);
}

void Relay::on_closed(TcpStack& stack, ConnHandle h, CloseReason reason) noexcept {
  Pair* pair = pair_of(stack, h);
  if (pair == nullptr) return;
  Side& gone = h == pair->client.handle ? pair->client : pair->upstream;
  Side& other = h == pair->client.handle ? pair->upstream : pair->client;
  gone.closed = true;
  if (!other.closed && reason != CloseReason::closed) {
    // A reset, a timeout or a refusal on one side resets the other: the
    // peer must not take a truncated stream for a complete one.
    other.closed = true;
    stack.abort(other.handle);
  }
  if (other.closed) release(*pair);
}

}  // namespace mtlsgw::services
