// What an attacker (or a broken peer) can send, and what the stack must do
// with it: RFC 5961 (blind RST, SYN and data injection, challenge ACKs),
// RFC 7323 5 (PAWS), RFC 9293 3.10.7.1 (resets for segments that match no
// connection, never a reset for a reset) and RFC 4987 (SYN floods: half-open
// and connection caps, SYN cookies). Segments are crafted by a peer played by
// the test (tests/support/tcp_pair.h ScriptedPeer) and injected into one
// real stack; its answers are parsed from the frames it sends.

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "dataplane/net/tcp_stack.h"
#include "tcp_pair.h"
#include "tcp_steps.h"

namespace mtlsgw::testing {
namespace {

using net::DropReason;
using net::tcp::CloseReason;
using net::tcp::ConnHandle;
using net::tcp::kFlagAck;
using net::tcp::kFlagFin;
using net::tcp::kFlagPsh;
using net::tcp::kFlagRst;
using net::tcp::kFlagSyn;
using net::tcp::State;
using net::tcp::TcpConfig;

constexpr uint16_t kPort = 80;
constexpr uint16_t kClosedPort = 81;

TcpConfig server_config() {
  TcpConfig c = TcpPair::small_config();
  c.max_half_open = 4;
  return c;
}

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// One connection as the scripted peer sees it.
struct Flow {
  uint16_t port = 0;
  uint32_t snd_nxt = 0;     // the peer's next sequence number
  uint32_t rcv_nxt = 0;     // what the peer expects from the stack next
  uint32_t server_iss = 0;  // the stack's ISS
  bool ts = false;
  uint32_t ts_value = 5000;  // the peer's clock
  uint32_t ts_recent = 0;    // the stack's last TSval
};

class TcpAttackTest : public ::testing::Test {
 protected:
  TcpPair pair{TcpPair::small_config(), server_config()};
  RecordingApp server;
  ScriptedPeer peer{pair, pair.b, ip(198, 18, 0, 9)};

  void SetUp() override { ASSERT_TRUE(pair.b.tcp->listen(kPort, &server)); }

  TcpSegmentFields fields(const Flow& f, uint8_t flags, const std::string& payload = "") const {
    TcpSegmentFields s;
    s.src_port = f.port;
    s.dst_port = kPort;
    s.seq = f.snd_nxt;
    s.ack = (flags & kFlagAck) != 0 ? f.rcv_nxt : 0;
    s.flags = flags;
    s.window = 65535;
    if (f.ts) {
      s.options.timestamps = true;
      s.options.ts_value = f.ts_value;
      s.options.ts_echo = (flags & kFlagAck) != 0 ? f.ts_recent : 0;
    }
    s.payload = bytes(payload);
    return s;
  }

  TcpSegmentFields syn_of(const Flow& f, bool sack, int window_scale) const {
    TcpSegmentFields s = fields(f, kFlagSyn);
    s.options.mss = 1460;
    s.options.sack_permitted = sack;
    s.options.window_scale = window_scale;
    return s;
  }

  // Sends the SYN; returns the stack's SYN,ACK (or an empty capture).
  TcpCapture send_syn(Flow& f, bool sack = true, int window_scale = -1) {
    peer.send(syn_of(f, sack, window_scale));
    auto out = peer.take();
    EXPECT_EQ(out.size(), 1u);
    if (out.size() != 1) return TcpCapture{};
    EXPECT_TRUE(out[0].has(kFlagSyn) && out[0].has(kFlagAck));
    EXPECT_EQ(out[0].ack(), f.snd_nxt + 1);
    f.snd_nxt += 1;
    f.server_iss = out[0].seq();
    f.rcv_nxt = out[0].seq() + 1;
    if (f.ts) f.ts_recent = out[0].seg.options.ts_value;
    return out[0];
  }

  // Fills the server's half-open slots (max_half_open), so that the next
  // SYN is answered with a cookie.
  void fill_half_open() {
    for (uint16_t i = 0; i < pair.b.tcp->config().max_half_open; ++i) {
      Flow f;
      f.port = static_cast<uint16_t>(10000 + i);
      f.snd_nxt = 1;
      send_syn(f);
    }
  }

  // A complete handshake; the flow is ESTABLISHED on the stack afterwards.
  Flow connect(uint16_t port, bool ts = true, bool sack = true, int window_scale = -1) {
    Flow f;
    f.port = port;
    f.snd_nxt = 100'000u * port;
    f.ts = ts;
    send_syn(f, sack, window_scale);
    peer.send(fields(f, kFlagAck));
    EXPECT_TRUE(peer.take().empty());
    EXPECT_NE(conn_of(f), nullptr);
    return f;
  }

  // The server-side record of a flow; remembered once found, because a
  // closed connection's handle no longer names its tuple.
  RecordingApp::Conn* conn_of(const Flow& f) {
    auto known = known_.find(f.port);
    if (known != known_.end()) return &server.conns[known->second];
    for (size_t i = 0; i < server.conns.size(); ++i) {
      const auto* t = pair.b.tcp->tuple(server.conns[i].handle);
      if (t != nullptr && t->remote_port == f.port) {
        known_[f.port] = i;
        return &server.conns[i];
      }
    }
    return nullptr;
  }
  std::map<uint16_t, size_t> known_;
  State state_of(const Flow& f) {
    RecordingApp::Conn* c = conn_of(f);
    return c == nullptr ? State::closed : pair.b.tcp->state(c->handle);
  }

  // Sends data in order and checks that it is delivered and acknowledged.
  void send_data(Flow& f, const std::string& data) {
    peer.send(fields(f, kFlagAck | kFlagPsh, data));
    f.snd_nxt += static_cast<uint32_t>(data.size());
    f.ts_value += 1;
    pair.run_for(100'000);  // the delayed ACK
    auto out = peer.take();
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.back().ack(), f.snd_nxt);
    if (f.ts) f.ts_recent = out.back().seg.options.ts_value;
  }

  // Exactly one pure ACK that acknowledges what the peer really sent and no
  // more: a (challenge) ACK, not a reset.
  void expect_one_ack(const std::vector<TcpCapture>& out, const Flow& f, const char* what) {
    ASSERT_EQ(out.size(), 1u) << what;
    EXPECT_TRUE(out[0].has(kFlagAck)) << what;
    EXPECT_FALSE(out[0].has(kFlagRst)) << what;
    EXPECT_FALSE(out[0].has(kFlagSyn)) << what;
    EXPECT_EQ(out[0].ack(), f.snd_nxt) << what;
    EXPECT_EQ(out[0].seq(), f.rcv_nxt) << what;
    EXPECT_TRUE(out[0].payload.empty()) << what;
  }
};

// --- RFC 5961 3: blind reset ------------------------------------------------

// RFC 5961 3.2: a RST whose sequence number is in the window but not exactly
// RCV.NXT earns a challenge ACK and changes nothing.
TEST_F(TcpAttackTest, InWindowResetWithWrongSequenceEarnsChallengeAck) {
  Flow f = connect(1000);
  TcpSegmentFields rst = fields(f, kFlagRst);
  for (uint32_t off : {1u, 1000u, 30000u}) {
    rst.seq = f.snd_nxt + off;
    peer.send(rst);
    expect_one_ack(peer.take(), f, "in-window RST");
  }
  EXPECT_EQ(state_of(f), State::established);
  EXPECT_FALSE(conn_of(f)->closed);
  EXPECT_EQ(pair.b.tcp->counters().challenge_acks.get(), 3u);
  EXPECT_EQ(pair.b.tcp->counters().resets_received.get(), 0u);
  // The connection still works.
  send_data(f, "still here");
  EXPECT_EQ(conn_of(f)->received, "still here");
}

// A RST with ACK and the same wrong sequence number: the same.
TEST_F(TcpAttackTest, InWindowResetWithAckAndWrongSequenceEarnsChallengeAck) {
  Flow f = connect(1000);
  TcpSegmentFields rst = fields(f, kFlagRst | kFlagAck);
  rst.seq = f.snd_nxt + 7;
  peer.send(rst);
  expect_one_ack(peer.take(), f, "in-window RST,ACK");
  EXPECT_EQ(state_of(f), State::established);
}

// RFC 5961 3.2: "If the RST bit is set and the sequence number exactly
// matches the next expected sequence number (RCV.NXT), then TCP MUST reset
// the connection." No answer to a reset.
TEST_F(TcpAttackTest, ExactResetResetsWithoutAnswer) {
  Flow f = connect(1000);
  send_data(f, "abc");
  peer.send(fields(f, kFlagRst));
  EXPECT_TRUE(peer.take().empty());
  ASSERT_NE(conn_of(f), nullptr);
  EXPECT_TRUE(conn_of(f)->closed);
  EXPECT_EQ(conn_of(f)->reason, CloseReason::reset_by_peer);
  EXPECT_EQ(pair.b.tcp->connections(), 0u);
}

// RFC 5961 3.2 / RFC 9293 3.10.7.4: a RST outside the window is dropped
// silently.
TEST_F(TcpAttackTest, OutOfWindowResetIsDroppedSilently) {
  Flow f = connect(1000);
  TcpSegmentFields rst = fields(f, kFlagRst);
  for (uint32_t seq : {f.snd_nxt + 70'000u, f.snd_nxt - 1u, f.snd_nxt + 0x80000000u}) {
    rst.seq = seq;
    peer.send(rst);
    EXPECT_TRUE(peer.take().empty());
  }
  EXPECT_EQ(state_of(f), State::established);
  EXPECT_EQ(pair.b.tcp->counters().challenge_acks.get(), 0u);
}

// --- RFC 5961 4: blind SYN ----------------------------------------------------

// RFC 5961 4.2: a SYN in a synchronized state, whatever its sequence
// number, earns a challenge ACK; the connection is neither reset nor
// replaced, and no second connection appears.
TEST_F(TcpAttackTest, SynInEstablishedEarnsChallengeAck) {
  Flow f = connect(1000);
  for (uint32_t seq : {f.snd_nxt, f.snd_nxt + 500u, f.snd_nxt + 0x40000000u, f.snd_nxt - 100u}) {
    Flow g = f;
    g.snd_nxt = seq;
    peer.send(syn_of(g, true, -1));
    expect_one_ack(peer.take(), f, "SYN in ESTABLISHED");
  }
  EXPECT_EQ(state_of(f), State::established);
  EXPECT_EQ(pair.b.tcp->connections(), 1u);
  EXPECT_EQ(server.conns.size(), 1u);
  send_data(f, "ok");
}

// --- RFC 5961 5: blind data injection -------------------------------------------

// RFC 5961 5.2 / RFC 9293 3.10.7.4: an ACK of something not yet sent
// (SEG.ACK > SND.NXT): "send an ACK, drop the segment". Its data must not
// reach the application.
TEST_F(TcpAttackTest, AckBeyondSndNxtIsAnsweredAndItsDataDropped) {
  Flow f = connect(1000);
  TcpSegmentFields evil = fields(f, kFlagAck | kFlagPsh, "injected");
  evil.ack = f.rcv_nxt + 5000;
  peer.send(evil);
  pair.run_for(100'000);
  expect_one_ack(peer.take(), f, "ACK beyond SND.NXT");
  EXPECT_EQ(conn_of(f)->received, "");
  send_data(f, "real");
  EXPECT_EQ(conn_of(f)->received, "real");
}

// RFC 5961 5.2: an ACK older than SND.UNA - MAX.SND.WND is a blind
// injection: challenge ACK, segment dropped. An ACK older than SND.UNA but
// within that bound is a plain duplicate: its data is accepted.
TEST_F(TcpAttackTest, AckBelowTheAcceptableRangeIsChallengedAndItsDataDropped) {
  Flow f = connect(1000, /*ts=*/true, /*sack=*/true, /*window_scale=*/-1);
  // MAX.SND.WND is the peer's 65535 (no scaling).
  TcpSegmentFields evil = fields(f, kFlagAck | kFlagPsh, "injected");
  evil.ack = f.rcv_nxt - 65535 - 100;
  peer.send(evil);
  pair.run_for(100'000);
  expect_one_ack(peer.take(), f, "ACK too old");
  EXPECT_EQ(conn_of(f)->received, "");
  EXPECT_EQ(pair.b.tcp->counters().challenge_acks.get(), 1u);

  TcpSegmentFields dup = fields(f, kFlagAck | kFlagPsh, "fine");
  dup.ack = f.rcv_nxt - 1000;
  peer.send(dup);
  f.snd_nxt += 4;
  pair.run_for(100'000);
  EXPECT_EQ(conn_of(f)->received, "fine");
}

// RFC 9293 3.10.7.4: a segment outside the receive window is not
// acceptable: "an acknowledgment should be sent in reply (unless the RST bit
// is set)" and its data is dropped. Data partly inside the window is
// trimmed to it.
TEST_F(TcpAttackTest, OutOfWindowDataIsAcknowledgedNotAccepted) {
  Flow f = connect(1000);
  for (uint32_t seq : {f.snd_nxt + 200'000u, f.snd_nxt - 50'000u, f.snd_nxt + 0x7fff0000u}) {
    TcpSegmentFields evil = fields(f, kFlagAck | kFlagPsh, "outside");
    evil.seq = seq;
    peer.send(evil);
    pair.run_for(50'000);
    expect_one_ack(peer.take(), f, "out-of-window data");
  }
  EXPECT_EQ(conn_of(f)->received, "");
  send_data(f, "inside");
  EXPECT_EQ(conn_of(f)->received, "inside");
}

// RFC 9293 3.10.7.4: "If the RCV.WND is zero, no segments will be
// acceptable, but special allowance should be made to accept valid ACKs".
// The stack's receive buffer is full (its application stopped reading) while
// it has data of its own in flight: the peer's ACK of that data rides on a
// segment that also carries a byte (a Linux-style window probe or simply
// the peer's own data). The ACK must still move SND.UNA.
TEST_F(TcpAttackTest, ZeroReceiveWindowStillProcessesTheAckOfADataSegment) {
  server.auto_read = false;
  Flow f = connect(1000, /*ts=*/true, /*sack=*/false, /*window_scale=*/-1);
  RecordingApp::Conn* c = conn_of(f);
  ASSERT_NE(c, nullptr);
  // Fill the stack's receive buffer: 64 KiB in 1460-byte segments.
  const uint32_t base = f.snd_nxt;
  std::string chunk(1460, 'x');
  uint32_t window = 1;
  for (int i = 0; i < 60 && window != 0; ++i) {
    peer.send(fields(f, kFlagAck, chunk));
    f.snd_nxt += 1460;
    pair.run_for(1'000);
    for (const auto& s : peer.take()) {
      window = s.seg.window;
      if (f.ts) f.ts_recent = s.seg.options.ts_value;
    }
  }
  pair.run_for(100'000);
  for (const auto& s : peer.take()) window = s.seg.window;
  const uint32_t accepted = pair.b.tcp->readable(c->handle);
  ASSERT_EQ(window, 0u) << pair.b.tcp->describe(c->handle);
  f.snd_nxt = base + accepted;  // what it took
  // The stack sends 1000 bytes of its own.
  std::string reply(1000, 'r');
  ASSERT_EQ(pair.b.tcp->send(c->handle, reinterpret_cast<const uint8_t*>(reply.data()), 1000), 1000u);
  pair.step();
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].payload.size(), 1000u);
  const uint32_t una_before = static_cast<uint32_t>(describe_field(pair.b.tcp->describe(c->handle), "una"));
  // The peer acknowledges them on a one-byte segment (its window probe).
  f.rcv_nxt += 1000;
  f.ts_value += 1;
  peer.send(fields(f, kFlagAck, "p"));
  pair.run_for(10'000);
  const uint32_t una_after = static_cast<uint32_t>(describe_field(pair.b.tcp->describe(c->handle), "una"));
  EXPECT_EQ(una_after, una_before + 1000) << "the ACK on a data segment was ignored: "
                                          << pair.b.tcp->describe(c->handle);
}

// --- RFC 7323 5: PAWS ----------------------------------------------------------------

// RFC 7323 5.3 R1: a segment whose TSval is older than TS.Recent is not
// acceptable: ACK it and drop it. The same data with a current TSval is
// then accepted.
TEST_F(TcpAttackTest, PawsDropsASegmentWithAnOldTimestamp) {
  Flow f = connect(1000);
  send_data(f, "one");
  TcpSegmentFields old = fields(f, kFlagAck | kFlagPsh, "two");
  old.options.ts_value = f.ts_value - 100;  // from before: a wrapped old duplicate
  peer.send(old);
  pair.run_for(50'000);
  expect_one_ack(peer.take(), f, "PAWS");
  EXPECT_EQ(conn_of(f)->received, "one");
  EXPECT_EQ(pair.b.counters.dropped(DropReason::tcp_paws), 1u);
  send_data(f, "two");
  EXPECT_EQ(conn_of(f)->received, "onetwo");
}

// RFC 7323 5.2: PAWS does not apply to RST (a reset with an old timestamp
// still resets when exact).
TEST_F(TcpAttackTest, PawsDoesNotApplyToReset) {
  Flow f = connect(1000);
  send_data(f, "one");
  TcpSegmentFields rst = fields(f, kFlagRst);
  rst.options.ts_value = f.ts_value - 100;
  peer.send(rst);
  EXPECT_TRUE(conn_of(f)->closed);
}

// --- RFC 9293 3.10.7.1: no connection ------------------------------------------------

// "If the ACK bit is off, sequence number zero is used, <SEQ=0><ACK=SEG.SEQ+
// SEG.LEN><CTL=RST,ACK>. If the ACK bit is on, <SEQ=SEG.ACK><CTL=RST>."
// SEG.LEN counts SYN and FIN.
TEST_F(TcpAttackTest, SegmentForNoConnectionEarnsTheRightReset) {
  TcpSegmentFields syn = peer_segment(4000, kClosedPort, 0x12345678, kFlagSyn);
  peer.send(syn);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seg.flags, kFlagRst | kFlagAck);
  EXPECT_EQ(out[0].seq(), 0u);
  EXPECT_EQ(out[0].ack(), 0x12345679u);
  EXPECT_EQ(out[0].seg.src_port, kClosedPort);
  EXPECT_EQ(out[0].seg.dst_port, 4000);

  TcpSegmentFields fin = syn;
  fin.flags = kFlagFin | kFlagPsh;
  fin.payload = bytes("hello");
  peer.send(fin);
  out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seg.flags, kFlagRst | kFlagAck);
  EXPECT_EQ(out[0].ack(), 0x12345678u + 5 + 1);

  TcpSegmentFields ack = syn;
  ack.flags = kFlagAck;
  ack.ack = 0xdeadbeef;
  ack.payload = bytes("data");
  peer.send(ack);
  out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seg.flags, kFlagRst);
  EXPECT_EQ(out[0].seq(), 0xdeadbeefu);

  // The same ACK to a port with a listener (LISTEN, RFC 9293 3.10.7.2,
  // second: "Any acknowledgment is bad if it arrives on a connection still
  // in the LISTEN state"): <SEQ=SEG.ACK><CTL=RST>.
  ack.dst_port = kPort;
  peer.send(ack);
  out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seg.flags, kFlagRst);
  EXPECT_EQ(out[0].seq(), 0xdeadbeefu);
  EXPECT_EQ(pair.b.tcp->connections(), 0u);
}

// RFC 9293 3.10.7.1/3.10.7.2: "An incoming segment containing a RST is
// discarded" - in CLOSED, LISTEN, SYN-SENT and for a RST outside the window
// of a synchronized connection. A reset is never answered.
TEST_F(TcpAttackTest, ResetIsNeverAnsweredWithAReset) {
  TcpSegmentFields rst = peer_segment(4000, kClosedPort, 1, 0);
  rst.ack = 2;
  for (uint8_t flags : {kFlagRst, static_cast<uint8_t>(kFlagRst | kFlagAck)}) {
    rst.flags = flags;
    rst.dst_port = kClosedPort;  // CLOSED
    peer.send(rst);
    rst.dst_port = kPort;  // LISTEN
    peer.send(rst);
  }
  Flow f = connect(1000);
  TcpSegmentFields far = fields(f, kFlagRst | kFlagAck);
  far.seq = f.snd_nxt + 1'000'000;  // synchronized, out of window
  peer.send(far);
  pair.run_for(10'000);
  EXPECT_TRUE(peer.take().empty());
  EXPECT_EQ(pair.b.tcp->counters().resets_sent.get(), 0u);

  // SYN-SENT: the stack under test is the client; a RST with an
  // unacceptable ACK, and a RST without ACK, are both dropped unanswered
  // (RFC 9293 3.10.7.3; RFC 5961 3.2 keeps this rule).
  ScriptedPeer origin(pair, pair.a, ip(198, 18, 0, 10));
  RecordingApp client;
  const ConnHandle h = connect_from(pair, pair.a, origin.ip(), 443, client);
  auto out = origin.take();
  ASSERT_EQ(out.size(), 1u);
  const uint32_t iss = out[0].seq();
  TcpSegmentFields bad = peer_segment(443, out[0].seg.src_port, 999, kFlagRst | kFlagAck);
  bad.ack = iss + 1000;  // not our SYN
  origin.send(bad);
  bad.flags = kFlagRst;
  bad.ack = 0;
  origin.send(bad);
  EXPECT_TRUE(origin.take().empty());
  EXPECT_EQ(pair.a.tcp->state(h), State::syn_sent);
  // A SYN,ACK with an unacceptable ACK earns <SEQ=SEG.ACK><CTL=RST>.
  bad.flags = kFlagSyn | kFlagAck;
  bad.ack = iss + 1000;
  origin.send(bad);
  out = origin.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seg.flags, kFlagRst);
  EXPECT_EQ(out[0].seq(), iss + 1000);
  EXPECT_EQ(pair.a.tcp->state(h), State::syn_sent);
  // A RST,ACK that acknowledges the SYN refuses the connection.
  bad.flags = kFlagRst | kFlagAck;
  bad.ack = iss + 1;
  origin.send(bad);
  EXPECT_TRUE(origin.take().empty());
  EXPECT_TRUE(client.conns[0].closed);
  EXPECT_EQ(client.conns[0].reason, CloseReason::refused);
}

// --- RFC 5961 7: challenge ACKs are rate-limited, per connection -----------------

// A challenge ACK budget shared by all connections is itself an off-path
// side channel (CVE-2016-5696, "Off-Path TCP Exploits: Global Rate Limit
// Considered Dangerous", USENIX Security 2016): an attacker spends part of
// the budget with spoofed in-window RSTs on a victim's connection, then
// counts how many challenge ACKs its own connection still gets in the same
// second, and learns whether its guesses were in the victim's window. What
// one connection can observe must not depend on other connections.
TEST_F(TcpAttackTest, ChallengeAckBudgetDoesNotLeakAcrossConnections) {
  const uint32_t limit = pair.b.tcp->config().challenge_ack_limit;
  ASSERT_GT(limit, 10u);
  Flow attacker = connect(2000);
  Flow victim = connect(3000);
  auto count_challenges = [&](uint32_t spoofed_on_victim) {
    pair.run_for(2'000'000);  // a new second
    peer.take();
    TcpSegmentFields guess = fields(victim, kFlagRst);
    for (uint32_t i = 0; i < spoofed_on_victim; ++i) {
      guess.seq = victim.snd_nxt + 1 + i;  // in-window guesses
      peer.send(guess);
    }
    peer.take();  // (the victim gets these: the attacker cannot see them)
    TcpSegmentFields probe = fields(attacker, kFlagRst);
    probe.seq = attacker.snd_nxt + 10;
    for (uint32_t i = 0; i < limit; ++i) peer.send(probe);
    uint32_t seen = 0;
    for (const auto& c : peer.take()) seen += c.seg.dst_port == attacker.port;
    return seen;
  };
  const uint32_t baseline = count_challenges(0);
  const uint32_t after_spoofing = count_challenges(100);
  EXPECT_EQ(baseline, after_spoofing)
      << "the attacker's own connection sees " << baseline - after_spoofing
      << " fewer challenge ACKs: exactly the number of its in-window guesses on the victim";
  EXPECT_EQ(state_of(victim), State::established);
}

// --- RFC 4987: SYN floods, cookies and caps ----------------------------------------

// Past max_half_open, SYNs are answered statelessly (RFC 4987 3.6): no TCB,
// a SYN,ACK whose ISN is the cookie. A flood costs no memory.
TEST_F(TcpAttackTest, SynFloodBeyondTheHalfOpenCapIsAnsweredWithCookies) {
  std::vector<TcpCapture> synacks;
  for (uint16_t i = 0; i < 40; ++i) {
    Flow f;
    f.port = static_cast<uint16_t>(10000 + i);
    f.snd_nxt = 77'000 + i;
    f.ts = true;
    peer.send(syn_of(f, true, 7));
    auto out = peer.take();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].has(kFlagSyn) && out[0].has(kFlagAck));
    EXPECT_EQ(out[0].ack(), f.snd_nxt + 1);
    synacks.push_back(out[0]);
  }
  EXPECT_EQ(pair.b.tcp->half_open(), 4u);
  EXPECT_EQ(pair.b.tcp->connections(), 4u);
  EXPECT_EQ(pair.b.tcp->counters().syn_cookies_sent.get(), 36u);
  // The cookie SYN,ACKs carry what a TCB would have negotiated: the peer
  // sent timestamps, so window scaling and SACK survive in the TSval.
  const auto& cookie = synacks[20].seg.options;
  EXPECT_TRUE(cookie.has_timestamps);
  EXPECT_TRUE(cookie.has_window_scale);
  EXPECT_TRUE(cookie.sack_permitted);
  EXPECT_EQ(cookie.mss, pair.b.tcp->config().mss);
  EXPECT_TRUE(server.conns.empty());
}

// The ACK that returns a valid cookie creates the connection (RFC 4987
// 3.6), which is then ESTABLISHED: no reset, the application accepts it,
// and data flows at once.
TEST_F(TcpAttackTest, CookieHandshakeCompletesAndCarriesData) {
  fill_half_open();
  ASSERT_EQ(pair.b.tcp->half_open(), 4u);
  Flow f;
  f.port = 20000;
  f.snd_nxt = 0x55555555;
  f.ts = true;
  const TcpCapture synack = send_syn(f, true, 7);
  ASSERT_EQ(pair.b.tcp->counters().syn_cookies_sent.get(), 1u);
  peer.send(fields(f, kFlagAck));
  auto out = peer.take();
  for (const auto& c : out) EXPECT_FALSE(c.has(kFlagRst)) << "the cookie ACK was answered with a reset";
  EXPECT_EQ(pair.b.tcp->counters().syn_cookies_validated.get(), 1u);
  // No TCB may be left half-open by a validated cookie: the flood must not
  // be able to fill the table through the cookie path either.
  EXPECT_EQ(pair.b.tcp->half_open(), 4u);
  ASSERT_NE(conn_of(f), nullptr) << "no connection accepted from a valid cookie";
  EXPECT_EQ(state_of(f), State::established);
  EXPECT_EQ(pair.b.tcp->half_open(), 4u);  // the cookie connection is not half-open
  // Options restored from the TSecr (RFC 4987 3.6 leaves them to the
  // implementation; this one promises them when timestamps were on).
  const std::string d = pair.b.tcp->describe(conn_of(f)->handle);
  EXPECT_NE(d.find("ts=true sack=true wscale=7/"), std::string::npos) << d;
  (void)synack;
  // The first data segment is accepted at once: no retransmission needed.
  peer.send(fields(f, kFlagAck | kFlagPsh, "GET / HTTP/1.1\r\n\r\n"));
  f.snd_nxt += 18;
  pair.run_for(100'000);
  out = peer.take();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().ack(), f.snd_nxt) << "data after a cookie handshake was not accepted";
  EXPECT_EQ(conn_of(f)->received, "GET / HTTP/1.1\r\n\r\n");
}

// The handshake's third segment is lost and the first data segment (which
// also carries the ACK of the cookie) arrives instead: it must create the
// connection and its data must be kept (RFC 9293 3.10.7.4 accepts data on
// the segment that completes the handshake).
TEST_F(TcpAttackTest, CookieCompletedByADataSegmentKeepsTheData) {
  fill_half_open();
  Flow f;
  f.port = 20001;
  f.snd_nxt = 0x1000;
  f.ts = true;
  send_syn(f, true, 7);
  peer.send(fields(f, kFlagAck | kFlagPsh, "hello"));
  f.snd_nxt += 5;
  pair.run_for(100'000);
  auto out = peer.take();
  for (const auto& c : out) EXPECT_FALSE(c.has(kFlagRst));
  ASSERT_NE(conn_of(f), nullptr);
  EXPECT_EQ(conn_of(f)->received, "hello");
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().ack(), f.snd_nxt);
}

// Without timestamps a cookie cannot carry window scaling or SACK (RFC 4987
// 3.6), so the SYN,ACK must not offer them: offering a window scale it will
// not use would make the peer misread every window we advertise.
TEST_F(TcpAttackTest, CookieWithoutTimestampsOffersNeitherScalingNorSack) {
  fill_half_open();
  Flow f;
  f.port = 20002;
  f.snd_nxt = 0x2000;
  f.ts = false;
  const TcpCapture synack = send_syn(f, true, 7);
  EXPECT_FALSE(synack.seg.options.has_window_scale);
  EXPECT_FALSE(synack.seg.options.sack_permitted);
  EXPECT_FALSE(synack.seg.options.has_timestamps);
  EXPECT_EQ(synack.seg.options.mss, pair.b.tcp->config().mss);
  peer.send(fields(f, kFlagAck));
  for (const auto& c : peer.take()) EXPECT_FALSE(c.has(kFlagRst));
  ASSERT_NE(conn_of(f), nullptr);
  const std::string d = pair.b.tcp->describe(conn_of(f)->handle);
  EXPECT_NE(d.find("ts=false sack=false wscale=0/0"), std::string::npos) << d;
}

// An ACK to the listener whose cookie does not check: no connection, and
// <SEQ=SEG.ACK><CTL=RST> as for any ACK in LISTEN (RFC 9293 3.10.7.2).
TEST_F(TcpAttackTest, BadCookieAckIsAnsweredWithReset) {
  fill_half_open();
  Flow f;
  f.port = 20003;
  f.snd_nxt = 0x3000;
  f.ts = true;
  send_syn(f, true, 7);
  const uint32_t good = f.rcv_nxt;
  for (uint32_t wrong : {good + 1, good ^ 0x00000100u, good ^ 0x80000000u}) {
    f.rcv_nxt = wrong;
    peer.send(fields(f, kFlagAck));
    auto out = peer.take();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].seg.flags, kFlagRst);
    EXPECT_EQ(out[0].seq(), wrong);
  }
  // Also the right cookie for another peer ISN (the cookie is bound to it).
  f.rcv_nxt = good;
  f.snd_nxt += 1;
  peer.send(fields(f, kFlagAck));
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seg.flags, kFlagRst);
  EXPECT_EQ(pair.b.counters.dropped(DropReason::tcp_bad_cookie), 4u);
  EXPECT_EQ(pair.b.tcp->counters().syn_cookies_validated.get(), 0u);
  EXPECT_EQ(pair.b.tcp->connections(), 4u);
  EXPECT_EQ(conn_of(f), nullptr);
}

// Two real stacks, the server in permanent cookie mode (max_half_open = 0):
// a normal client connects, sends, receives and closes without a reset and
// without retransmissions.
TEST(TcpCookiePair, RealClientThroughCookiesTransfersBothWays) {
  TcpConfig server_cfg = TcpPair::small_config();
  server_cfg.max_half_open = 0;
  TcpPair pair(TcpPair::small_config(), server_cfg);
  RecordingApp server;
  RecordingApp client;
  server.echo = true;
  const ConnHandle h = listen_and_connect(pair, kPort, server, client);
  ASSERT_TRUE(h.valid());
  ASSERT_TRUE(pair.run_until([&] { return client.conns[0].connected; }));
  pair.run_for(10'000);
  EXPECT_EQ(pair.b.tcp->counters().syn_cookies_sent.get(), 1u);
  EXPECT_EQ(pair.b.tcp->counters().syn_cookies_validated.get(), 1u);
  ASSERT_EQ(server.conns.size(), 1u);
  EXPECT_EQ(pair.a.tcp->state(h), State::established);
  const std::string msg(100'000, 'q');
  size_t sent = 0;
  ASSERT_TRUE(pair.run_until([&] {
    send_rest(*pair.a.tcp, h, msg, sent);
    return client.conns[0].received.size() == msg.size();
  }, 10'000'000));
  EXPECT_EQ(pair.a.tcp->counters().retransmitted_segments.get(), 0u);
  EXPECT_EQ(pair.a.tcp->counters().resets_received.get(), 0u);
  pair.a.tcp->shutdown(h);
  ASSERT_TRUE(pair.run_until([&] { return server.conns[0].closed; }));
  EXPECT_EQ(server.conns[0].reason, CloseReason::closed);
}

// The connection cap (issue 3: "caps on half-open and total connections per
// worker"): with cookies off, a SYN beyond max_connections is dropped, the
// established connections are untouched, and a slot freed by a close can be
// used again.
TEST(TcpConnectionCap, SynBeyondTheCapIsDroppedAndTheSlotComesBack) {
  TcpConfig cfg = TcpPair::small_config();
  cfg.max_connections = 3;
  cfg.syn_cookies = false;
  TcpPair pair(TcpPair::small_config(), cfg);
  RecordingApp server;
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
  auto handshake = [&](uint16_t port) {
    const TcpSegmentFields syn = peer_segment(port, kPort, 1000, kFlagSyn);
    peer.send(syn);
    auto out = peer.take();
    if (out.size() != 1) return false;
    peer.send(after_syn(syn, out[0].seq() + 1));
    return peer.take().empty();
  };
  for (uint16_t p = 1; p <= 3; ++p) EXPECT_TRUE(handshake(p));
  EXPECT_EQ(pair.b.tcp->connections(), 3u);
  EXPECT_FALSE(handshake(4));
  EXPECT_EQ(pair.b.counters.dropped(DropReason::tcp_connection_limit), 1u);
  EXPECT_EQ(pair.b.tcp->connections(), 3u);
  ASSERT_EQ(server.conns.size(), 3u);
  pair.b.tcp->abort(server.conns[0].handle);
  EXPECT_EQ(pair.b.tcp->connections(), 2u);
  peer.take();
  EXPECT_TRUE(handshake(5));
  EXPECT_EQ(server.conns.size(), 4u);
}

// With cookies on, the connection cap still holds: a cookie that checks
// does not create a TCB beyond max_connections.
TEST(TcpConnectionCap, CookiesDoNotBreakTheConnectionCap) {
  TcpConfig cfg = TcpPair::small_config();
  cfg.max_connections = 3;
  cfg.max_half_open = 64;
  TcpPair pair(TcpPair::small_config(), cfg);
  RecordingApp server;
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
  for (uint16_t p = 1; p <= 6; ++p) {
    const TcpSegmentFields syn = peer_segment(p, kPort, 1000, kFlagSyn);
    peer.send(syn);
    auto out = peer.take();
    ASSERT_EQ(out.size(), 1u);
    peer.send(after_syn(syn, out[0].seq() + 1));
    peer.take();
  }
  EXPECT_EQ(pair.b.tcp->connections(), 3u);
  EXPECT_LE(server.conns.size(), 3u);
  EXPECT_EQ(pair.b.tcp->counters().syn_cookies_sent.get(), 3u);
}

// Without cookies, a full SYN queue drops SYNs (counted) and established
// connections are unaffected.
TEST(TcpSynQueue, FullQueueWithoutCookiesDropsSyns) {
  TcpConfig cfg = TcpPair::small_config();
  cfg.max_half_open = 2;
  cfg.syn_cookies = false;
  TcpPair pair(TcpPair::small_config(), cfg);
  RecordingApp server;
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
  for (uint16_t p = 1; p <= 5; ++p) peer.send(peer_segment(p, kPort, 1000, kFlagSyn));
  EXPECT_EQ(peer.take().size(), 2u);
  EXPECT_EQ(pair.b.tcp->half_open(), 2u);
  EXPECT_EQ(pair.b.counters.dropped(DropReason::tcp_syn_queue_full), 3u);
}

// --- malformed and hostile segments on an established connection ---------------

// A segment with a bad checksum is dropped before anything looks at it
// (RFC 9293 3.1: the checksum covers the pseudo-header, header and data),
// even an exact RST.
TEST_F(TcpAttackTest, BadChecksumIsDroppedEvenForAnExactReset) {
  Flow f = connect(1000);
  Bytes frame = tcp_frame(pair.b.iface->config().mac, mac({2, 0, 0, 0, 0, 0x77}), peer.ip(),
                          peer.target_ip(), fields(f, kFlagRst));
  frame[14 + 20 + 17] ^= 0x01;  // TCP checksum, low byte
  pair.inject(pair.b, frame);
  EXPECT_TRUE(peer.take().empty());
  EXPECT_EQ(state_of(f), State::established);
  EXPECT_EQ(pair.b.counters.dropped(DropReason::tcp_bad_checksum), 1u);
}

// In-order data is copied to its place in the receive buffer while its
// checksum is summed (one pass): a corrupted segment at RCV.NXT must leave
// nothing readable and nothing acknowledged, and its retransmission,
// arriving in the same frame buffer, must be delivered as sent.
TEST_F(TcpAttackTest, CorruptedInOrderDataIsNeitherReadNorAcknowledged) {
  server.auto_read = false;  // keeps the receive buffer attached: the copy-and-sum path
  Flow f = connect(1001);
  peer.send(fields(f, kFlagAck | kFlagPsh, "first "));
  f.snd_nxt += 6;
  peer.take();
  const Bytes frame = tcp_frame(pair.b.iface->config().mac, mac({2, 0, 0, 0, 0, 0x77}), peer.ip(),
                                peer.target_ip(), fields(f, kFlagAck | kFlagPsh, "second"));
  Bytes corrupted = frame;
  corrupted[corrupted.size() - 2] ^= 0x10;  // in the payload
  pair.inject(pair.b, corrupted);
  EXPECT_TRUE(peer.take().empty());
  EXPECT_EQ(pair.b.counters.dropped(DropReason::tcp_bad_checksum), 1u);
  const net::tcp::ConnHandle h = conn_of(f)->handle;
  EXPECT_EQ(pair.b.tcp->readable(h), 6u);
  pair.inject(pair.b, frame);
  uint8_t buf[64];
  const uint32_t n = pair.b.tcp->read(h, buf, sizeof buf);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "first second");
  EXPECT_EQ(pair.b.counters.dropped(DropReason::tcp_bad_checksum), 1u);
}

// Many small out-of-order segments spread over the window: the receiver's
// out-of-order store is bounded (issue 3), every one is acknowledged at once
// with SACK blocks (RFC 5681 4.2, RFC 2018 4: the first block covers the
// segment that triggered the ACK), and when the hole is filled the data is
// exact.
TEST_F(TcpAttackTest, OutOfOrderFloodIsBoundedAndSacked) {
  Flow f = connect(1000, /*ts=*/true, /*sack=*/true);
  const uint32_t base = f.snd_nxt;
  const std::string data = [] {
    std::string s(3010, '\0');
    for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>('a' + i % 26);
    return s;
  }();
  int first_block_right = 0;
  for (uint32_t i = 1; i <= 30; ++i) {
    TcpSegmentFields s = fields(f, kFlagAck, data.substr(i * 100, 10));
    s.seq = base + i * 100;
    peer.send(s);
    auto out = peer.take();
    ASSERT_EQ(out.size(), 1u) << "segment " << i;
    EXPECT_EQ(out[0].ack(), base);
    const auto& o = out[0].seg.options;
    ASSERT_GE(o.sack_count, 1u);
    EXPECT_LE(o.sack_count, 3u);  // with timestamps, 3 blocks fit
    if (o.sack[0].left == base + i * 100 && o.sack[0].right == base + i * 100 + 10) ++first_block_right;
  }
  EXPECT_GE(first_block_right, 8);
  const std::string d = pair.b.tcp->describe(conn_of(f)->handle);
  EXPECT_LE(describe_field(d, "ooo"), 8 * 10) << d;
  // The whole range, in three segments, fills every hole.
  for (uint32_t from = 0; from < data.size(); from += 1005) {
    TcpSegmentFields part = fields(f, kFlagAck | kFlagPsh, data.substr(from, 1005));
    part.seq = base + from;
    peer.send(part);
  }
  f.snd_nxt = base + static_cast<uint32_t>(data.size());
  pair.run_for(100'000);
  auto out = peer.take();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().ack(), f.snd_nxt);
  EXPECT_EQ(out.back().seg.options.sack_count, 0u);
  EXPECT_TRUE(conn_of(f)->received == data);
}

}  // namespace
}  // namespace mtlsgw::testing
