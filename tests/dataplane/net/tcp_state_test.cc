// The RFC 9293 state machine (3.3.2, figure 5), driven through two real
// stacks back to back (tests/support/tcp_pair.h) and, where a peer has to
// misbehave or be precisely timed, through a peer scripted by hand. Every
// transition of figure 5 is walked: both opens (simultaneous included), every
// close order (simultaneous, half-close either way, TIME-WAIT and its 2*MSL,
// FIN-WAIT-2 after close()), aborts and resets.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "dataplane/net/tcp_stack.h"
#include "tcp_pair.h"
#include "tcp_steps.h"

namespace mtlsgw::testing {
namespace {

using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::FourTuple;
using net::tcp::kFlagAck;
using net::tcp::kFlagFin;
using net::tcp::kFlagRst;
using net::tcp::kFlagSyn;
using net::tcp::State;

constexpr uint16_t kPort = 7;

// The distinct states a connection went through, sampled at every frame that
// crosses the link and after every step, so that a state lasting only
// between two frames (CLOSING, LAST-ACK) is still seen.
struct StateTrace {
  std::vector<State> seen;
  void note(State s) {
    if (seen.empty() || seen.back() != s) seen.push_back(s);
  }
  bool contains(State s) const { return std::find(seen.begin(), seen.end(), s) != seen.end(); }
  std::string str() const {
    std::string out;
    for (State s : seen) out += std::string(out.empty() ? "" : " -> ") + net::tcp::name_of(s);
    return out;
  }
};

net::tcp::TcpConfig config() {
  net::tcp::TcpConfig c = TcpPair::small_config();
  c.time_wait_us = 2'000'000;           // 2*MSL, shortened
  c.fin_wait_2_timeout_us = 3'000'000;  // Linux's tcp_fin_timeout, shortened
  return c;
}

class TcpStateTest : public ::testing::Test {
 protected:
  TcpPair pair{config()};
  RecordingApp server;
  RecordingApp client;
  StateTrace trace_a;
  StateTrace trace_b;
  ConnHandle ha;  // client's handle (side a)

  ConnHandle hb() const { return server.conns.empty() ? ConnHandle{} : server.conns[0].handle; }

  void SetUp() override {
    pair.add_tap([this](TcpPair::Side&, net::Frame&) {
      sample();
      return true;
    });
  }
  void sample() {
    if (ha.valid()) trace_a.note(pair.a.tcp->state(ha));
    if (hb().valid()) trace_b.note(pair.b.tcp->state(hb()));
  }
  void run_until(const std::function<bool()>& done, uint64_t max_us = 30'000'000) {
    const uint64_t end = pair.now_us + max_us;
    while (pair.now_us < end && !done()) {
      pair.step();
      sample();
    }
    ASSERT_TRUE(done()) << "a: " << trace_a.str() << " | b: " << trace_b.str();
  }
  void run_for(uint64_t us) {
    const uint64_t end = pair.now_us + us;
    while (pair.now_us < end) {
      pair.step();
      sample();
    }
  }

  void open() {
    ha = listen_and_connect(pair, kPort, server, client);
    ASSERT_TRUE(ha.valid());
    sample();
    run_until([&] { return client.conns[0].connected && !server.conns.empty(); });
    sample();
  }

  void send_str(net::tcp::TcpStack& stack, ConnHandle h, const std::string& data) {
    size_t off = 0;
    run_until([&] { return send_rest(stack, h, data, off); }, 120'000'000);
  }
};

// RFC 9293 3.5 figure 6: CLOSED -> SYN-SENT -> ESTABLISHED on the active
// side, LISTEN -> SYN-RECEIVED -> ESTABLISHED on the passive side.
TEST_F(TcpStateTest, ThreeWayHandshakeWalksSynSentAndSynReceived) {
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  bool saw_half_open = false;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    // When the server's SYN-ACK leaves, the server holds a half-open TCB.
    if (c && &from == &pair.b && c->has(kFlagSyn) && c->has(kFlagAck)) {
      saw_half_open = pair.b.tcp->half_open() == 1;
    }
    return true;
  });
  ha = connect_from(pair, pair.a, pair.b.iface->config().address.address, kPort, client);
  EXPECT_EQ(pair.a.tcp->state(ha), State::syn_sent);
  run_until([&] { return client.conns[0].connected && !server.conns.empty(); });
  EXPECT_TRUE(saw_half_open);
  EXPECT_EQ(pair.b.tcp->half_open(), 0u);
  EXPECT_EQ(pair.a.tcp->state(ha), State::established);
  EXPECT_EQ(pair.b.tcp->state(hb()), State::established);
  EXPECT_EQ(trace_a.str(), "syn_sent -> established");
}

// RFC 9293 3.5 figure 7 (simultaneous open): both ends send a SYN, both go
// SYN-SENT -> SYN-RECEIVED, and each one's SYN,ACK completes the other's
// handshake. The port filter makes each side pick the port the other
// connects to.
TEST_F(TcpStateTest, SimultaneousOpen) {
  static uint16_t port_a = 40000;
  static uint16_t port_b = 40001;
  auto only = [](void* wanted, const FourTuple& t) noexcept {
    return t.local_port == *static_cast<uint16_t*>(wanted);
  };
  pair.a.tcp->set_port_filter(only, &port_a);
  pair.b.tcp->set_port_filter(only, &port_b);
  // Neighbours known: both SYNs leave at once and cross on the link.
  pair.a.iface->learn(pair.b.iface->config().address.address, pair.b.iface->config().mac, pair.now_us, true);
  pair.b.iface->learn(pair.a.iface->config().address.address, pair.a.iface->config().mac, pair.now_us, true);
  ha = pair.a.tcp->connect(*pair.a.iface, pair.b.iface->config().address.address, port_b, &client,
                           pair.now_us);
  const ConnHandle hb_active = pair.b.tcp->connect(*pair.b.iface, pair.a.iface->config().address.address,
                                                   port_a, &server, pair.now_us);
  ASSERT_TRUE(ha.valid());
  ASSERT_TRUE(hb_active.valid());
  ASSERT_EQ(pair.a.tcp->tuple(ha)->local_port, port_a);
  ASSERT_EQ(pair.b.tcp->tuple(hb_active)->local_port, port_b);
  client.add(ha);
  server.add(hb_active);
  const uint64_t frames_before = pair.frames_carried;
  run_until([&] {
    return pair.a.tcp->state(ha) == State::established &&
           pair.b.tcp->state(hb_active) == State::established;
  }, 500'000);
  EXPECT_TRUE(trace_a.contains(State::syn_received)) << trace_a.str();
  EXPECT_TRUE(client.conns[0].connected);
  EXPECT_TRUE(server.conns[0].connected);
  // A handshake is a handful of segments, not a storm.
  EXPECT_LT(pair.frames_carried - frames_before, 20u);
  if (pair.a.tcp->state(ha) != State::established) return;
  // And the connection carries data both ways.
  send_str(*pair.a.tcp, ha, "ping");
  send_str(*pair.b.tcp, hb_active, "pong");
  run_until([&] { return server.conns[0].received == "ping" && client.conns[0].received == "pong"; });
}

// RFC 9293 3.10.7.4 (SYN-RECEIVED, RST): "If the RST bit is set ... If this
// connection was initiated with an active OPEN (i.e., came from SYN-SENT
// state), then the connection was refused; signal the user 'connection
// refused'." An active open that went SYN-SENT -> SYN-RECEIVED through a
// crossing SYN must still tell its application when it dies.
TEST_F(TcpStateTest, ActiveOpenResetInSynReceivedTellsTheApplication) {
  ScriptedPeer peer(pair, pair.a, ip(198, 18, 0, 9));
  ha = connect_from(pair, pair.a, peer.ip(), 5555, client);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(out[0].has(kFlagSyn));
  const uint16_t a_port = out[0].seg.src_port;
  // The peer's own SYN crosses ours: SYN-SENT -> SYN-RECEIVED.
  TcpSegmentFields syn = peer_segment(5555, a_port, 7000, kFlagSyn);
  syn.options.mss = 1460;
  peer.send(syn);
  EXPECT_EQ(pair.a.tcp->state(ha), State::syn_received);
  out = peer.take();
  ASSERT_FALSE(out.empty());
  EXPECT_TRUE(out.back().has(kFlagSyn) && out.back().has(kFlagAck));
  // Then the peer refuses: an exact RST (RCV.NXT = 7001).
  peer.send(peer_segment(5555, a_port, 7001, kFlagRst));
  EXPECT_EQ(pair.a.tcp->state(ha), State::closed);
  EXPECT_TRUE(client.conns[0].closed) << "the application never learns its connection is gone";
}

// The same for a timeout: an active open stuck in SYN-RECEIVED (its SYN,ACK
// never answered) ends by R2 (RFC 9293 3.8.3) and the user must hear of it.
TEST_F(TcpStateTest, ActiveOpenTimingOutInSynReceivedTellsTheApplication) {
  ScriptedPeer peer(pair, pair.a, ip(198, 18, 0, 9));
  ha = connect_from(pair, pair.a, peer.ip(), 5555, client);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  peer.send(peer_segment(5555, out[0].seg.src_port, 7000, kFlagSyn));
  ASSERT_EQ(pair.a.tcp->state(ha), State::syn_received);
  // max_syn_retries = 6 from a 1 s RTO: 127 s. Let it run out.
  const uint64_t end = pair.now_us + 400'000'000;
  while (pair.now_us < end && pair.a.tcp->state(ha) != State::closed) pair.step(5'000);
  EXPECT_EQ(pair.a.tcp->state(ha), State::closed);
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
  EXPECT_TRUE(client.conns[0].closed) << "the application never learns its connection is gone";
  EXPECT_EQ(client.conns[0].reason, CloseReason::timed_out);
}

// Past max_time_wait, a connection that closed first does not linger in
// TIME-WAIT: it ends at the next poll (Linux's tcp_max_tw_buckets), so that
// a gateway closing thousands of upstream connections keeps its TCBs.
TEST(TcpTimeWaitCap, PastTheCapTimeWaitEndsAtTheNextPoll) {
  net::tcp::TcpConfig c = config();
  c.max_time_wait = 1;
  TcpPair pair{c};
  RecordingApp server;
  RecordingApp client;
  std::vector<ConnHandle> handles{listen_and_connect(pair, kPort, server, client)};
  for (int i = 0; i < 2; ++i) {
    handles.push_back(connect_from(pair, pair.a, pair.b.iface->config().address.address, kPort, client));
  }
  ASSERT_TRUE(pair.run_until([&] { return server.conns.size() == 3; }));
  for (ConnHandle h : handles) pair.a.tcp->shutdown(h);
  ASSERT_TRUE(pair.run_until([&] {
    return std::all_of(server.conns.begin(), server.conns.end(), [](const auto& conn) { return conn.peer_closed; });
  }));
  for (const auto& conn : server.conns) pair.b.tcp->shutdown(conn.handle);
  ASSERT_TRUE(pair.run_until([&] {
    return std::all_of(client.conns.begin(), client.conns.end(), [](const auto& conn) { return conn.closed; });
  }));
  pair.run_for(10'000);
  const auto& counters = pair.a.tcp->counters();
  EXPECT_EQ(counters.connections_by_state[static_cast<size_t>(State::time_wait)].get(), 1u);
  EXPECT_EQ(counters.time_wait_overflows.get(), 2u);
  EXPECT_EQ(pair.a.tcp->connections(), 1u);
  for (const auto& conn : client.conns) EXPECT_EQ(conn.reason, CloseReason::closed);
  // The one under the cap lingers for its full 2*MSL.
  pair.run_for(c.time_wait_us + 100'000);
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
}

// Figure 5's usual close: the client closes first.
// client: ESTABLISHED -> FIN-WAIT-1 -> FIN-WAIT-2 -> TIME-WAIT -> CLOSED
// server: ESTABLISHED -> CLOSE-WAIT -> LAST-ACK -> CLOSED
TEST_F(TcpStateTest, ActiveCloseWalksFinWaitAndTimeWaitPassiveCloseWalksLastAck) {
  open();
  pair.a.tcp->shutdown(ha);
  run_until([&] { return server.conns[0].peer_closed; });
  run_until([&] { return pair.a.tcp->state(ha) == State::fin_wait_2; });
  EXPECT_EQ(pair.b.tcp->state(hb()), State::close_wait);
  pair.b.tcp->shutdown(hb());
  run_until([&] { return server.conns[0].closed; });
  EXPECT_EQ(server.conns[0].reason, CloseReason::closed);
  EXPECT_EQ(pair.a.tcp->state(ha), State::time_wait);
  // The application hears of the clean end when TIME-WAIT starts; the TCB
  // stays for 2*MSL on its own.
  EXPECT_TRUE(client.conns[0].closed);
  EXPECT_EQ(client.conns[0].reason, CloseReason::closed);
  EXPECT_EQ(pair.a.tcp->connections(), 1u);
  run_until([&] { return pair.a.tcp->state(ha) == State::closed; }, 5'000'000);
  EXPECT_EQ(trace_a.str(), "syn_sent -> established -> fin_wait_1 -> fin_wait_2 -> time_wait -> closed");
  EXPECT_EQ(trace_b.str(), "established -> close_wait -> last_ack -> closed");
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
  EXPECT_EQ(pair.b.tcp->connections(), 0u);
  EXPECT_EQ(pair.a.tcp->counters().retransmitted_segments.get(), 0u);
  EXPECT_EQ(pair.b.tcp->counters().retransmitted_segments.get(), 0u);
  // The per-state gauges (telemetry) are back to zero on both sides.
  for (size_t i = 0; i < net::tcp::kStateCount; ++i) {
    EXPECT_EQ(pair.a.tcp->counters().connections_by_state[i].get(), 0u) << net::tcp::name_of(static_cast<State>(i));
    EXPECT_EQ(pair.b.tcp->counters().connections_by_state[i].get(), 0u) << net::tcp::name_of(static_cast<State>(i));
  }
}

// A FIN that arrives with the ACK of ours: FIN-WAIT-1 -> TIME-WAIT directly
// (RFC 9293 3.10.7.4, eighth, FIN-WAIT-1: "If our FIN has been ACKed ...
// enter TIME-WAIT"). The server closes from on_peer_closed, so its FIN rides
// on the ACK of the client's FIN.
TEST_F(TcpStateTest, FinWithAckOfOurFinGoesFromFinWait1ToTimeWait) {
  server.echo = true;  // RecordingApp's echo shuts down as soon as the peer closes
  open();
  pair.a.tcp->shutdown(ha);
  run_until([&] { return server.conns[0].closed; });
  EXPECT_TRUE(client.conns[0].peer_closed);
  EXPECT_EQ(pair.a.tcp->state(ha), State::time_wait);
  EXPECT_FALSE(trace_a.contains(State::closing)) << trace_a.str();
}

// Simultaneous close (RFC 9293 3.6 figure 13): both FINs cross, both ends
// go FIN-WAIT-1 -> CLOSING -> TIME-WAIT, and both TCBs go after 2*MSL.
TEST_F(TcpStateTest, SimultaneousCloseGoesThroughClosingOnBothSides) {
  open();
  pair.a.tcp->shutdown(ha);
  pair.b.tcp->shutdown(hb());
  run_until([&] {
    return pair.a.tcp->state(ha) == State::time_wait && pair.b.tcp->state(hb()) == State::time_wait;
  });
  EXPECT_EQ(trace_a.str(), "syn_sent -> established -> fin_wait_1 -> closing -> time_wait");
  EXPECT_EQ(trace_b.str(), "established -> fin_wait_1 -> closing -> time_wait");
  EXPECT_TRUE(client.conns[0].peer_closed);
  EXPECT_TRUE(server.conns[0].peer_closed);
  EXPECT_TRUE(client.conns[0].closed && server.conns[0].closed);
  EXPECT_EQ(client.conns[0].reason, CloseReason::closed);
  EXPECT_EQ(server.conns[0].reason, CloseReason::closed);
  run_until([&] { return pair.a.tcp->connections() + pair.b.tcp->connections() == 0; }, 5'000'000);
}

// CLOSING whose ACK is lost: the FIN is retransmitted from CLOSING and the
// other side, already in TIME-WAIT, acknowledges it again.
TEST_F(TcpStateTest, ClosingRetransmitsFinWhenItsAckIsLost) {
  open();
  int dropped = 0;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    // b's first pure ACK after the FINs crossed: the one that acknowledges
    // a's FIN. Lose it.
    if (c && &from == &pair.b && dropped == 0 && !c->has(kFlagFin) && c->payload.empty() &&
        pair.b.tcp->state(hb()) == State::closing) {
      ++dropped;
      return false;
    }
    return true;
  });
  pair.a.tcp->shutdown(ha);
  pair.b.tcp->shutdown(hb());
  run_until([&] { return pair.b.tcp->state(hb()) == State::time_wait; });
  ASSERT_EQ(dropped, 1);
  run_until([&] { return pair.a.tcp->state(ha) == State::time_wait; }, 10'000'000);
  EXPECT_TRUE(trace_a.contains(State::closing)) << trace_a.str();
  EXPECT_GE(pair.a.tcp->counters().retransmitted_segments.get(), 1u);
}

// Half-close, client first (RFC 9293 3.6: "CLOSE ... the user ... may
// continue to RECEIVE"): the server keeps sending from CLOSE-WAIT and the
// client keeps receiving in FIN-WAIT-2 until the server closes too.
TEST_F(TcpStateTest, HalfCloseClientFirstServerKeepsSending) {
  open();
  send_str(*pair.a.tcp, ha, "request");
  pair.a.tcp->shutdown(ha);
  run_until([&] { return server.conns[0].peer_closed && pair.a.tcp->state(ha) == State::fin_wait_2; });
  EXPECT_EQ(server.conns[0].received, "request");
  EXPECT_EQ(pair.a.tcp->send(ha, reinterpret_cast<const uint8_t*>("x"), 1), 0u);  // no more from us
  const std::string reply = pattern(300 * 1024, 3);
  send_str(*pair.b.tcp, hb(), reply);
  run_until([&] { return client.conns[0].received.size() >= reply.size(); });
  EXPECT_TRUE(client.conns[0].received == reply);
  EXPECT_EQ(pair.a.tcp->state(ha), State::fin_wait_2);
  EXPECT_EQ(pair.b.tcp->state(hb()), State::close_wait);
  pair.b.tcp->shutdown(hb());
  run_until([&] { return server.conns[0].closed && client.conns[0].peer_closed; });
  EXPECT_EQ(pair.a.tcp->state(ha), State::time_wait);
}

// Half-close, server first: the client keeps sending to a server in
// FIN-WAIT-2, which keeps receiving.
TEST_F(TcpStateTest, HalfCloseServerFirstClientKeepsSending) {
  open();
  pair.b.tcp->shutdown(hb());
  run_until([&] { return client.conns[0].peer_closed && pair.b.tcp->state(hb()) == State::fin_wait_2; });
  EXPECT_EQ(pair.a.tcp->state(ha), State::close_wait);
  const std::string upload = pattern(300 * 1024, 4);
  send_str(*pair.a.tcp, ha, upload);
  run_until([&] { return server.conns[0].received.size() >= upload.size(); });
  EXPECT_TRUE(server.conns[0].received == upload);
  pair.a.tcp->shutdown(ha);
  run_until([&] { return client.conns[0].closed; });
  EXPECT_EQ(client.conns[0].reason, CloseReason::closed);
  EXPECT_EQ(trace_a.str(), "syn_sent -> established -> close_wait -> last_ack -> closed");
  EXPECT_EQ(pair.b.tcp->state(hb()), State::time_wait);
}

// TIME-WAIT lasts 2*MSL (RFC 9293 3.6.1), no less and not much more.
TEST_F(TcpStateTest, TimeWaitLastsTwoMslThenTheTcbIsFreed) {
  open();
  uint64_t time_wait_at = 0;
  pair.add_tap([&](TcpPair::Side&, net::Frame&) {
    if (time_wait_at == 0 && pair.a.tcp->state(ha) == State::time_wait) time_wait_at = pair.now_us;
    return true;
  });
  pair.a.tcp->shutdown(ha);
  run_until([&] { return pair.a.tcp->state(ha) == State::fin_wait_2; });
  pair.b.tcp->shutdown(hb());
  run_until([&] { return pair.a.tcp->state(ha) == State::time_wait; });
  ASSERT_NE(time_wait_at, 0u);
  const uint64_t expiry = time_wait_at + config().time_wait_us;
  run_for(expiry - 20'000 - pair.now_us);
  EXPECT_EQ(pair.a.tcp->state(ha), State::time_wait);
  EXPECT_EQ(pair.a.tcp->connections(), 1u);
  run_for(40'000);
  EXPECT_EQ(pair.a.tcp->state(ha), State::closed);
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
  EXPECT_TRUE(client.conns[0].closed);
}

// RFC 9293 3.10.7.4 (TIME-WAIT): "The only thing that can arrive in this
// state is a retransmission of the remote FIN. Acknowledge it, and restart
// the 2 MSL timeout." The client's ACK of the server's FIN is lost; the
// server (LAST-ACK) retransmits its FIN; the client acknowledges it again and
// stays in TIME-WAIT for 2*MSL from then.
TEST_F(TcpStateTest, TimeWaitReacksARetransmittedFinAndRestartsTwoMsl) {
  open();
  pair.a.tcp->shutdown(ha);
  run_until([&] { return pair.a.tcp->state(ha) == State::fin_wait_2; });
  uint32_t server_fin_seq = 0;
  uint64_t first_fin_at = 0;
  uint64_t last_fin_at = 0;
  int fins = 0;
  int acks_dropped = 0;
  int acks_of_fin = 0;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (!c) return true;
    if (&from == &pair.b && c->has(kFlagFin)) {
      server_fin_seq = c->seq() + static_cast<uint32_t>(c->payload.size());
      if (fins++ == 0) first_fin_at = pair.now_us;
      last_fin_at = pair.now_us;
    }
    if (&from == &pair.a && fins != 0 && c->has(kFlagAck) && c->ack() == server_fin_seq + 1) {
      ++acks_of_fin;
      if (acks_dropped++ == 0) return false;
    }
    return true;
  });
  pair.b.tcp->shutdown(hb());
  run_until([&] { return server.conns[0].closed; }, 10'000'000);
  EXPECT_EQ(server.conns[0].reason, CloseReason::closed);
  EXPECT_EQ(fins, 2);
  EXPECT_EQ(acks_of_fin, 2);
  EXPECT_GE(last_fin_at - first_fin_at, 200'000u);  // after an RTO, not at once
  // Past the first FIN's 2*MSL, but within the second's: still TIME-WAIT.
  run_for(first_fin_at + config().time_wait_us + 50'000 - pair.now_us);
  EXPECT_EQ(pair.a.tcp->state(ha), State::time_wait);
  run_for(last_fin_at + config().time_wait_us + 50'000 - pair.now_us);
  EXPECT_EQ(pair.a.tcp->state(ha), State::closed);
}

// LAST-ACK's FIN is retransmitted until acknowledged, then the TCB goes
// (RFC 9293 3.10.7.4, LAST-ACK). Here the client's ACKs are all lost for a
// while: a blackout of one direction.
TEST_F(TcpStateTest, LastAckRetransmitsFinUntilAcknowledged) {
  open();
  pair.b.tcp->shutdown(hb());
  run_until([&] { return pair.a.tcp->state(ha) == State::close_wait; });
  bool blackout = true;
  int fins = 0;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (c && &from == &pair.a && c->has(kFlagFin)) ++fins;
    return !(blackout && &from == &pair.b);  // the server's ACKs vanish
  });
  pair.a.tcp->shutdown(ha);
  run_for(3'000'000);
  EXPECT_EQ(pair.a.tcp->state(ha), State::last_ack);
  EXPECT_GE(fins, 3);
  blackout = false;
  run_until([&] { return client.conns[0].closed; }, 10'000'000);
  EXPECT_EQ(client.conns[0].reason, CloseReason::closed);
}

// close() (no more reads) in ESTABLISHED, and the peer never closes: the
// FIN-WAIT-2 timeout (Linux's tcp_fin_timeout) frees the TCB.
TEST_F(TcpStateTest, FinWait2TimesOutAfterClose) {
  open();
  pair.a.tcp->close(ha);
  run_until([&] { return pair.a.tcp->state(ha) == State::fin_wait_2; });
  const uint64_t at = pair.now_us;
  run_until([&] { return pair.a.tcp->state(ha) == State::closed; }, 10'000'000);
  EXPECT_GE(pair.now_us - at, config().fin_wait_2_timeout_us - 100'000);
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
  EXPECT_EQ(pair.a.tcp->counters().connections_timed_out.get(), 1u);
}

// The same when close() comes after shutdown(): shutdown() half-closes and
// reaches FIN-WAIT-2 (where waiting for the peer is legitimate: the
// application still reads), then close() says nobody will read any more. The
// FIN-WAIT-2 timeout must now apply, or a peer that never sends its FIN
// holds the TCB for ever.
TEST_F(TcpStateTest, FinWait2TimesOutWhenCloseFollowsShutdown) {
  open();
  pair.a.tcp->shutdown(ha);
  run_until([&] { return pair.a.tcp->state(ha) == State::fin_wait_2; });
  pair.a.tcp->close(ha);
  run_for(config().fin_wait_2_timeout_us + 2'000'000);
  EXPECT_EQ(pair.a.tcp->state(ha), State::closed)
      << "a closed connection is held in FIN-WAIT-2 for ever: " << pair.a.tcp->describe(ha);
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
}

// shutdown() alone is a half-close: the application still reads, so
// FIN-WAIT-2 lasts as long as the peer keeps its side open.
TEST_F(TcpStateTest, HalfClosedFinWait2DoesNotTimeOut) {
  open();
  pair.a.tcp->shutdown(ha);
  run_until([&] { return pair.a.tcp->state(ha) == State::fin_wait_2; });
  run_for(config().fin_wait_2_timeout_us + 2'000'000);
  EXPECT_EQ(pair.a.tcp->state(ha), State::fin_wait_2);
  send_str(*pair.b.tcp, hb(), "late data");
  run_until([&] { return client.conns[0].received == "late data"; });
}

// ABORT (RFC 9293 3.10.4): a RST <SEQ=SND.NXT> goes out, the TCB is deleted
// at once, and the peer enters CLOSED on it ("reset by peer").
TEST_F(TcpStateTest, AbortSendsResetAndBothTcbsGo) {
  open();
  send_str(*pair.a.tcp, ha, "some data");
  run_until([&] { return server.conns[0].received == "some data"; });
  pair.a.tcp->abort(ha);
  EXPECT_EQ(pair.a.tcp->state(ha), State::closed);
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
  EXPECT_FALSE(client.conns[0].closed);  // the application asked: no callback
  run_until([&] { return server.conns[0].closed; });
  EXPECT_EQ(server.conns[0].reason, CloseReason::reset_by_peer);
  EXPECT_EQ(pair.b.tcp->connections(), 0u);
  EXPECT_EQ(pair.a.tcp->counters().resets_sent.get(), 1u);
}

// An abort whose RST does not match the peer's RCV.NXT exactly (data of
// ours was lost on the way): the peer answers with a challenge ACK (RFC 5961
// 3.2), which now finds no TCB and earns the RST <SEQ=SEG.ACK> that the peer
// accepts. The peer must not be left half-open.
TEST_F(TcpStateTest, AbortWithLostDataStillResetsThePeer) {
  open();
  bool lose_data = true;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    return !(lose_data && c && &from == &pair.a && !c->payload.empty());
  });
  ASSERT_EQ(pair.a.tcp->send(ha, reinterpret_cast<const uint8_t*>("lost"), 4), 4u);
  pair.step();
  lose_data = false;
  pair.a.tcp->abort(ha);
  run_until([&] { return server.conns[0].closed; }, 5'000'000);
  EXPECT_EQ(server.conns[0].reason, CloseReason::reset_by_peer);
}

// RFC 9293 3.10.4 / RFC 2525 2.17: data arriving after close() cannot be
// delivered; the closer answers with RST rather than acknowledging it.
TEST_F(TcpStateTest, DataAfterCloseIsAnsweredWithReset) {
  open();
  pair.a.tcp->close(ha);
  run_until([&] { return pair.a.tcp->state(ha) == State::fin_wait_2; });
  ASSERT_EQ(pair.b.tcp->state(hb()), State::close_wait);
  uint32_t rst_from_a = 0;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (c && &from == &pair.a && c->has(kFlagRst)) ++rst_from_a;
    return true;
  });
  send_str(*pair.b.tcp, hb(), "unwanted");
  run_until([&] { return server.conns[0].closed; });
  EXPECT_EQ(server.conns[0].reason, CloseReason::reset_by_peer);
  EXPECT_EQ(rst_from_a, 1u);
  EXPECT_EQ(client.conns[0].received, "");
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
}

// RFC 2525 2.17: close() with unread data sends RST, not FIN: the peer must
// learn that what it sent was not consumed.
TEST_F(TcpStateTest, CloseWithUnreadDataSendsResetNotFin) {
  server.auto_read = false;
  open();
  send_str(*pair.a.tcp, ha, "never read");
  run_until([&] { return pair.b.tcp->readable(hb()) == 10; });
  bool fin_from_b = false;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (c && &from == &pair.b && c->has(kFlagFin)) fin_from_b = true;
    return true;
  });
  pair.b.tcp->close(hb());
  run_until([&] { return client.conns[0].closed; });
  EXPECT_EQ(client.conns[0].reason, CloseReason::reset_by_peer);
  EXPECT_FALSE(fin_from_b);
}

// SYN-SENT retransmits its SYN with exponential backoff (RFC 6298 5.5; the
// initial RTO is 1 s, 2.1) and gives up after R2 (RFC 9293 3.8.3), telling
// the application.
TEST_F(TcpStateTest, SynSentRetransmitsWithBackoffThenTimesOut) {
  std::vector<uint64_t> syn_times;
  pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (c && &from == &pair.a && c->has(kFlagSyn)) syn_times.push_back(pair.now_us);
    return !(c && &from == &pair.a);  // nothing from a ever arrives
  });
  ha = listen_and_connect(pair, kPort, server, client);
  ASSERT_TRUE(ha.valid());
  const uint64_t end = pair.now_us + 400'000'000;
  while (pair.now_us < end && !client.conns[0].closed) pair.step(1'000);
  ASSERT_TRUE(client.conns[0].closed);
  EXPECT_EQ(client.conns[0].reason, CloseReason::timed_out);
  const size_t expected = 1u + config().max_syn_retries;
  ASSERT_EQ(syn_times.size(), expected);
  uint64_t rto = config().initial_rto_us;
  for (size_t i = 1; i < syn_times.size(); ++i) {
    const uint64_t gap = syn_times[i] - syn_times[i - 1];
    EXPECT_GE(gap, std::min<uint64_t>(rto, config().max_rto_us)) << "retransmission " << i;
    EXPECT_LE(gap, std::min<uint64_t>(rto, config().max_rto_us) + 10'000) << "retransmission " << i;
    rto *= 2;
  }
  EXPECT_EQ(pair.a.tcp->connections(), 0u);
}

// SYN-RECEIVED whose SYN,ACK is never answered: retransmitted with backoff,
// then the half-open TCB is freed without troubling the application (it
// never saw the connection).
TEST_F(TcpStateTest, SynReceivedTimesOutSilentlyAndFreesTheHalfOpenSlot) {
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
  peer.send(peer_segment(5555, kPort, 1, kFlagSyn));
  EXPECT_EQ(pair.b.tcp->half_open(), 1u);
  const uint64_t end = pair.now_us + 400'000'000;
  while (pair.now_us < end && pair.b.tcp->connections() != 0) pair.step(5'000);
  EXPECT_EQ(pair.b.tcp->connections(), 0u);
  EXPECT_EQ(pair.b.tcp->half_open(), 0u);
  const auto out = peer.take();
  EXPECT_EQ(out.size(), 1u + config().max_syn_retries);
  for (const auto& c : out) EXPECT_TRUE(c.has(kFlagSyn) && c.has(kFlagAck));
  EXPECT_TRUE(server.conns.empty());
}

// RFC 9293 3.10.7.4 (SYN-RECEIVED, RST from a passive open): "return this
// connection to the LISTEN state": the TCB goes, the listener stays, and a
// new handshake from the same port works.
TEST_F(TcpStateTest, ResetInSynReceivedReturnsToListen) {
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
  TcpSegmentFields syn = peer_segment(5555, kPort, 1000, kFlagSyn);
  peer.send(syn);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  peer.send(peer_segment(5555, kPort, 1001, kFlagRst));
  EXPECT_EQ(pair.b.tcp->connections(), 0u);
  EXPECT_EQ(pair.b.tcp->half_open(), 0u);
  EXPECT_TRUE(peer.take().empty());
  syn.seq = 5000;
  peer.send(syn);
  out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  peer.send(after_syn(syn, out[0].seq() + 1));
  EXPECT_EQ(server.conns.size(), 1u);
  EXPECT_EQ(pair.b.tcp->state(hb()), State::established);
}

// A FIN on the segment that completes the handshake: SYN-RECEIVED ->
// ESTABLISHED -> CLOSE-WAIT in one segment (RFC 9293 3.10.7.4, eighth:
// "SYN-RECEIVED STATE, ESTABLISHED STATE: Enter the CLOSE-WAIT state").
TEST_F(TcpStateTest, FinOnTheHandshakeAckGoesToCloseWait) {
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
  TcpSegmentFields syn = peer_segment(5555, kPort, 1000, kFlagSyn);
  peer.send(syn);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  TcpSegmentFields fin = after_syn(syn, out[0].seq() + 1);
  fin.flags = kFlagAck | kFlagFin;
  fin.payload = {'h', 'i'};
  peer.send(fin);
  ASSERT_EQ(server.conns.size(), 1u);
  EXPECT_EQ(server.conns[0].received, "hi");
  EXPECT_TRUE(server.conns[0].peer_closed);
  EXPECT_EQ(pair.b.tcp->state(hb()), State::close_wait);
  out = peer.take();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().ack(), 1001u + 2 + 1);
}

// RFC 9293 3.10.7.3 (SYN-SENT, a SYN,ACK that acknowledges our SYN): "If
// there are other controls or text in the segment, then continue
// processing at the sixth step ... where the URG bit is checked". Data on
// the SYN,ACK (a TCP Fast Open server does this) is delivered, not dropped
// and left for the peer to retransmit.
TEST_F(TcpStateTest, DataOnTheSynAckIsDelivered) {
  ScriptedPeer peer(pair, pair.a, ip(198, 18, 0, 9));
  ha = connect_from(pair, pair.a, peer.ip(), 5555, client);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  TcpSegmentFields synack = syn_ack_to(out[0], 7000);
  synack.options.mss = 1460;
  synack.payload = {'h', 'e', 'l', 'l', 'o'};
  peer.send(synack);
  pair.run_for(100'000);
  EXPECT_EQ(pair.a.tcp->state(ha), State::established);
  EXPECT_EQ(client.conns[0].received, "hello");
  out = peer.take();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().ack(), 7000u + 1 + 5) << "the data on the SYN,ACK was not acknowledged";
}

// send() is accepted in SYN-SENT (tcp_stack.cc); the data goes out once
// the handshake completes (RFC 9293 3.10.2: SEND in SYN-SENT "queue the
// data for transmission after entering ESTABLISHED state").
TEST_F(TcpStateTest, DataQueuedInSynSentIsSentAfterTheHandshake) {
  ha = listen_and_connect(pair, kPort, server, client);
  ASSERT_TRUE(ha.valid());
  ASSERT_EQ(pair.a.tcp->send(ha, reinterpret_cast<const uint8_t*>("early"), 5), 5u);
  run_until([&] { return !server.conns.empty() && server.conns[0].received == "early"; });
}

// shutdown() promises "FIN after queued data" (tcp_stack.h). Called in
// SYN-SENT after send(), as the relay service does when its client sends a
// request and half-closes before the upstream handshake completes, the
// queued data and the FIN must still reach the peer once the connection is
// established (RFC 9293 3.10.4, CLOSE in SYN-RECEIVED: "queue for processing
// after entering ESTABLISHED state"; 3.10.2 queues SENDs issued in
// SYN-SENT). Forgetting the attempt loses the data and reports "closed" as
// if it had been delivered.
TEST_F(TcpStateTest, ShutdownInSynSentStillDeliversQueuedDataAndFin) {
  ha = listen_and_connect(pair, kPort, server, client);
  ASSERT_TRUE(ha.valid());
  ASSERT_EQ(pair.a.tcp->send(ha, reinterpret_cast<const uint8_t*>("GET /\r\n"), 7), 7u);
  pair.a.tcp->shutdown(ha);
  EXPECT_FALSE(client.conns[0].closed) << "the connection attempt was dropped with data queued";
  run_until([&] { return !server.conns.empty() && server.conns[0].peer_closed; }, 5'000'000);
  if (!server.conns.empty()) {
    EXPECT_EQ(server.conns[0].received, "GET /\r\n");
  }
}

}  // namespace
}  // namespace mtlsgw::testing
