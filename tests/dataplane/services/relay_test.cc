// The relay service between two real stacks over a faulty fake link: side a
// is the gateway (relay on port 8000 towards 198.18.0.1:9000), side b plays
// both the clients and the upstream server, like the namespace's kernel does
// in the integration test. Every stream must arrive byte-exact and every
// close must be carried across, whatever the link does.

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/services/relay.h"
#include "tcp_pair.h"

namespace mtlsgw::testing {
namespace {

using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::TcpStack;

constexpr uint16_t kRelayPort = 8000;
constexpr uint16_t kUpstreamPort = 9000;
// 100 clients at once, as in the integration test.
constexpr size_t kClients = 100;
constexpr size_t kStreamBytes = 96 * 1024;

enum class Order { client_first, server_first, concurrent };

// A stream no two connections share and in which a misplaced block shows.
std::string pattern(uint32_t stream, size_t len) {
  std::string s(len, '\0');
  uint64_t x = 0x9e3779b97f4a7c15ULL * (stream + 1);
  for (size_t i = 0; i < len; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    s[i] = static_cast<char>(x);
  }
  return s;
}

// Side b's application: the clients (active opens to the relay) and the
// upstream server (passive opens on 9000). Each connection sends its own
// stream, reads everything, and half-closes when the order says so.
class Peers final : public net::tcp::TcpApp {
 public:
  struct Conn {
    ConnHandle handle;
    bool is_client = false;
    uint32_t stream = 0;
    uint16_t local_port = 0;
    std::string to_send;
    size_t sent = 0;
    bool started = false;  // allowed to send
    bool shut = false;
    std::string received;
    bool eof = false;
    bool closed = false;
    CloseReason reason = CloseReason::closed;
  };

  Peers(Order order, size_t bytes) : order_(order), bytes_(bytes) {}

  void open_client(TcpStack& stack, net::Interface& iface, uint32_t stream) {
    const ConnHandle h = stack.connect(iface, ip(198, 18, 0, 2), kRelayPort, this, stack.now_us());
    ASSERT_TRUE(h.valid());
    Conn& c = conns_[key(h)];
    c.handle = h;
    c.is_client = true;
    c.stream = stream;
    c.local_port = stack.tuple(h)->local_port;
    c.to_send = pattern(stream, bytes_);
  }

  void on_accepted(TcpStack& stack, ConnHandle h, const net::tcp::FourTuple&) noexcept override {
    Conn& c = conns_[key(h)];
    c.handle = h;
    c.stream = 1'000'000 + next_upstream_++;
    c.to_send = pattern(c.stream, bytes_);
    c.started = order_ != Order::client_first;
    pump(stack, c);
  }
  void on_connected(TcpStack& stack, ConnHandle h) noexcept override {
    Conn& c = conns_.at(key(h));
    c.started = order_ != Order::server_first;
    pump(stack, c);
  }
  void on_readable(TcpStack& stack, ConnHandle h) noexcept override {
    Conn& c = conns_.at(key(h));
    uint8_t buf[8192];
    while (uint32_t n = stack.read(h, buf, sizeof buf)) {
      c.received.append(reinterpret_cast<const char*>(buf), n);
    }
  }
  void on_writable(TcpStack& stack, ConnHandle h) noexcept override { pump(stack, conns_.at(key(h))); }
  void on_peer_closed(TcpStack& stack, ConnHandle h) noexcept override {
    Conn& c = conns_.at(key(h));
    on_readable(stack, h);
    c.eof = true;
    // The side that waited for the other's whole stream speaks now.
    c.started = true;
    pump(stack, c);
  }
  void on_closed(TcpStack&, ConnHandle h, CloseReason reason) noexcept override {
    Conn& c = conns_.at(key(h));
    c.closed = true;
    c.reason = reason;
  }

  bool all_closed() const {
    for (const auto& [k, c] : conns_) {
      if (!c.closed) return false;
    }
    return true;
  }
  const std::map<uint64_t, Conn>& conns() const { return conns_; }

 private:
  static uint64_t key(ConnHandle h) { return uint64_t{h.index} << 32 | h.generation; }

  void pump(TcpStack& stack, Conn& c) {
    if (!c.started || c.closed) return;
    while (c.sent < c.to_send.size()) {
      const auto n = stack.send(c.handle, reinterpret_cast<const uint8_t*>(c.to_send.data()) + c.sent,
                                static_cast<uint32_t>(c.to_send.size() - c.sent));
      if (n == 0) return;
      c.sent += n;
    }
    if (!c.shut) {
      c.shut = true;
      stack.shutdown(c.handle);
    }
  }

  Order order_;
  size_t bytes_;
  uint32_t next_upstream_ = 0;
  std::map<uint64_t, Conn> conns_;
};

net::tcp::TcpConfig relay_config(uint32_t buffer_pool = 1024) {
  net::tcp::TcpConfig c = TcpPair::small_config();
  c.max_connections = 512;
  c.buffer_pool = buffer_pool;
  // 100 clients connect at once: no SYN cookies, whose lost third ACK
  // nobody retransmits in a server-first exchange (RFC 4987 3.6; Linux
  // alike); the cookie path has tests of its own.
  c.max_half_open = 256;
  // The real 2*MSL: a peer whose last ACK was lost retransmits its FIN
  // after its own backed-off RTO, which may be longer than a test's short
  // TIME-WAIT, and would then meet a RST.
  c.time_wait_us = 60'000'000;
  // Every closed pair leaves two TCBs in TIME-WAIT: more than the default
  // cap (max_connections / 4), past which TIME-WAIT ends at once and such
  // a retransmitted FIN meets a RST too (tcp_state_test covers the cap).
  c.max_time_wait = c.max_connections;
  return c;
}

struct RelayRun {
  RelayRun(Order order, size_t bytes, uint32_t buffer_pool = 1024, uint32_t max_pairs = 256)
      : bytes_(bytes),
        pair(relay_config(buffer_pool)),
        relay(*pair.a.iface, ip(198, 18, 0, 1), kUpstreamPort, max_pairs),
        peers(order, bytes) {
    EXPECT_TRUE(pair.a.tcp->listen(kRelayPort, &relay));
    EXPECT_TRUE(pair.b.tcp->listen(kUpstreamPort, &peers));
    // RELAY_TRACE=1: every segment on stderr, to follow one connection.
    if (std::getenv("RELAY_TRACE") != nullptr) {
      pair.add_tap([this](TcpPair::Side& from, net::Frame& f) {
        if (auto c = parse_tcp_frame(f, pair.now_us)) {
          std::fprintf(stderr, "%llu %s %u->%u flags=%02x seq=%u ack=%u len=%zu win=%u\n",
                       (unsigned long long)pair.now_us, &from == &pair.a ? "GW " : "PEER",
                       c->seg.src_port, c->seg.dst_port, c->seg.flags, c->seq(), c->ack(),
                       c->payload.size(), c->seg.window);
        }
        return true;
      });
    }
  }

  // Every client's stream reached exactly one upstream connection and that
  // connection's stream reached the client, each ended by a clean close.
  void check_streams(size_t clients, size_t bytes) {
    std::map<std::string, const Peers::Conn*> upstream_by_received;
    size_t upstreams = 0;
    for (const auto& [k, c] : peers.conns()) {
      if (c.is_client) continue;
      ++upstreams;
      upstream_by_received[c.received] = &c;
    }
    EXPECT_EQ(upstreams, clients);
    size_t clients_seen = 0;
    for (const auto& [k, c] : peers.conns()) {
      if (!c.is_client) continue;
      ++clients_seen;
      SCOPED_TRACE("client stream " + std::to_string(c.stream) + " from port " +
                   std::to_string(c.local_port));
      EXPECT_TRUE(c.closed);
      EXPECT_EQ(c.reason, CloseReason::closed) << name_of(c.reason);
      EXPECT_TRUE(c.eof);
      EXPECT_EQ(c.sent, bytes);
      auto it = upstream_by_received.find(c.to_send);
      ASSERT_NE(it, upstream_by_received.end()) << "no upstream received this client's stream intact";
      const Peers::Conn& up = *it->second;
      EXPECT_EQ(up.reason, CloseReason::closed) << name_of(up.reason);
      EXPECT_TRUE(up.eof);
      EXPECT_EQ(c.received.size(), up.to_send.size());
      EXPECT_TRUE(c.received == up.to_send) << "the upstream's stream arrived altered";
    }
    EXPECT_EQ(clients_seen, clients);
    EXPECT_EQ(relay.active_pairs(), 0u);
  }

  // Loss and reordering at `rate` each way (1% duplication); seeds base, base + 1.
  void set_faults(double rate, uint64_t seed_base) {
    dataplane::FaultSpec spec;
    spec.drop = rate;
    spec.reorder = rate;
    spec.duplicate = 0.01;
    pair.set_faults(pair.a, spec, seed_base);
    pair.set_faults(pair.b, spec, seed_base + 1);
  }

  // kClients connect at once, every stream runs to its end, TIME-WAIT on
  // the gateway's side ends too, and nothing stays behind.
  void run_all_clients() {
    for (uint32_t i = 0; i < kClients; ++i) peers.open_client(*pair.b.tcp, *pair.b.iface, i);
    ASSERT_TRUE(pair.run_until([&] { return peers.all_closed(); }, 600'000'000)) << open_connections();
    pair.run_for(61'000'000, 1000);
    check_streams(kClients, bytes_);
    EXPECT_EQ(pair.a.tcp->connections(), 0u);
  }

  // What is still open on both sides, for a failure message.
  std::string open_connections() const {
    std::string out = "  gateway counters:";
    net::tcp::for_each_counter(pair.a.tcp->counters(), [&](const char* name, uint64_t v) {
      if (v != 0) out += " " + std::string(name) + "=" + std::to_string(v);
    });
    out += "\n";
    for (const auto& [k, c] : peers.conns()) {
      if (c.closed && c.reason != CloseReason::closed) {
        out += "  peer app: " + std::string(c.is_client ? "client " : "upstream ") +
               std::to_string(c.stream) + " ended " + name_of(c.reason) + "\n";
      }
    }
    pair.a.tcp->for_each_connection(
        [&](ConnHandle h) { out += "  gateway: " + pair.a.tcp->describe(h) + "\n"; });
    pair.b.tcp->for_each_connection(
        [&](ConnHandle h) { out += "  peer:    " + pair.b.tcp->describe(h) + "\n"; });
    for (const auto& [k, c] : peers.conns()) {
      if (c.closed) continue;
      out += "  peer app: " + std::string(c.is_client ? "client " : "upstream ") +
             std::to_string(c.stream) + " sent=" + std::to_string(c.sent) +
             " received=" + std::to_string(c.received.size()) + " eof=" + std::to_string(c.eof) +
             " shut=" + std::to_string(c.shut) + "\n";
    }
    return out;
  }

  size_t bytes_;
  TcpPair pair;
  services::Relay relay;
  Peers peers;
};

struct Case {
  const char* name;
  Order order;
  bool faults;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class RelayStreams : public ::testing::TestWithParam<Case> {};

// With faults, 10% loss and
// 10% reordering each way, harsher than the integration test's 3%.
TEST_P(RelayStreams, EveryStreamArrivesWholeAndEveryCloseIsCarried) {
  RelayRun r(GetParam().order, kStreamBytes);
  if (GetParam().faults) r.set_faults(0.10, 71);
  r.run_all_clients();
}

// Fewer buffers than the streams want at once (each side of each pair
// wants one per direction): a send refused for want of a buffer must be
// retried when the pool has one again, even by a connection whose peer is
// silent, waiting for it to speak.
// One direction at a time: both at once need more buffers than this pool
// has (see the note in docs/architecture.md on sizing buffer_pool).
class RelayUnderPoolPressure : public ::testing::TestWithParam<Case> {};

TEST_P(RelayUnderPoolPressure, AConnectionRefusedABufferIsWokenWhenOneIsFree) {
  RelayRun r(GetParam().order, kStreamBytes, 96);
  if (GetParam().faults) r.set_faults(0.03, 81);
  r.run_all_clients();
  EXPECT_GT(r.pair.a.tcp->counters().buffer_pool_exhausted.get(), 0u) << "the pool was never short";
}

INSTANTIATE_TEST_SUITE_P(
    Orders, RelayStreams,
    ::testing::Values(Case{"client_first", Order::client_first, false},
                      Case{"server_first", Order::server_first, false},
                      Case{"concurrent", Order::concurrent, false},
                      Case{"client_first_faults", Order::client_first, true},
                      Case{"server_first_faults", Order::server_first, true},
                      Case{"concurrent_faults", Order::concurrent, true}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

INSTANTIATE_TEST_SUITE_P(
    Orders, RelayUnderPoolPressure,
    ::testing::Values(Case{"client_first", Order::client_first, false},
                      Case{"server_first", Order::server_first, false},
                      Case{"client_first_faults", Order::client_first, true},
                      Case{"server_first_faults", Order::server_first, true}),
    [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mtlsgw::testing
