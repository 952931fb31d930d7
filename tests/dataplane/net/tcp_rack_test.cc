// RACK-TLP (RFC 8985) and what goes with it: the segment log and its loss
// detection on their own (Rack), then between two real stacks
// (tests/support/tcp_pair.h): lost retransmissions and tail losses repaired
// without the retransmission timer, a reordering window that D-SACKs
// (RFC 2883) widen, sequence numbers across 2^32, the receiver's D-SACKs,
// and the ACKs a sender needs that RFC 9293's strict acceptability test
// would drop.

#include "dataplane/net/tcp_rack.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "dataplane/net/tcp_seq.h"
#include "dataplane/net/tcp_stack.h"
#include "tcp_pair.h"

namespace mtlsgw::testing {
namespace {

using net::tcp::ConnHandle;
using net::tcp::kFlagAck;
using net::tcp::kFlagSyn;
using net::tcp::Rack;
using net::tcp::SentSegment;
using net::tcp::TcpConfig;

// --- the segment log and RACK on their own ---------------------------------------

class RackLog : public ::testing::Test {
 protected:
  static constexpr uint32_t kStart = 5000;
  void SetUp() override { rack.attach(storage, 16); }

  // n segments of len bytes from kStart (or from where the log ends), all
  // sent at now_us.
  void send(int n, uint32_t len, uint64_t now_us) {
    for (int i = 0; i < n; ++i) {
      rack.on_transmit(snd_max, len, now_us, snd_max);
      snd_max += len;
    }
  }

  SentSegment storage[16];
  Rack rack;
  uint32_t snd_una = kStart;
  uint32_t snd_max = kStart;
};

TEST_F(RackLog, PipeIsFlightLessSackedAndLost) {
  send(5, 1000, 1'000);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 5000u);
  rack.on_sack_block(kStart + 3000, kStart + 5000, 1'100);
  EXPECT_EQ(rack.sacked_bytes(), 2000u);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 3000u);
  // With three segments SACKed and no reordering seen, the window is 0
  // (RFC 8985 6.2 step 4); the three sent before them are lost once the
  // RTT of the delivered ones (100 us) has passed since they went out.
  uint32_t lost = 0;
  EXPECT_EQ(rack.detect_loss(1'100, 0, &lost), 0u);
  EXPECT_EQ(lost, 3u);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 0u);
  uint32_t seq = 0;
  uint32_t len = 0;
  ASSERT_TRUE(rack.first_lost(&seq, &len));
  EXPECT_EQ(seq, kStart);
  EXPECT_EQ(len, 1000u);
}

TEST_F(RackLog, ASegmentWaitsForTheReorderingWindow) {
  send(3, 1000, 1'000);
  rack.on_sack_block(kStart + 2000, kStart + 3000, 1'100);
  uint32_t lost = 0;
  // Sent at 1000, RTT 100, window 50: lost from 1150 on, not before.
  EXPECT_EQ(rack.detect_loss(1'120, 50, &lost), 30u);
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(rack.detect_loss(1'150, 50, &lost), 0u);
  EXPECT_EQ(lost, 2u);
}

// Segments sent after the one delivered prove nothing about it.
TEST_F(RackLog, OnlySegmentsSentBeforeTheDeliveredOneCanBeLost) {
  send(2, 1000, 1'000);
  send(2, 1000, 1'200);
  rack.on_sack_block(kStart + 1000, kStart + 2000, 1'300);
  uint32_t lost = 0;
  EXPECT_EQ(rack.detect_loss(10'000, 0, &lost), 0u);
  EXPECT_EQ(lost, 1u);  // the first; the last two went out after the SACKed one
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 2000u);
}

// A retransmission sent in the same microsecond as the originals that a SACK
// then reports is newer than they are: it must not be taken for lost on
// their account, but it is lost (a lost retransmission) once a segment sent
// after it is delivered and its time is up.
TEST_F(RackLog, LostRetransmissionIsFoundLikeAnyOtherSegment) {
  send(4, 1000, 1'000);
  rack.on_sack_block(kStart + 1000, kStart + 4000, 1'100);
  uint32_t lost = 0;
  rack.detect_loss(1'100, 0, &lost);
  ASSERT_EQ(lost, 1u);
  rack.on_transmit(kStart, 1000, 1'100, snd_max);  // the retransmission
  EXPECT_EQ(rack.lost_bytes(), 0u);
  EXPECT_EQ(rack.detect_loss(5'000, 0, &lost), 0u);
  EXPECT_EQ(lost, 0u) << "the retransmission went out after everything delivered so far";
  send(1, 1000, 1'100);  // new data after the retransmission, same microsecond
  rack.on_sack_block(kStart + 4000, kStart + 5000, 1'300);
  EXPECT_EQ(rack.detect_loss(1'300, 0, &lost), 0u);
  EXPECT_EQ(lost, 1u);
  uint32_t seq = 0;
  uint32_t len = 0;
  ASSERT_TRUE(rack.first_lost(&seq, &len));
  EXPECT_EQ(seq, kStart);
}

TEST_F(RackLog, CumulativeAckDeliversAndTrimsInsideASegment) {
  send(3, 1000, 1'000);
  rack.on_sack_block(kStart + 2000, kStart + 3000, 1'100);
  uint32_t lost = 0;
  rack.detect_loss(1'100, 0, &lost);
  ASSERT_EQ(lost, 2u);
  rack.on_cumulative_ack(kStart + 1500, 1'200);
  snd_una = kStart + 1500;
  EXPECT_EQ(rack.segments(), 2u);
  EXPECT_EQ(rack.lost_bytes(), 500u);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 0u);
  uint32_t seq = 0;
  uint32_t len = 0;
  ASSERT_TRUE(rack.first_lost(&seq, &len));
  EXPECT_EQ(seq, kStart + 1500);
  EXPECT_EQ(len, 500u);
}

// A retransmission shorter than the segment (its header carried more
// options) splits the record: the rest stays lost and is sent next.
TEST_F(RackLog, ShorterRetransmissionSplitsTheSegment) {
  send(2, 1448, 1'000);
  rack.on_sack_block(kStart + 1448, kStart + 2896, 1'100);
  uint32_t lost = 0;
  rack.detect_loss(1'100, 0, &lost);
  ASSERT_EQ(lost, 1u);
  rack.on_transmit(kStart, 1412, 1'100, snd_max);
  EXPECT_EQ(rack.segments(), 3u);
  uint32_t seq = 0;
  uint32_t len = 0;
  ASSERT_TRUE(rack.first_lost(&seq, &len));
  EXPECT_EQ(seq, kStart + 1412);
  EXPECT_EQ(len, 36u);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 1412u);
}

TEST_F(RackLog, WorksAcrossTheWrapOfSequenceNumbers) {
  rack.attach(storage, 16);
  snd_una = snd_max = 0xffffffffu - 1500;
  send(4, 1000, 1'000);  // the second segment straddles 2^32
  rack.on_sack_block(snd_una + 2000, snd_una + 4000, 1'100);
  uint32_t lost = 0;
  rack.detect_loss(1'100, 0, &lost);
  EXPECT_EQ(lost, 2u);
  rack.on_cumulative_ack(snd_una + 1000, 1'200);
  snd_una += 1000;
  EXPECT_EQ(rack.segments(), 3u);
  uint32_t seq = 0;
  uint32_t len = 0;
  ASSERT_TRUE(rack.first_lost(&seq, &len));
  EXPECT_EQ(seq, 0xffffffffu - 500);
  EXPECT_EQ(len, 1000u);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 0u);
}

// A full log merges new data into its newest record (only precision is
// lost) unless that record is SACKed: then new data must wait.
TEST_F(RackLog, AFullLogExtendsItsNewestRecord) {
  send(16, 100, 1'000);
  EXPECT_TRUE(rack.can_log_new());
  send(1, 100, 1'010);
  EXPECT_EQ(rack.segments(), 16u);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 1700u);
  rack.on_sack_block(kStart + 1500, kStart + 1700, 1'100);
  EXPECT_EQ(rack.sacked_bytes(), 200u);
  EXPECT_FALSE(rack.can_log_new());
}

// RFC 2018 8 / RFC 8985 6.3: a timeout forgets what was SACKed (the
// receiver may have reneged) and deems everything in flight lost.
TEST_F(RackLog, TimeoutMarksEverythingLostAndForgetsSacks) {
  send(4, 1000, 1'000);
  rack.on_sack_block(kStart + 2000, kStart + 3000, 1'100);
  EXPECT_EQ(rack.on_rto(), 4u);
  EXPECT_EQ(rack.sacked_bytes(), 0u);
  EXPECT_EQ(rack.lost_bytes(), 4000u);
  EXPECT_EQ(rack.pipe(snd_una, snd_max), 0u);
}

// RFC 8985 6.2 step 4: each round trip with a D-SACK widens the window by
// min_RTT / 4 (up to SRTT); 16 recoveries later it is back to one step.
TEST_F(RackLog, DsackWidensTheReorderingWindowOncePerRoundTrip) {
  send(4, 1000, 1'000);
  rack.on_cumulative_ack(kStart + 1000, 1'400);  // RTT 400 us
  snd_una = kStart + 1000;
  EXPECT_EQ(rack.min_rtt_us(), 400u);
  EXPECT_EQ(rack.reo_wnd_us(false, 10'000), 100u);
  rack.on_ack_end(true, snd_una, snd_max);
  EXPECT_TRUE(rack.reordering_seen());
  EXPECT_EQ(rack.reo_wnd_us(false, 10'000), 200u);
  rack.on_ack_end(true, snd_una, snd_max);  // same round: no further step
  EXPECT_EQ(rack.reo_wnd_us(false, 10'000), 200u);
  EXPECT_EQ(rack.reo_wnd_us(true, 10'000), 200u) << "reordering seen: recovery keeps the window";
  EXPECT_EQ(rack.reo_wnd_us(false, 150), 150u) << "never above SRTT";
  rack.on_cumulative_ack(snd_max, 1'500);
  snd_una = snd_max;
  rack.on_ack_end(true, snd_una, snd_max);
  EXPECT_EQ(rack.reo_wnd_mult(), 3u);
  for (int i = 0; i < Rack::kReoWndPersist; ++i) rack.on_recovery_end();
  EXPECT_EQ(rack.reo_wnd_mult(), 1u);
}

TEST_F(RackLog, ProbeOutcomes) {
  // A probe of new data: delivered, nothing more to say.
  rack.on_probe_sent(100, 200, false);
  EXPECT_EQ(rack.probes_sent(), 1u);
  EXPECT_EQ(rack.on_probe_ack(150, 0, 0, false), Rack::ProbeOutcome::pending);
  EXPECT_EQ(rack.on_probe_ack(200, 0, 0, true), Rack::ProbeOutcome::delivered);
  EXPECT_FALSE(rack.probe_outstanding());
  EXPECT_EQ(rack.probes_sent(), 0u) << "the episode is over";
  // A resent tail the receiver already had: a D-SACK for it.
  rack.on_probe_sent(100, 200, true);
  EXPECT_EQ(rack.on_probe_ack(200, 100, 200, true), Rack::ProbeOutcome::spurious);
  // A resent tail that filled the hole: the ACK covers it, no D-SACK.
  rack.on_probe_sent(100, 200, true);
  EXPECT_EQ(rack.on_probe_ack(200, 0, 0, false), Rack::ProbeOutcome::repaired_loss);
  // SACK blocks but no D-SACK yet: wait for the next ACK.
  rack.on_probe_sent(100, 200, true);
  EXPECT_EQ(rack.on_probe_ack(200, 0, 0, true), Rack::ProbeOutcome::pending);
  EXPECT_EQ(rack.on_probe_ack(300, 0, 0, true), Rack::ProbeOutcome::repaired_loss);
}

// --- between two stacks -------------------------------------------------------------

constexpr uint16_t kPort = 7;

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

Bytes frame_bytes(const net::Frame& f) { return Bytes(f.data, f.data + f.len); }

// A client (a) sending to a server (b) with SACK and timestamps, and a tap
// on the client's data segments that loses or delays chosen copies.
class RackPair {
 public:
  explicit RackPair(const TcpConfig& c = TcpPair::small_config()) : pair(c, c) {
    pair.add_tap([this](TcpPair::Side& from, net::Frame& f) { return on_frame(from, f); });
  }

  void open() {
    ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
    h = pair.a.tcp->connect(*pair.a.iface, pair.b.iface->config().address.address, kPort, &client,
                            pair.now_us);
    ASSERT_TRUE(h.valid());
    client.add(h);
    ASSERT_TRUE(run_until([&] { return client.conns[0].connected && !server.conns.empty(); }));
    hb = server.conns[0].handle;
    const std::string d = pair.a.tcp->describe(h);
    ASSERT_NE(d.find("sack=true"), std::string::npos) << d;
  }

  // The pair's run_until, with delayed frames handed over when due.
  template <typename Pred>
  bool run_until(Pred&& done, uint64_t max_us = 30'000'000) {
    const uint64_t end = pair.now_us + max_us;
    while (pair.now_us < end) {
      deliver_due();
      if (done()) return true;
      pair.step();
    }
    return done();
  }

  // Sends data from the client; true once the server has all of it.
  bool transfer(const std::string& data, uint64_t max_us = 30'000'000) {
    size_t off = 0;
    const size_t before = server.conns[0].received.size();
    return run_until([&] {
      while (off < data.size()) {
        const uint32_t n = pair.a.tcp->send(h, reinterpret_cast<const uint8_t*>(data.data()) + off,
                                            static_cast<uint32_t>(std::min<size_t>(data.size() - off, 16384)));
        if (n == 0) break;
        off += n;
      }
      return server.conns[0].received.size() >= before + data.size();
    }, max_us);
  }
  bool received_intact(const std::string& data, size_t from = 0) const {
    return server.conns[0].received.substr(from) == data;
  }

  const net::tcp::TcpCounters& ca() const { return pair.a.tcp->counters(); }
  int64_t a_field(const char* key) const { return describe_field(pair.a.tcp->describe(h), key); }
  // Offset of a client data byte in the stream (0 = first byte after the SYN).
  uint32_t offset_of(uint32_t seq) const { return seq - (client_iss + 1); }

  // What to do with copies of the client's data segments covering an offset:
  // copies[n] says what happens to the n-th copy (0: the original).
  enum class Fate { pass, lose, delay };
  struct Rule {
    uint32_t offset;
    std::map<int, Fate> copies;
    uint64_t delay_us = 0;
    int seen = 0;
  };
  std::vector<Rule> rules;
  // The server's ACKs to lose: each acknowledging at least this offset, once.
  std::vector<uint32_t> lose_acks_covering;
  std::map<uint32_t, int> copies_sent;  // by offset of the segment's first byte

  TcpPair pair;
  RecordingApp server;
  RecordingApp client;
  ConnHandle h;
  ConnHandle hb;
  uint32_t client_iss = 0;

 private:
  struct Delayed {
    uint64_t due_us;
    Bytes frame;
  };

  bool on_frame(TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (!c) return true;
    if (&from == &pair.a && c->has(kFlagSyn)) client_iss = c->seq();
    if (&from == &pair.b && c->has(kFlagAck) && !c->has(kFlagSyn)) {
      for (auto it = lose_acks_covering.begin(); it != lose_acks_covering.end(); ++it) {
        if (net::tcp::seq_ge(c->ack(), client_iss + 1 + *it)) {
          lose_acks_covering.erase(it);
          return false;
        }
      }
      return true;
    }
    if (&from != &pair.a || c->payload.empty()) return true;
    const uint32_t off = offset_of(c->seq());
    ++copies_sent[off];
    for (Rule& r : rules) {
      if (off <= r.offset && r.offset < off + c->payload.size()) {
        auto fate = r.copies.find(r.seen++);
        if (fate == r.copies.end() || fate->second == Fate::pass) return true;
        if (fate->second == Fate::delay) delayed_.push_back(Delayed{pair.now_us + r.delay_us, frame_bytes(f)});
        return false;
      }
    }
    return true;
  }

  void deliver_due() {
    for (auto it = delayed_.begin(); it != delayed_.end();) {
      if (it->due_us <= pair.now_us) {
        pair.inject(pair.b, it->frame);
        it = delayed_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::vector<Delayed> delayed_;
};

// RFC 8985 6.2: a lost retransmission is found the way the original was,
// by a later segment's SACK and time, not by the retransmission timer (RFC
// 6675 cannot find it: the SACKed bytes above it were already counted).
TEST(TcpRack, LostRetransmissionIsRepairedWithoutTimeout) {
  RackPair r;
  r.rules.push_back({40'000, {{0, RackPair::Fate::lose}, {1, RackPair::Fate::lose}}});
  r.open();
  const std::string data = pattern(300'000, 1);
  ASSERT_TRUE(r.transfer(data)) << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.received_intact(data));
  EXPECT_EQ(r.rules[0].seen, 3) << "original, lost retransmission, its repair";
  EXPECT_EQ(r.ca().rto_expirations.get(), 0u);
  EXPECT_GE(r.ca().rack_detected_lost.get(), 2u);
  EXPECT_EQ(r.ca().fast_retransmits.get(), 1u) << "one recovery";
}

// RFC 8985 7: the last segments of a transfer are lost; nothing follows them
// to be SACKed. The probe timeout (2 SRTT here, far below the 200 ms RTO)
// resends the last one, its SACK shows the other missing, and RACK repairs
// it.
TEST(TcpRack, TailLossIsRepairedByAProbeWithoutTimeout) {
  RackPair r;
  const std::string data = pattern(20'000, 2);
  // With timestamps a segment holds 1448 bytes: the last two start at
  // 13 * 1448 and 12 * 1448.
  r.rules.push_back({12 * 1448, {{0, RackPair::Fate::lose}}});
  r.rules.push_back({13 * 1448, {{0, RackPair::Fate::lose}}});
  r.open();
  ASSERT_TRUE(r.transfer(data)) << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.received_intact(data));
  EXPECT_EQ(r.ca().rto_expirations.get(), 0u);
  EXPECT_EQ(r.ca().tlp_probes.get(), 1u);
  EXPECT_EQ(r.ca().retransmitted_segments.get(), 2u);
}

// The probe itself is lost: a second one (twice the timeout later, still
// far below the RTO) resends the tail again, instead of leaving the repair
// to the retransmission timer.
TEST(TcpRack, ASecondProbeFollowsALostFirstOne) {
  RackPair r;
  const std::string data = pattern(20'000, 12);
  r.rules.push_back({12 * 1448, {{0, RackPair::Fate::lose}}});
  r.rules.push_back({13 * 1448, {{0, RackPair::Fate::lose}, {1, RackPair::Fate::lose}}});
  r.open();
  ASSERT_TRUE(r.transfer(data)) << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.received_intact(data));
  EXPECT_EQ(r.rules[1].seen, 3) << "original, first probe, second probe";
  EXPECT_EQ(r.ca().tlp_probes.get(), 2u);
  EXPECT_EQ(r.ca().rto_expirations.get(), 0u);
}

// A lone lost tail segment: its ACK could be a delayed one, so the probe
// waits the receiver's delayed-ACK time on top (RFC 8985 7.2 WCDelAckT,
// configured here to the 40 ms the peer stack delays by) and still beats
// the 200 ms RTO; the probe repaired a loss, which counts as one.
TEST(TcpRack, LoneTailSegmentIsProbedAfterTheDelayedAckTime) {
  TcpConfig c = TcpPair::small_config();
  c.tlp_max_ack_delay_us = c.delayed_ack_us;
  RackPair r(c);
  // Eleven segments: the receiver ACKs the first ten at once (every second
  // one), so the lost eleventh is alone in flight.
  const std::string data = pattern(11 * 1448, 3);
  r.rules.push_back({10 * 1448, {{0, RackPair::Fate::lose}}});
  r.open();
  const uint64_t start = r.pair.now_us;
  ASSERT_TRUE(r.transfer(data)) << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.received_intact(data));
  // The probe's own ACK is a delayed one too.
  ASSERT_TRUE(r.run_until([&] { return r.a_field("flight") == 0; }, 1'000'000));
  EXPECT_EQ(r.ca().rto_expirations.get(), 0u);
  EXPECT_EQ(r.ca().tlp_probes.get(), 1u);
  EXPECT_EQ(r.ca().tlp_recoveries.get(), 1u);
  EXPECT_GE(r.pair.now_us - start, c.delayed_ack_us);
}

// A recovery whose last ACK is lost while nothing else is in flight: the
// ACK clock stops. The probe timeout also runs in recovery and resends the
// highest segment not SACKed; its ACK ends the recovery (no RTO).
TEST(TcpRack, RecoveryWhoseLastAckIsLostEndsWithAProbe) {
  RackPair r;
  const std::string data = pattern(60'000, 4);
  // A segment four from the end: its repair is the last thing ACKed.
  r.rules.push_back({55'000, {{0, RackPair::Fate::lose}}});
  r.lose_acks_covering.push_back(static_cast<uint32_t>(data.size()));
  r.open();
  ASSERT_TRUE(r.transfer(data)) << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.received_intact(data));
  ASSERT_TRUE(r.lose_acks_covering.empty()) << "the final ACK was not lost";
  ASSERT_TRUE(r.run_until([&] { return r.a_field("flight") == 0; }, 1'000'000));
  EXPECT_EQ(r.ca().rto_expirations.get(), 0u);
  EXPECT_GE(r.ca().tlp_probes.get(), 1u);
  EXPECT_NE(r.pair.a.tcp->describe(r.h).find("recovery=false"), std::string::npos);
}

// RFC 8985 6.2 step 4 with RFC 2883: over a path with 4 ms of RTT a
// segment overtaken by 1 ms is first taken for lost (the window starts at
// zero with three segments SACKed); the receiver's D-SACK for the needless
// retransmission widens the window to 2 * min_RTT / 4 = 2 ms, and the same
// reordering later causes no retransmission.
TEST(TcpRack, ReorderingWithinTheWindowIsNotRetransmittedOnceDsackWidenedIt) {
  RackPair r;
  dataplane::FaultSpec link;
  link.delay_us = 2'000;
  r.pair.set_faults(r.pair.a, link, 41);
  r.pair.set_faults(r.pair.b, link, 42);
  // Taken off the link and handed to the server 3 ms later: 1 ms after the
  // segments sent after it.
  r.rules.push_back({100'000, {{0, RackPair::Fate::delay}}, 3'000});
  r.open();
  const std::string first = pattern(300'000, 5);
  ASSERT_TRUE(r.transfer(first)) << r.pair.a.tcp->describe(r.h);
  ASSERT_TRUE(r.received_intact(first));
  EXPECT_GE(r.ca().retransmitted_segments.get(), 1u) << "the first reordering looks like a loss";
  EXPECT_GE(r.ca().dsack_received.get(), 1u);
  EXPECT_GE(r.pair.b.tcp->counters().dsack_sent.get(), 1u);
  EXPECT_GE(r.a_field("reo_mult"), 2);
  const uint64_t retransmitted = r.ca().retransmitted_segments.get();

  r.rules.push_back({500'000, {{0, RackPair::Fate::delay}}, 3'000});
  const std::string second = pattern(300'000, 6);
  ASSERT_TRUE(r.transfer(second)) << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.received_intact(second, first.size()));
  EXPECT_EQ(r.rules[1].seen, 1) << "the delayed segment went out once";
  EXPECT_EQ(r.ca().retransmitted_segments.get(), retransmitted);
  EXPECT_EQ(r.ca().rto_expirations.get(), 0u);
}

// Both directions start just below 2^32: a segment straddling the wrap is
// lost twice (original and retransmission), another after it once; RACK's
// log and its comparisons work modulo 2^32.
TEST(TcpRack, LossesAndALostRetransmissionAcrossTheWrap) {
  TcpConfig c = TcpPair::small_config();
  c.fixed_isn = 0xffffffffu - 30'000;
  RackPair r(c);
  r.rules.push_back({29'999, {{0, RackPair::Fate::lose}, {1, RackPair::Fate::lose}}});
  r.rules.push_back({29'999 + 4 * 1448, {{0, RackPair::Fate::lose}}});
  r.open();
  const std::string data = pattern(300'000, 7);
  ASSERT_TRUE(r.transfer(data)) << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.received_intact(data));
  EXPECT_EQ(r.rules[0].seen, 3);
  EXPECT_EQ(r.rules[1].seen, 2);
  EXPECT_EQ(r.ca().rto_expirations.get(), 0u);
  EXPECT_GE(r.ca().rack_detected_lost.get(), 3u);
}

// RFC 2883: a segment that arrives twice is reported in the first SACK
// block of the next ACK, and the sender counts it.
TEST(TcpRack, ReceiverReportsADuplicateSegmentWithDsack) {
  RackPair r;
  r.open();
  const std::string data = pattern(30'000, 8);
  std::vector<Bytes> copies;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (&from == &r.pair.a && c && !c->payload.empty() && r.offset_of(c->seq()) == 2 * 1448 &&
        copies.empty()) {
      copies.push_back(frame_bytes(f));
    }
    return true;
  });
  ASSERT_TRUE(r.transfer(data));
  ASSERT_EQ(copies.size(), 1u);
  std::vector<TcpCapture> acks;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (&from == &r.pair.b && c) acks.push_back(*c);
    return true;
  });
  r.pair.inject(r.pair.b, copies[0]);
  r.pair.step();
  const auto dsack = std::find_if(acks.begin(), acks.end(), [&](const TcpCapture& c) {
    const auto& o = c.seg.options;
    return o.sack_count >= 1 && o.sack[0].left == r.client_iss + 1 + 2 * 1448 &&
           o.sack[0].right == r.client_iss + 1 + 3 * 1448;
  });
  EXPECT_NE(dsack, acks.end()) << "no ACK reported the duplicate";
  EXPECT_EQ(r.pair.b.tcp->counters().dsack_sent.get(), 1u);
  EXPECT_EQ(r.ca().dsack_received.get(), 1u);
  EXPECT_EQ(r.ca().retransmitted_segments.get(), 0u);
}

// The counters are exported with the others (telemetry, stats, exit report).
TEST(TcpRack, CountersAreExported) {
  std::vector<std::string> names;
  net::tcp::for_each_counter(net::tcp::TcpCounters{}, [&](const char* name, uint64_t) { names.emplace_back(name); });
  for (const char* wanted : {"tcp_tlp_probes", "tcp_tlp_recoveries", "tcp_rack_detected_lost",
                             "tcp_dsack_received", "tcp_dsack_sent"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), wanted), names.end()) << wanted;
  }
}

// --- ACKs the sender must not miss ----------------------------------------------------

// A peer (played by the test) without window scaling, so that our window
// is the 16-bit field and its right edge is known.
class PeerAcks : public ::testing::Test {
 protected:
  void SetUp() override {
    h = pair.a.tcp->connect(*pair.a.iface, peer.ip(), 443, &client, pair.now_us);
    client.add(h);
    auto out = peer.take();
    ASSERT_EQ(out.size(), 1u);
    iss = out[0].seq();
    seg.src_port = 443;
    seg.dst_port = out[0].seg.src_port;
    seg.seq = kPeerIss;
    seg.ack = iss + 1;
    seg.flags = kFlagSyn | kFlagAck;
    seg.options.mss = 1460;
    seg.options.sack_permitted = true;
    peer.send(seg);
    peer.take();
    seg.seq = kPeerIss + 1;
    seg.flags = kFlagAck;
    seg.options = TcpOptionSpec{};
  }
  uint64_t out_of_window() const {
    return pair.a.counters.dropped(net::DropReason::tcp_out_of_window);
  }

  static constexpr uint32_t kPeerIss = 9000;
  TcpPair pair;
  ScriptedPeer peer{pair, pair.a, ip(198, 18, 0, 9)};
  RecordingApp client;
  ConnHandle h;
  uint32_t iss = 0;
  TcpSegmentFields seg;
};

// A zero-length segment whose SEG.SEQ is the right edge of our window (the
// peer's data filled the window and was lost; its ACKs carry its SND.NXT)
// is acceptable and its ACK is processed.
TEST_F(PeerAcks, AckAtTheRightEdgeOfTheWindowIsProcessed) {
  const std::string data = pattern(3000, 9);
  ASSERT_EQ(pair.a.tcp->send(h, reinterpret_cast<const uint8_t*>(data.data()), 3000), 3000u);
  pair.step();
  ASSERT_EQ(peer.take().size(), 3u);
  const int64_t window = describe_field(pair.a.tcp->describe(h), "rcv_adv") -
                         describe_field(pair.a.tcp->describe(h), "rcv_nxt");
  ASSERT_GT(window, 0);
  seg.seq = kPeerIss + 1 + static_cast<uint32_t>(window);
  seg.ack = iss + 1 + 3000;
  peer.send(seg);
  EXPECT_EQ(describe_field(pair.a.tcp->describe(h), "flight"), 0) << pair.a.tcp->describe(h);
  EXPECT_EQ(out_of_window(), 0u);
  // One past the edge is still out of the window.
  seg.seq += 1;
  peer.send(seg);
  EXPECT_EQ(out_of_window(), 1u);
}

// Old data that reaches the last ACK we sent (the peer's tail loss probe,
// or a copy that overtook our delayed ACK) carries an ACK we need: it is
// processed, and the duplicate text is reported with a D-SACK.
TEST_F(PeerAcks, OldDataReachingOurLastAckCarriesItsAck) {
  TcpSegmentFields data_seg = seg;
  data_seg.payload = Bytes(1000, 0x5a);
  peer.send(data_seg);
  pair.run_for(100'000);  // our delayed ACK of it goes out
  auto out = peer.take();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().ack(), kPeerIss + 1 + 1000);
  const std::string data = pattern(3000, 10);
  ASSERT_EQ(pair.a.tcp->send(h, reinterpret_cast<const uint8_t*>(data.data()), 3000), 3000u);
  pair.step();
  ASSERT_EQ(peer.take().size(), 3u);
  // The same 1000 bytes again, now acknowledging our data.
  data_seg.ack = iss + 1 + 3000;
  peer.send(data_seg);
  EXPECT_EQ(describe_field(pair.a.tcp->describe(h), "flight"), 0) << pair.a.tcp->describe(h);
  out = peer.take();
  ASSERT_FALSE(out.empty());
  const auto& o = out.back().seg.options;
  ASSERT_GE(o.sack_count, 1u);
  EXPECT_EQ(o.sack[0].left, kPeerIss + 1);
  EXPECT_EQ(o.sack[0].right, kPeerIss + 1 + 1000);
  EXPECT_EQ(client.conns[0].received.size(), 1000u) << "the text is not taken twice";
}

// An ACK that advances SND.UNA updates the send window even when its
// SEG.SEQ is older than the segment that last did: the window is an offset
// from that ACK, and SND.UNA + SND.WND must not pass the peer's right edge.
TEST_F(PeerAcks, AckOnOldDataUpdatesTheWindowItIsRelativeTo) {
  TcpSegmentFields data_seg = seg;
  data_seg.payload = Bytes(1000, 0x5a);
  peer.send(data_seg);
  pair.run_for(100'000);
  peer.take();
  // A window update from later in the peer's sequence space.
  seg.seq = kPeerIss + 1 + 1000;
  seg.window = 8000;
  peer.send(seg);
  // 12000 bytes to send, 8000 offered: five full segments go (the rest
  // waits, too small for sender SWS avoidance).
  const std::string data = pattern(12'000, 11);
  ASSERT_EQ(pair.a.tcp->send(h, reinterpret_cast<const uint8_t*>(data.data()), 12'000), 12'000u);
  pair.step();
  ASSERT_EQ(peer.take().size(), 5u);
  // The old segment again, acknowledging 4000 bytes and offering 1000
  // more: the right edge is 5000 (less than what is already out), not
  // 4000 + 8000.
  data_seg.ack = iss + 1 + 4000;
  data_seg.window = 1000;
  peer.send(data_seg);
  EXPECT_EQ(describe_field(pair.a.tcp->describe(h), "wnd"), 1000) << pair.a.tcp->describe(h);
  pair.step();
  for (const auto& c : peer.take()) {
    if (!c.payload.empty()) {
      EXPECT_LE(c.seq() + c.payload.size(), iss + 1 + 5000u) << "sent past the peer's window";
    }
  }
}

// RFC 7323 5.3 with Linux's one-tick PAWS window: data whose TSval is one
// tick older than TS.Recent (reordered across a tick of the peer's clock)
// is accepted; two ticks older is dropped and ACKed.
TEST(TcpPaws, OneTickOlderIsReorderingTwoTicksOlderIsDropped) {
  TcpPair pair;
  ScriptedPeer peer(pair, pair.a, ip(198, 18, 0, 9));
  RecordingApp client;
  const ConnHandle h = pair.a.tcp->connect(*pair.a.iface, peer.ip(), 443, &client, pair.now_us);
  client.add(h);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  TcpSegmentFields seg;
  seg.src_port = 443;
  seg.dst_port = out[0].seg.src_port;
  seg.seq = 9000;
  seg.ack = out[0].seq() + 1;
  seg.flags = kFlagSyn | kFlagAck;
  seg.options.mss = 1460;
  seg.options.timestamps = true;
  seg.options.ts_value = 1000;
  seg.options.ts_echo = out[0].seg.options.ts_value;
  peer.send(seg);
  ASSERT_NE(pair.a.tcp->describe(h).find("ts=true"), std::string::npos);
  peer.take();
  seg.flags = kFlagAck;
  seg.options.mss = 0;
  auto data = [&](uint32_t seq, uint32_t ts) {
    seg.seq = seq;
    seg.options.ts_value = ts;
    seg.payload = Bytes(100, 0x33);
    peer.send(seg);
  };
  data(9001, 1002);  // TS.Recent becomes 1002
  data(9101, 1001);  // one tick older: accepted
  EXPECT_EQ(client.conns[0].received.size(), 200u);
  data(9201, 1000);  // two ticks older: dropped
  EXPECT_EQ(client.conns[0].received.size(), 200u);
  EXPECT_EQ(pair.a.counters.dropped(net::DropReason::tcp_paws), 1u);
}

}  // namespace
}  // namespace mtlsgw::testing
