// Two real stacks back to back (tests/support/tcp_pair.h): handshakes,
// transfers, closes, resets, loss and reordering, flow control, cookies.

#include "dataplane/net/tcp_stack.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "tcp_pair.h"
#include "tcp_steps.h"

namespace mtlsgw::testing {
namespace {

using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::State;

class TcpStackTest : public ::testing::Test {
 protected:
  TcpPair pair;
  RecordingApp server;
  RecordingApp client;

  ConnHandle open(uint16_t port = 7) {
    ConnHandle h = listen_and_connect(pair, port, server, client);
    EXPECT_TRUE(h.valid());
    EXPECT_TRUE(pair.run_until([&] { return client.conns[0].connected && !server.conns.empty(); }));
    return h;
  }

  // Writes all of data on h as the send buffer allows, running the pair.
  void send_all(net::tcp::TcpStack& stack, ConnHandle h, const std::string& data) {
    size_t off = 0;
    ASSERT_TRUE(pair.run_until([&] { return send_rest(stack, h, data, off); }, 120'000'000));
  }
};

TEST_F(TcpStackTest, HandshakeDataAndGracefulClose) {
  ConnHandle h = open();
  EXPECT_EQ(pair.a.tcp->state(h), State::established);
  EXPECT_EQ(server.conns.size(), 1u);
  EXPECT_EQ(pair.b.tcp->counters().passive_opens.get(), 1u);
  EXPECT_EQ(pair.a.tcp->counters().active_opens.get(), 1u);

  const std::string hello = "hello, gateway";
  send_all(*pair.a.tcp, h, hello);
  ASSERT_TRUE(pair.run_until([&] { return server.conns[0].received == hello; }));
  const std::string reply = "hello, client";
  send_all(*pair.b.tcp, server.conns[0].handle, reply);
  ASSERT_TRUE(pair.run_until([&] { return client.conns[0].received == reply; }));

  // Active close by the client, then the server.
  pair.a.tcp->shutdown(h);
  ASSERT_TRUE(pair.run_until([&] { return server.conns[0].peer_closed; }));
  ASSERT_TRUE(pair.run_until([&] { return pair.a.tcp->state(h) == State::fin_wait_2; }));
  EXPECT_EQ(pair.b.tcp->state(server.conns[0].handle), State::close_wait);
  pair.b.tcp->shutdown(server.conns[0].handle);
  ASSERT_TRUE(pair.run_until([&] { return server.conns[0].closed; }));
  EXPECT_EQ(server.conns[0].reason, CloseReason::closed);
  EXPECT_EQ(pair.a.tcp->state(h), State::time_wait);
  // The client's application heard of the clean end when TIME-WAIT began;
  // TIME-WAIT lasts 2*MSL (2 s in this configuration), then the TCB goes.
  EXPECT_TRUE(client.conns[0].closed);
  EXPECT_EQ(client.conns[0].reason, CloseReason::closed);
  EXPECT_EQ(pair.a.tcp->connections(), 1u);
  ASSERT_TRUE(pair.run_until([&] { return pair.a.tcp->connections() == 0; }, 5'000'000));
  EXPECT_EQ(pair.b.tcp->connections(), 0u);
  EXPECT_EQ(pair.a.tcp->counters().retransmitted_segments.get(), 0u);
}

TEST_F(TcpStackTest, ConnectToAClosedPortIsRefused) {
  connect_from(pair, pair.a, ip(198, 18, 0, 1), 9999, client);
  ASSERT_TRUE(pair.run_until([&] { return client.conns[0].closed; }));
  EXPECT_EQ(client.conns[0].reason, CloseReason::refused);
  EXPECT_EQ(pair.b.counters.dropped(net::DropReason::tcp_no_listener), 1u);
  EXPECT_EQ(pair.b.tcp->counters().resets_sent.get(), 1u);
}

TEST_F(TcpStackTest, BulkBothWaysByteExact) {
  server.echo = true;
  ConnHandle h = open();
  const std::string data = pattern(3 * 1024 * 1024);
  send_all(*pair.a.tcp, h, data);
  ASSERT_TRUE(pair.run_until([&] { return client.conns[0].received.size() >= data.size(); }, 60'000'000));
  EXPECT_TRUE(client.conns[0].received == data);
  EXPECT_EQ(server.conns[0].received.size(), data.size());
}

TEST_F(TcpStackTest, SurvivesLossReorderingAndDuplication) {
  set_faults_both_ways(pair, lossy_link(0.03, 0.03, 0.01), 11, 12);
  server.echo = true;
  ConnHandle h = open();
  const std::string data = pattern(2 * 1024 * 1024, 7);
  send_all(*pair.a.tcp, h, data);
  ASSERT_TRUE(pair.run_until([&] { return client.conns[0].received.size() >= data.size(); }, 300'000'000));
  EXPECT_TRUE(client.conns[0].received == data);
  EXPECT_GT(pair.a.tcp->counters().retransmitted_segments.get(), 0u);
  EXPECT_GT(pair.b.tcp->counters().out_of_order_segments.get() +
                pair.a.tcp->counters().out_of_order_segments.get(), 0u);
  // Closes still complete under loss.
  pair.a.tcp->shutdown(h);
  ASSERT_TRUE(pair.run_until([&] { return server.conns[0].closed; }, 60'000'000));
}

// Telemetry's names for the connections-by-state gauges (docs/telemetry.md):
// "tcp_state_" and the state's name, one per state but CLOSED (whose count
// is always 0), and every TCP name carries the tcp_ prefix.
TEST(TcpCounterNames, StateGaugesAreTcpPrefixedAndClosedHasNone) {
  const net::tcp::TcpCounters counters;
  std::vector<std::string> names;
  net::tcp::for_each_counter(counters, [&](std::string_view name, uint64_t) { names.emplace_back(name); });
  for (size_t s = 0; s < net::tcp::kStateCount; ++s) {
    const State state = static_cast<State>(s);
    const std::string gauge = std::string("tcp_state_") + net::tcp::name_of(state);
    EXPECT_EQ(std::count(names.begin(), names.end(), gauge), state == State::closed ? 0 : 1) << gauge;
  }
  for (const std::string& name : names) EXPECT_EQ(name.rfind("tcp_", 0), 0u) << name;
}

}  // namespace
}  // namespace mtlsgw::testing
