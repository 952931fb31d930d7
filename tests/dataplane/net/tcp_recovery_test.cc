// Loss, recovery and flow control between two real stacks
// (tests/support/tcp_pair.h): the retransmission timer and its backoff (RFC
// 6298), fast retransmit and fast recovery with and without SACK (RFC 5681,
// 6582, 6675) under NewReno and CUBIC (RFC 9438), zero windows and probes
// (RFC 9293 3.8.6.1), window scaling (RFC 7323 2) and sequence numbers that
// wrap around 2^32 (RFC 9293 3.4). Losses are chosen precisely with taps on
// the link, or thrown by the seeded FaultInjector.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "dataplane/net/tcp_seq.h"
#include "dataplane/net/tcp_stack.h"
#include "tcp_pair.h"
#include "tcp_steps.h"

namespace mtlsgw::testing {
namespace {

using net::tcp::CloseReason;
using net::tcp::CongestionAlgorithm;
using net::tcp::ConnHandle;
using net::tcp::kFlagAck;
using net::tcp::kFlagRst;
using net::tcp::kFlagSyn;
using net::tcp::seq_lt;
using net::tcp::State;
using net::tcp::TcpConfig;

constexpr uint16_t kPort = 7;
constexpr uint8_t kOptSackPermitted = 4;
constexpr uint8_t kOptTimestamps = 8;

// A pair with a client (a) and a server (b) and the means to send bulk data
// and to lose chosen segments.
class Recovery {
 public:
  explicit Recovery(const TcpConfig& a = TcpPair::small_config(), const TcpConfig& b = TcpPair::small_config())
      : pair(a, b) {}

  // Takes the given options out of the client's SYN, so that neither side
  // uses them (the passive side only answers what was offered).
  void strip_from_syn(std::initializer_list<uint8_t> kinds) {
    std::vector<uint8_t> k(kinds);
    pair.add_tap([this, k](TcpPair::Side& from, net::Frame& f) {
      auto c = parse_tcp_frame(f);
      if (c && &from == &pair.a && c->has(kFlagSyn)) {
        for (uint8_t kind : k) strip_tcp_options(f, {kind});
      }
      return true;
    });
  }

  void open() {
    h = listen_and_connect(pair, kPort, server, client);
    ASSERT_TRUE(h.valid());
    ASSERT_TRUE(pair.run_until([&] { return client.conns[0].connected && !server.conns.empty(); }));
    hb = server.conns[0].handle;
  }

  // Queues data on the client as the send buffer allows and runs until the
  // server has all of it (or max_us passes).
  bool transfer(const std::string& data, uint64_t max_us = 120'000'000, uint64_t dt_us = 50) {
    size_t off = 0;
    const size_t before = server.conns[0].received.size();
    return pair.run_until([&] {
      send_rest(*pair.a.tcp, h, data, off);
      return server.conns[0].received.size() >= before + data.size();
    }, max_us, dt_us);
  }

  // Keeps the client's send buffer fed from data for us of simulated time,
  // whatever becomes of what it sends.
  void keep_sending(const std::string& data, size_t& off, uint64_t us) {
    pair.run_until([&] {
      send_rest(*pair.a.tcp, h, data, off);
      return false;
    }, us);
  }

  // Sends data from the client to an echoing server and runs until all of
  // it is back (or max_us passes).
  bool echo(const std::string& data, uint64_t max_us) {
    size_t off = 0;
    return pair.run_until([&] {
      send_rest(*pair.a.tcp, h, data, off);
      return client.conns[0].received.size() >= data.size();
    }, max_us);
  }

  int64_t a_field(const char* key) const { return describe_field(pair.a.tcp->describe(h), key); }

  TcpPair pair;
  RecordingApp server;
  RecordingApp client;
  ConnHandle h;
  ConnHandle hb;
};

// Records the client's data segments, and loses those a rule picks (each
// sequence number at most once, so the retransmission gets through).
struct DataLoss {
  uint32_t iss = 0;  // the client's, from its SYN
  std::vector<uint32_t> drop_offsets;  // lose the first segment covering each offset from ISS+1
  std::vector<uint32_t> dropped_seqs;
  uint32_t data_segments = 0;

  void install(Recovery& r) {
    r.pair.add_tap([this, &r](TcpPair::Side& from, net::Frame& f) {
      auto c = parse_tcp_frame(f);
      if (!c || &from != &r.pair.a) return true;
      if (c->has(kFlagSyn)) {
        iss = c->seq();
        return true;
      }
      if (c->payload.empty()) return true;
      ++data_segments;
      const uint32_t off = c->seq() - (iss + 1);
      for (auto it = drop_offsets.begin(); it != drop_offsets.end(); ++it) {
        if (off <= *it && *it < off + c->payload.size()) {
          dropped_seqs.push_back(c->seq());
          drop_offsets.erase(it);
          return false;
        }
      }
      return true;
    });
  }
};

// --- the retransmission timer ---------------------------------------------------

// RFC 6298 5.4-5.6: on each expiry retransmit the earliest unacknowledged
// segment and double the RTO. A blackout of the client's direction makes the
// retransmissions of one segment come at RTO, 2 RTO, 4 RTO...; when the
// link comes back the data arrives intact and the RTO collapses again with
// the next sample (note after 5.7).
TEST(TcpRecovery, RtoBacksOffDuringABlackoutAndRecoversAfterIt) {
  Recovery r;
  r.open();
  ASSERT_TRUE(r.transfer(pattern(20'000, 1)));
  r.pair.run_for(100'000);  // the last delayed ACK, so that no ACK restarts the timer below
  std::vector<uint64_t> times;
  uint32_t first_seq = 0;
  bool blackout = true;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (!c || &from != &r.pair.a || c->payload.empty()) return true;
    if (times.empty()) first_seq = c->seq();
    if (c->seq() == first_seq) times.push_back(r.pair.now_us);
    return !blackout;
  });
  const std::string data = pattern(30'000, 2);
  size_t off = 0;
  off += r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>(data.data()), static_cast<uint32_t>(data.size()));
  ASSERT_EQ(off, data.size());
  r.pair.run_for(7'000'000);
  ASSERT_GE(times.size(), 5u);
  EXPECT_EQ(r.a_field("cwnd"), r.a_field("smss")) << "loss window after RTO (RFC 5681 3.1)";
  const uint64_t min_rto = r.pair.a.tcp->config().min_rto_us;
  EXPECT_GE(times[1] - times[0], min_rto);
  for (size_t i = 2; i < times.size(); ++i) {
    const double ratio = double(times[i] - times[i - 1]) / double(times[i - 1] - times[i - 2]);
    EXPECT_NEAR(ratio, 2.0, 0.05) << "retransmission " << i;
  }
  EXPECT_EQ(r.pair.a.tcp->counters().rto_expirations.get(), times.size() - 1);
  blackout = false;
  const size_t before = r.server.conns[0].received.size();
  ASSERT_TRUE(r.pair.run_until([&] { return r.server.conns[0].received.size() >= before + data.size(); },
                               60'000'000));
  EXPECT_TRUE(r.server.conns[0].received.substr(before) == data);
  EXPECT_EQ(r.pair.a.tcp->state(r.h), State::established);
  // A fresh sample after recovery: the backoff is gone.
  ASSERT_TRUE(r.transfer(pattern(20'000, 3)));
  EXPECT_LT(r.a_field("rto"), 2 * static_cast<int64_t>(min_rto));
}

// A blackout of the other direction (every ACK lost): the sender times out
// and retransmits all the same; when ACKs flow again the transfer finishes.
TEST(TcpRecovery, AckBlackoutRecovers) {
  Recovery r;
  r.open();
  bool blackout = true;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame&) { return !(blackout && &from == &r.pair.b); });
  const std::string data = pattern(200'000, 4);
  size_t off = 0;
  r.keep_sending(data, off, 5'000'000);
  EXPECT_GE(r.pair.a.tcp->counters().rto_expirations.get(), 3u);
  blackout = false;
  ASSERT_TRUE(r.pair.run_until([&] {
    send_rest(*r.pair.a.tcp, r.h, data, off);
    return r.server.conns[0].received.size() >= data.size();
  }, 60'000'000));
  EXPECT_TRUE(r.server.conns[0].received == data);
}

// R2 (RFC 9293 3.8.3): after max_retries expiries the connection is given
// up, the peer is told with a RST, and the application with timed_out.
TEST(TcpRecovery, GivesUpAfterR2Retransmissions) {
  TcpConfig c = TcpPair::small_config();
  c.max_retries = 4;
  Recovery r(c, c);
  r.open();
  bool blackout = true;
  bool rst_sent = false;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto s = parse_tcp_frame(f);
    if (s && &from == &r.pair.a && s->has(kFlagRst)) rst_sent = true;
    return !(blackout && &from == &r.pair.a);
  });
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>("doomed"), 6), 6u);
  ASSERT_TRUE(r.pair.run_until([&] { return r.client.conns[0].closed; }, 60'000'000, 1'000));
  r.pair.step();  // the RST is still in the outbox
  EXPECT_EQ(r.client.conns[0].reason, CloseReason::timed_out);
  EXPECT_EQ(r.pair.a.tcp->counters().rto_expirations.get(), 5u);
  EXPECT_TRUE(rst_sent);
  EXPECT_EQ(r.pair.a.tcp->connections(), 0u);
}

// RFC 6298 3 (Karn): "RTT samples MUST NOT be made using segments that were
// retransmitted". Without timestamps, a SYN lost once and retransmitted
// after the 1 s initial RTO must not give a 1 s RTT sample when the SYN,ACK
// comes back; RFC 6298 5.7 then asks for an RTO of 3 s, not for an SRTT of
// 1 s that takes many segments to forget.
TEST(TcpRecovery, KarnNoRttSampleFromARetransmittedSyn) {
  Recovery r;
  r.strip_from_syn({kOptTimestamps});
  bool first = true;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (c && &from == &r.pair.a && c->has(kFlagSyn) && first) {
      first = false;
      return false;
    }
    return true;
  });
  r.open();
  ASSERT_NE(r.pair.a.tcp->describe(r.h).find("ts=false"), std::string::npos);
  // The link's RTT is well under a millisecond.
  EXPECT_LT(r.a_field("srtt"), 100'000) << r.pair.a.tcp->describe(r.h);
}

// --- fast retransmit and fast recovery -------------------------------------------

struct FastCase {
  CongestionAlgorithm cc;
  bool sack;
  bool timestamps;
};
std::string case_name(const ::testing::TestParamInfo<FastCase>& info) {
  return std::string(info.param.cc == CongestionAlgorithm::cubic ? "Cubic" : "NewReno") +
         (info.param.sack ? "Sack" : "NoSack") + (info.param.timestamps ? "Ts" : "NoTs");
}

class TcpFastRecovery : public ::testing::TestWithParam<FastCase> {
 protected:
  static TcpConfig config() {
    TcpConfig c = TcpPair::small_config();
    c.congestion = GetParam().cc;
    return c;
  }
  void SetUp() override {
    if (!GetParam().sack) r.strip_from_syn({kOptSackPermitted});
    if (!GetParam().timestamps) r.strip_from_syn({kOptTimestamps});
    loss.install(r);
    r.open();
    const std::string d = r.pair.a.tcp->describe(r.h);
    ASSERT_NE(d.find(GetParam().sack ? "sack=true" : "sack=false"), std::string::npos) << d;
    ASSERT_NE(d.find(GetParam().timestamps ? "ts=true" : "ts=false"), std::string::npos) << d;
  }
  Recovery r{config(), config()};
  DataLoss loss;
};

// RFC 5681 3.2: one lost segment is repaired by fast retransmit on the third
// duplicate ACK, without waiting for the timer, and only that segment is
// sent again.
TEST_P(TcpFastRecovery, OneLossIsRepairedByFastRetransmit) {
  loss.drop_offsets = {40'000};
  const std::string data = pattern(300'000, 5);
  ASSERT_TRUE(r.transfer(data, 30'000'000));
  EXPECT_TRUE(r.server.conns[0].received == data);
  EXPECT_EQ(loss.dropped_seqs.size(), 1u);
  const auto& c = r.pair.a.tcp->counters();
  EXPECT_EQ(c.rto_expirations.get(), 0u);
  EXPECT_EQ(c.fast_retransmits.get(), 1u);
  EXPECT_EQ(c.retransmitted_segments.get(), 1u);
}

// Two losses in one window: NewReno's partial ACK (RFC 6582 3.2 step 5) or
// the SACK scoreboard (RFC 6675) repairs the second hole in the same
// recovery, without a timeout.
TEST_P(TcpFastRecovery, TwoLossesInOneWindowNeedNoTimeout) {
  loss.drop_offsets = {40'000, 40'000 + 5 * 1460};
  const std::string data = pattern(300'000, 6);
  ASSERT_TRUE(r.transfer(data, 30'000'000));
  EXPECT_TRUE(r.server.conns[0].received == data);
  EXPECT_EQ(loss.dropped_seqs.size(), 2u);
  const auto& c = r.pair.a.tcp->counters();
  EXPECT_EQ(c.rto_expirations.get(), 0u);
  EXPECT_EQ(c.retransmitted_segments.get(), 2u);
}

// Three losses spread over one window of a path with a real round trip
// (2 ms each way, so that a full window is in flight): with SACK all three
// are repaired in one recovery episode (RFC 6675); NewReno repairs one hole
// per partial ACK (RFC 6582 3.2 step 5); neither needs the timer.
TEST_P(TcpFastRecovery, ThreeLossesInOneWindowNeedNoTimeout) {
  dataplane::FaultSpec delay;
  delay.delay_us = 2'000;
  set_faults_both_ways(r.pair, delay, 51, 52);
  loss.drop_offsets = {100'000, 100'000 + 3 * 1448, 100'000 + 7 * 1448};
  const std::string data = pattern(400'000, 7);
  ASSERT_TRUE(r.transfer(data, 30'000'000));
  EXPECT_TRUE(r.server.conns[0].received == data);
  EXPECT_EQ(loss.dropped_seqs.size(), 3u);
  const auto& c = r.pair.a.tcp->counters();
  EXPECT_EQ(c.rto_expirations.get(), 0u);
  EXPECT_EQ(c.retransmitted_segments.get(), 3u);
  EXPECT_EQ(c.fast_retransmits.get(), GetParam().sack ? 1u : 3u);
}

// RFC 6675 5 (C): during SACK recovery, "cwnd - pipe" - not SND.NXT -
// SND.UNA - decides whether a segment may be sent, and NextSeg (rule 2)
// sends new data when no hole is yet deemed lost. After the first
// retransmission a partial ACK leaves a second hole with too few SACKed
// bytes above it to call it lost; new data must keep flowing so that the
// SACKs it brings back mark the hole lost, instead of waiting for the
// retransmission timer.
TEST_P(TcpFastRecovery, SackRecoveryClocksOutNewDataByPipe) {
  loss.drop_offsets = {60'000, 60'000 + 3 * 1460};
  const std::string data = pattern(300'000, 25);
  ASSERT_TRUE(r.transfer(data, 30'000'000));
  EXPECT_TRUE(r.server.conns[0].received == data);
  EXPECT_EQ(loss.dropped_seqs.size(), 2u);
  const auto& c = r.pair.a.tcp->counters();
  EXPECT_EQ(c.rto_expirations.get(), 0u);
  EXPECT_EQ(c.retransmitted_segments.get(), 2u);
}

// A lost retransmission: without SACK only the timer can repair it (RFC
// 6582 falls back on it); with SACK, RACK finds it lost like any other
// segment once later ones are SACKed (RFC 8985 6.2). Either way the transfer
// completes intact.
TEST_P(TcpFastRecovery, LostRetransmissionFallsBackOnTheTimer) {
  loss.drop_offsets = {40'000};
  bool dropped_again = false;
  int copies = 0;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (!c || &from != &r.pair.a || loss.dropped_seqs.empty() || dropped_again) return true;
    // The first copy is the one DataLoss drops; the second, the fast
    // retransmission, is lost too.
    if (c->seq() == loss.dropped_seqs[0] && !c->payload.empty() && ++copies == 2) {
      dropped_again = true;
      return false;
    }
    return true;
  });
  const std::string data = pattern(300'000, 8);
  ASSERT_TRUE(r.transfer(data, 30'000'000));
  EXPECT_TRUE(dropped_again);
  EXPECT_TRUE(r.server.conns[0].received == data);
  if (GetParam().sack) {
    EXPECT_EQ(r.pair.a.tcp->counters().rto_expirations.get(), 0u);
  } else {
    EXPECT_GE(r.pair.a.tcp->counters().rto_expirations.get(), 1u);
  }
}

// Random loss, reordering and duplication both ways: byte-exact.
TEST_P(TcpFastRecovery, RandomFaultsBothWaysByteExact) {
  set_faults_both_ways(r.pair, lossy_link(0.02, 0.02, 0.01), 21, 22);
  const std::string data = pattern(1'000'000, 9);
  ASSERT_TRUE(r.transfer(data, 300'000'000));
  EXPECT_TRUE(r.server.conns[0].received == data);
  EXPECT_GT(r.pair.a.tcp->counters().fast_retransmits.get(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    All, TcpFastRecovery,
    ::testing::Values(FastCase{CongestionAlgorithm::newreno, true, true},
                      FastCase{CongestionAlgorithm::newreno, false, true},
                      FastCase{CongestionAlgorithm::newreno, false, false},
                      FastCase{CongestionAlgorithm::cubic, true, true},
                      FastCase{CongestionAlgorithm::cubic, false, true},
                      FastCase{CongestionAlgorithm::cubic, true, false}),
    case_name);

// RFC 6675 5 step 4.2 / RFC 5681 3.2: the window is reduced once per
// recovery, to ssthresh = FlightSize * beta (NewReno: 1/2), and with SACK
// cwnd is ssthresh during recovery: the pipe estimate replaces the
// artificial inflation of RFC 5681 3.2 step 3.
TEST(TcpRecovery, SackRecoveryUsesCwndEqualToSsthresh) {
  TcpConfig c = TcpPair::small_config();
  c.congestion = CongestionAlgorithm::newreno;
  Recovery r(c, c);
  DataLoss loss;
  loss.install(r);
  r.open();
  loss.drop_offsets = {40'000};
  int64_t cwnd_in_recovery = -1;
  int64_t ssthresh_in_recovery = -1;
  r.pair.add_tap([&](TcpPair::Side&, net::Frame&) {
    if (cwnd_in_recovery < 0 && r.pair.a.tcp->describe(r.h).find("recovery=true") != std::string::npos) {
      cwnd_in_recovery = r.a_field("cwnd");
      ssthresh_in_recovery = r.a_field("ssthresh");
    }
    return true;
  });
  ASSERT_TRUE(r.transfer(pattern(300'000, 10), 30'000'000));
  ASSERT_GE(cwnd_in_recovery, 0);
  EXPECT_EQ(cwnd_in_recovery, ssthresh_in_recovery);
}

// --- flow control: zero windows and probes ---------------------------------------

// The receiver stops reading: its window closes, the sender probes it
// (RFC 9293 3.8.6.1) with backoff, for as long as the receiver answers -
// never giving up on a zero window - and when the receiver reads again the
// transfer resumes and completes intact.
TEST(TcpRecovery, ZeroWindowIsProbedIndefinitelyThenResumes) {
  Recovery r;
  r.server.auto_read = false;
  r.open();
  std::vector<uint64_t> probe_times;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (c && &from == &r.pair.a && c->payload.empty() && !c->has(kFlagSyn) &&
        r.pair.a.tcp->counters().zero_window_probes.get() > probe_times.size()) {
      probe_times.push_back(r.pair.now_us);
    }
    return true;
  });
  const std::string data = pattern(200'000, 11);
  size_t off = 0;
  auto feed = [&] { send_rest(*r.pair.a.tcp, r.h, data, off); };
  r.keep_sending(data, off, 10'000'000);
  // The buffer fills up to the window the receiver could express: the
  // window field loses the low bits to the scale shift (RFC 7323 2.3) and the
  // SYN's window is capped at 65535, so a byte or two may stay unused.
  const uint32_t held = r.pair.b.tcp->readable(r.hb);
  EXPECT_GE(held, r.pair.b.tcp->config().buffer_size - 2);
  EXPECT_LE(held, r.pair.b.tcp->config().buffer_size);
  EXPECT_GE(probe_times.size(), 3u);
  for (size_t i = 2; i < probe_times.size(); ++i) {
    EXPECT_GE(probe_times[i] - probe_times[i - 1], probe_times[i - 1] - probe_times[i - 2]) << "probe " << i;
  }
  // Twenty minutes of a closed window: the connection stays.
  r.pair.run_for(1'200'000'000, 10'000);
  EXPECT_EQ(r.pair.a.tcp->state(r.h), State::established);
  EXPECT_EQ(r.pair.b.tcp->state(r.hb), State::established);
  EXPECT_GE(r.pair.a.tcp->counters().zero_window_probes.get(), 20u);
  // The reader comes back.
  std::string got;
  uint8_t buf[8192];
  ASSERT_TRUE(r.pair.run_until([&] {
    feed();
    for (uint32_t n; (n = r.pair.b.tcp->read(r.hb, buf, sizeof buf)) != 0;) got.append(reinterpret_cast<char*>(buf), n);
    return got.size() >= data.size();
  }, 120'000'000));
  EXPECT_TRUE(got == data);
}

// The window update that reopens a small window is lost. A small window
// (smaller than a segment and than half the largest window) is one sender
// SWS avoidance will not fill (RFC 9293 3.8.6.2.1), and nothing is in
// flight, so no ACK will come by itself: the sender's persist/override timer
// must find the open window.
TEST(TcpRecovery, LostWindowUpdateAfterASmallWindowDoesNotDeadlock) {
  Recovery r;
  r.server.auto_read = false;
  r.open();
  const std::string data = pattern(300'000, 12);
  size_t off = 0;
  auto feed = [&] { send_rest(*r.pair.a.tcp, r.h, data, off); };
  r.keep_sending(data, off, 2'000'000);
  std::string got;
  uint8_t buf[65536];
  auto drain = [&](uint32_t max) {
    for (uint32_t n; max != 0 && (n = r.pair.b.tcp->read(r.hb, buf, std::min<uint32_t>(max, sizeof buf))) != 0;) {
      got.append(reinterpret_cast<char*>(buf), n);
      max -= n;
    }
  };
  // Open 2000 bytes: one full segment goes, ~550 bytes of window are left,
  // which SWS avoidance does not fill at once.
  drain(2000);
  r.keep_sending(data, off, 100'000);
  const int64_t wnd = r.a_field("wnd");
  EXPECT_GT(wnd, 0);
  EXPECT_LT(wnd, r.a_field("smss"));
  EXPECT_EQ(r.a_field("flight"), 0);
  // Now read everything and lose the update that says so.
  int lost = 0;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame&) {
    if (&from == &r.pair.b && lost == 0) {
      ++lost;
      return false;
    }
    return true;
  });
  drain(UINT32_MAX);
  ASSERT_TRUE(r.pair.run_until([&] {
    feed();
    drain(UINT32_MAX);
    return got.size() >= data.size();
  }, 30'000'000)) << r.pair.a.tcp->describe(r.h);
  EXPECT_EQ(lost, 1);
  EXPECT_TRUE(got == data);
}

// RFC 6298 5.4: when the retransmission timer expires, "retransmit the
// earliest segment that has not been acknowledged". Sender SWS avoidance
// (RFC 9293 3.8.6.2.1) is about when to send new data; it must not hold back
// a retransmission. Here the peer's window is 1000 bytes (less than one
// segment, less than half its largest window); the stack sends those 1000
// bytes (the SWS override timer) and they are lost. The retransmission
// timer must send them again.
TEST(TcpRecovery, RtoRetransmitsEvenWhenTheWindowIsBelowOneSegment) {
  ScriptedReceiver r(TcpOptionSpec{.mss = 1460});
  ASSERT_TRUE(r.accepted);
  ASSERT_EQ(r.pair.a.tcp->state(r.h), State::established);
  const uint32_t iss = r.accepted->iss;
  TcpSegmentFields seg = r.accepted->next;
  seg.window = 1000;
  r.peer.send(seg);
  const std::string data = pattern(8000, 17);
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>(data.data()), 8000), 8000u);
  // Never acknowledged: every copy of the first 1000 bytes is "lost".
  std::vector<uint64_t> copies;
  for (int i = 0; i < 5000; ++i) {
    r.pair.step(1'000);
    for (const auto& c : r.peer.take()) {
      if (c.seq() == iss + 1 && c.payload.size() == 1000) copies.push_back(r.pair.now_us);
    }
  }
  ASSERT_GE(copies.size(), 1u) << "the 1000 bytes were never sent";
  EXPECT_GE(copies.size(), 3u) << "the timer expired (" << r.pair.a.tcp->counters().rto_expirations.get()
                               << " times) but nothing was retransmitted: " << r.pair.a.tcp->describe(r.h);
  // Every expiry sends: the first (the override) the original, each later
  // one a retransmission, at RTO, 2 RTO, 4 RTO... (RFC 6298 5.4-5.6).
  EXPECT_EQ(copies.size(), r.pair.a.tcp->counters().rto_expirations.get())
      << "expiries that retransmitted nothing: " << r.pair.a.tcp->describe(r.h);
  for (size_t i = 2; i < copies.size(); ++i) {
    const double ratio = double(copies[i] - copies[i - 1]) / double(copies[i - 1] - copies[i - 2]);
    EXPECT_NEAR(ratio, 2.0, 0.05) << "retransmission " << i;
  }
}

// RFC 9293 3.8.6.2.2 says a receiver SHOULD NOT shrink its window, but
// MUST-35 (3.8.6.1 and RFC 1122 4.2.2.16) makes the sender robust when one
// does: here a receiver acknowledges part of what is in flight and shrinks
// its window to zero. The sender must keep probing (retransmitting into the
// zero window, RFC 9293 3.8.6.1) and must not count an answered probe
// towards R2: the connection stays up for as long as the receiver answers,
// and resumes when the window opens.
TEST(TcpRecovery, WindowShrunkToZeroWithDataInFlightIsProbedNotTimedOut) {
  ScriptedReceiver r(TcpOptionSpec{.mss = 1000});
  ASSERT_TRUE(r.accepted);
  ASSERT_EQ(r.pair.a.tcp->state(r.h), State::established);
  const uint32_t iss = r.accepted->iss;
  TcpSegmentFields seg = r.accepted->next;
  const std::string data = pattern(8000, 13);
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>(data.data()), 8000), 8000u);
  r.pair.step();
  auto out = r.peer.take();
  ASSERT_GE(out.size(), 8u);  // 8 segments of 1000 bytes in the initial window
  // ACK the first segment only, and shrink the window to zero.
  seg.ack = iss + 1 + 1000;
  seg.window = 0;
  r.peer.send(seg);
  // Answer whatever comes with the same zero-window ACK, for 20 minutes.
  uint32_t sent_into_zero_window = 0;
  for (uint64_t t = 0; t < 1'200'000'000 && r.pair.a.tcp->state(r.h) == State::established; t += 10'000) {
    r.pair.step(10'000);
    for (const auto& c : r.peer.take()) {
      (void)c;
      ++sent_into_zero_window;
      r.peer.send(seg);
    }
  }
  EXPECT_EQ(r.pair.a.tcp->state(r.h), State::established)
      << "the connection was given up although every probe was answered";
  EXPECT_FALSE(r.client.conns[0].closed);
  EXPECT_GT(sent_into_zero_window, 5u) << "the shrunk window was never probed";
  // The window opens: everything else goes through.
  seg.window = 65535;
  r.peer.send(seg);
  std::string received = data.substr(0, 1000);
  uint32_t expect = iss + 1 + 1000;
  r.receive_in_order(seg, expect, received, data.size(), 2000);
  EXPECT_TRUE(received == data);
}

// --- window scaling (RFC 7323 2) ------------------------------------------------------

// Buffers from smaller than two segments to larger than 64 KiB: each side
// offers the shift that fits its buffer into 16 bits, never advertises more
// than its buffer holds, and the data goes through intact both ways.
class TcpWindowScale : public ::testing::TestWithParam<uint32_t> {};

TEST_P(TcpWindowScale, BufferSizeDeterminesTheShiftAndTransfersWork) {
  const uint32_t buffer = GetParam();
  TcpConfig c = TcpPair::small_config();
  c.buffer_size = buffer;
  c.buffer_pool = 8;
  Recovery r(c, c);
  r.server.echo = true;
  const uint8_t shift = net::tcp::window_shift_for(buffer);
  int bad_windows = 0;
  int syns = 0;
  r.pair.add_tap([&](TcpPair::Side&, net::Frame& f) {
    auto s = parse_tcp_frame(f);
    if (!s || s->has(kFlagRst)) return true;
    if (s->has(kFlagSyn)) {
      ++syns;
      EXPECT_TRUE(s->seg.options.has_window_scale);
      EXPECT_EQ(s->seg.options.window_scale, shift);
      EXPECT_LE(s->seg.window, std::min<uint32_t>(buffer, 0xffff));  // a SYN's window is not scaled
    } else if ((uint64_t{s->seg.window} << shift) > buffer) {
      ++bad_windows;
    }
    return true;
  });
  r.open();
  EXPECT_EQ(syns, 2);
  const std::string d = r.pair.a.tcp->describe(r.h);
  EXPECT_NE(d.find("wscale=" + std::to_string(shift) + "/" + std::to_string(shift)), std::string::npos) << d;
  const std::string data = pattern(buffer >= (1u << 20) ? 8'000'000 : 1'000'000, 14);
  ASSERT_TRUE(r.echo(data, 120'000'000)) << r.pair.a.tcp->describe(r.h) << " | " << r.pair.b.tcp->describe(r.hb);
  EXPECT_TRUE(r.client.conns[0].received == data);
  EXPECT_EQ(bad_windows, 0);
}

INSTANTIATE_TEST_SUITE_P(Buffers, TcpWindowScale,
                         ::testing::Values(2048u, 4096u, 65536u, 1u << 20, 8u << 20),
                         [](const ::testing::TestParamInfo<uint32_t>& info) {
                           return "Buffer" + std::to_string(info.param);
                         });

// A peer's shift of 14, the largest (RFC 7323 2.3), and one above it, which
// "MUST" be treated as 14: windows are scaled by 2^14.
TEST(TcpWindowScaleEdges, PeerShiftOf14AndAbove) {
  for (int offered : {14, 15, 255}) {
    TcpPair pair;
    RecordingApp server;
    ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
    ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
    TcpSegmentFields seg = peer_segment(4000, kPort, 1, kFlagSyn);
    seg.options.mss = 1460;
    seg.options.window_scale = offered;
    peer.send(seg);
    auto out = peer.take();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].seg.options.has_window_scale);
    seg = after_syn(seg, out[0].seq() + 1);
    seg.window = 3;  // 3 << 14 = 49152 bytes
    seg.options = TcpOptionSpec{};
    peer.send(seg);
    ASSERT_EQ(server.conns.size(), 1u);
    const std::string d = pair.b.tcp->describe(server.conns[0].handle);
    EXPECT_EQ(describe_field(d, "wnd"), 3 << 14) << "offered " << offered << ": " << d;
    EXPECT_NE(d.find("wscale=14/"), std::string::npos) << d;
    // The stack may now send up to 48 KiB (cwnd permitting): check that it
    // uses more than the unscaled 3 bytes.
    const std::string data(20'000, 'w');
    ASSERT_EQ(pair.b.tcp->send(server.conns[0].handle, reinterpret_cast<const uint8_t*>(data.data()), 20'000),
              20'000u);
    pair.step();
    size_t sent = 0;
    for (const auto& c : peer.take()) sent += c.payload.size();
    EXPECT_GE(sent, 14'000u);
  }
}

// No window scale option from the peer: scaling is off both ways (RFC 7323
// 2.2: "both sides must send Window Scale options in their SYN segments"):
// the SYN,ACK carries none, and the stack's windows are plain 16-bit byte
// counts even with a buffer larger than 64 KiB.
TEST(TcpWindowScaleEdges, NoScalingUnlessBothSynsOfferIt) {
  TcpConfig c = TcpPair::small_config();
  c.buffer_size = 1u << 20;
  c.buffer_pool = 8;
  TcpPair pair(c, c);
  RecordingApp server;
  ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
  ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
  TcpSegmentFields seg = peer_segment(4000, kPort, 1, kFlagSyn);
  seg.options.mss = 1460;
  peer.send(seg);
  auto out = peer.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].seg.options.has_window_scale);
  seg = after_syn(seg, out[0].seq() + 1);
  seg.payload = Bytes(1000, 'x');
  peer.send(seg);
  pair.run_for(100'000);
  out = peer.take();
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back().seg.window, 0xffff);  // (1 MiB - 1000) does not fit: the field saturates
  const std::string d = pair.b.tcp->describe(server.conns[0].handle);
  EXPECT_NE(d.find("wscale=0/0"), std::string::npos) << d;

  // The active side: it offers its shift, the peer's SYN,ACK has none, so
  // it must not scale what it advertises.
  ScriptedPeer origin(pair, pair.a, ip(198, 18, 0, 10));
  RecordingApp client;
  const ConnHandle h = connect_from(pair, pair.a, origin.ip(), 443, client);
  out = origin.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].seg.options.has_window_scale);
  EXPECT_EQ(out[0].seg.options.window_scale, net::tcp::window_shift_for(c.buffer_size));
  TcpSegmentFields synack = syn_ack_to(out[0], 500);
  synack.options.mss = 1460;
  origin.send(synack);
  out = origin.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seg.window, 0xffff);
  EXPECT_NE(pair.a.tcp->describe(h).find("wscale=0/0"), std::string::npos) << pair.a.tcp->describe(h);
}

// --- sequence numbers across 2^32 (RFC 9293 3.4) -----------------------------------------

class TcpWrap : public ::testing::TestWithParam<std::tuple<uint32_t, bool>> {};

// Both ISSs just below 2^32, so that both directions wrap within the first
// segments, under random loss, reordering and duplication, with and without
// SACK: every comparison must be modular.
TEST_P(TcpWrap, EchoAcrossTheWrapUnderFaults) {
  const auto [iss, sack] = GetParam();
  TcpConfig c = TcpPair::small_config();
  c.fixed_isn = iss;
  Recovery r(c, c);
  if (!sack) r.strip_from_syn({kOptSackPermitted});
  r.server.echo = true;
  set_faults_both_ways(r.pair, lossy_link(0.03, 0.03, 0.01), 31, 32);
  r.open();
  const std::string d = r.pair.a.tcp->describe(r.h);
  ASSERT_NE(d.find(sack ? "sack=true" : "sack=false"), std::string::npos) << d;
  const std::string data = pattern(1'000'000, 15);
  ASSERT_TRUE(r.echo(data, 60'000'000)) << r.pair.a.tcp->describe(r.h) << " | " << r.pair.b.tcp->describe(r.hb);
  EXPECT_TRUE(r.client.conns[0].received == data);
  EXPECT_GT(r.pair.a.tcp->counters().retransmitted_segments.get(), 0u);
  r.pair.a.tcp->shutdown(r.h);
  ASSERT_TRUE(r.pair.run_until([&] { return r.server.conns[0].closed; }, 60'000'000));
  EXPECT_EQ(r.server.conns[0].reason, CloseReason::closed);
}

INSTANTIATE_TEST_SUITE_P(Isn, TcpWrap,
                         ::testing::Combine(::testing::Values(0xffffffffu, 0xfffff000u, 0x7ffff000u),
                                            ::testing::Bool()),
                         [](const ::testing::TestParamInfo<std::tuple<uint32_t, bool>>& info) {
                           char name[40];
                           std::snprintf(name, sizeof name, "Iss%08x%s", std::get<0>(info.param),
                                         std::get<1>(info.param) ? "Sack" : "NoSack");
                           return std::string(name);
                         });

// The segment that straddles 2^32 is lost, and so is one just after it: fast
// retransmit, SACK blocks and the scoreboard all work across the wrap.
TEST(TcpWrapLoss, LossesAtTheWrapPointAreRepairedWithoutTimeout) {
  for (bool sack : {true, false}) {
    TcpConfig c = TcpPair::small_config();
    c.fixed_isn = 0xffffffffu - 30'000;
    c.congestion = CongestionAlgorithm::newreno;
    Recovery r(c, c);
    if (!sack) r.strip_from_syn({kOptSackPermitted});
    DataLoss loss;
    loss.install(r);
    loss.drop_offsets = {29'999, 29'999 + 3 * 1460};  // the byte at 2^32 - 1, and one three segments on
    r.open();
    const std::string data = pattern(300'000, 16);
    ASSERT_TRUE(r.transfer(data, 30'000'000)) << r.pair.a.tcp->describe(r.h);
    EXPECT_TRUE(r.server.conns[0].received == data);
    ASSERT_EQ(loss.dropped_seqs.size(), 2u);
    EXPECT_TRUE(seq_lt(loss.dropped_seqs[0], 0) || loss.dropped_seqs[0] == 0) << loss.dropped_seqs[0];
    EXPECT_EQ(r.pair.a.tcp->counters().rto_expirations.get(), 0u) << (sack ? "SACK" : "no SACK");
    EXPECT_EQ(r.pair.a.tcp->counters().retransmitted_segments.get(), 2u) << (sack ? "SACK" : "no SACK");
  }
}

// --- the receiver ----------------------------------------------------------------------

// RFC 9293 3.8.6.3 / RFC 5681 4.2: an ACK for at least every second
// full-sized segment, and a lone segment acknowledged within the delayed-ACK
// timeout (configured 40 ms; never more than 500 ms).
TEST(TcpReceiver, DelayedAckEverySecondFullSegmentAndWithinTheTimeout) {
  Recovery r;
  r.open();
  r.pair.run_for(100'000);
  std::vector<TcpCapture> acks;
  std::vector<uint64_t> data_at;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f, r.pair.now_us);
    if (!c) return true;
    if (&from == &r.pair.b && c->payload.empty()) acks.push_back(*c);
    if (&from == &r.pair.a && !c->payload.empty()) data_at.push_back(r.pair.now_us);
    return true;
  });
  // Ten full segments in one flight (the initial window).
  const std::string burst = pattern(10 * 1448, 18);
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>(burst.data()), 10 * 1448), 10u * 1448);
  r.pair.run_for(200'000);
  EXPECT_EQ(data_at.size(), 10u);
  EXPECT_EQ(acks.size(), 5u);
  // One small segment: ACKed after the delayed-ACK timeout, not at once.
  acks.clear();
  data_at.clear();
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>("x"), 1), 1u);
  r.pair.run_for(600'000);
  ASSERT_EQ(data_at.size(), 1u);
  ASSERT_EQ(acks.size(), 1u);
  const uint64_t delay = acks[0].at_us - data_at[0];
  EXPECT_GE(delay, r.pair.b.tcp->config().delayed_ack_us - 100);
  EXPECT_LE(delay, r.pair.b.tcp->config().delayed_ack_us + 1'000);
}

// The peer's MSS bounds every segment, options included (RFC 9293 3.7.1;
// RFC 6691: "the MSS option value ... the TCP options ... reduce the
// space for data").
TEST(TcpReceiver, PeerMssBoundsDataPlusOptions) {
  for (uint16_t mss : {uint16_t{100}, uint16_t{536}, uint16_t{0}}) {
    TcpPair pair;
    RecordingApp server;
    ASSERT_TRUE(pair.b.tcp->listen(kPort, &server));
    ScriptedPeer peer(pair, pair.b, ip(198, 18, 0, 9));
    TcpSegmentFields seg = peer_segment(4000, kPort, 1, kFlagSyn);
    seg.options.mss = mss;  // 0: no option, RFC 9293 3.7.1's 536
    seg.options.timestamps = true;
    seg.options.ts_value = 10;
    peer.send(seg);
    auto out = peer.take();
    ASSERT_EQ(out.size(), 1u);
    seg = after_syn(seg, out[0].seq() + 1);
    seg.options.mss = 0;
    seg.options.ts_echo = out[0].seg.options.ts_value;
    peer.send(seg);
    ASSERT_EQ(server.conns.size(), 1u);
    const std::string data = pattern(20'000, 19);
    ASSERT_EQ(pair.b.tcp->send(server.conns[0].handle, reinterpret_cast<const uint8_t*>(data.data()), 20'000),
              20'000u);
    pair.step();
    out = peer.take();
    ASSERT_FALSE(out.empty());
    const uint32_t limit = mss == 0 ? 536 : mss;
    for (const auto& c : out) {
      EXPECT_LE(c.payload.size() + (c.seg.header_len - 20u), limit) << "peer MSS " << mss;
    }
    EXPECT_EQ(out[0].payload.size() + (out[0].seg.header_len - 20u), limit) << "segments should be full";
  }
}

// RFC 9293 3.8.6.2.2 (receiver SWS avoidance, a MUST): once its window has
// closed, the receiver moves the right edge of the window it offers
// (RCV.NXT + RCV.WND) only by at least min(RCV.BUFF / 2, Eff.snd.MSS),
// whatever its application reads. Here the application reads 100 bytes every
// 50 ms; the sender must never be offered 100 more bytes (which, after its
// SWS override timeout, it would send as a 100-byte segment).
TEST(TcpReceiver, ReceiverSwsAvoidanceMovesTheRightEdgeOnlyByUsefulSteps) {
  Recovery r;
  r.server.auto_read = false;
  r.open();
  const std::string data = pattern(300'000, 20);
  size_t off = 0;
  r.keep_sending(data, off, 2'000'000);
  ASSERT_GE(r.pair.b.tcp->readable(r.hb), r.pair.b.tcp->config().buffer_size - 1460);  // window (nearly) closed
  // Eff.snd.MSS: the sender's full segment, timestamps taken off.
  const uint32_t step = std::min<uint32_t>(r.pair.b.tcp->config().buffer_size / 2, 1460 - 12);
  const uint8_t shift = net::tcp::window_shift_for(r.pair.b.tcp->config().buffer_size);
  bool have_edge = false;
  uint32_t edge = 0;
  std::vector<uint32_t> small_steps;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (!c || &from != &r.pair.b || !c->has(kFlagAck)) return true;
    const uint32_t right = c->ack() + (uint32_t{c->seg.window} << shift);
    if (have_edge && seq_lt(edge, right)) {
      if (right - edge < step) small_steps.push_back(right - edge);
    }
    if (!have_edge || seq_lt(edge, right)) edge = right;
    have_edge = true;
    return true;
  });
  uint8_t buf[100];
  for (int i = 0; i < 200; ++i) {
    ASSERT_EQ(r.pair.b.tcp->read(r.hb, buf, sizeof buf), sizeof buf);
    r.keep_sending(data, off, 50'000);
  }
  EXPECT_TRUE(small_steps.empty()) << small_steps.size() << " right-edge moves below " << step
                                   << " bytes, the first by " << (small_steps.empty() ? 0 : small_steps[0]);
  EXPECT_EQ(r.pair.a.tcp->state(r.h), State::established);
}

// RFC 9293 3.10.7.4: "Segments with higher beginning sequence numbers SHOULD
// be held for later processing" - the whole segment, FIN included. The
// client's last data segment is lost; the FIN arrives out of order, after a
// hole; when the retransmission fills the hole, the FIN is processed at
// once instead of waiting for a retransmission of its own.
TEST(TcpReceiver, OutOfOrderFinIsHeldUntilTheHoleFills) {
  Recovery r;
  DataLoss loss;
  loss.install(r);
  // A 5 ms one-way delay: a FIN that must be sent again costs a round trip.
  dataplane::FaultSpec delay;
  delay.delay_us = 5'000;
  set_faults_both_ways(r.pair, delay, 41, 42);
  r.open();
  uint64_t filled_at = 0;
  int fins = 0;
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame& f) {
    auto c = parse_tcp_frame(f);
    if (!c || &from != &r.pair.a) return true;
    if (c->has(net::tcp::kFlagFin)) ++fins;
    if (!loss.dropped_seqs.empty() && c->seq() == loss.dropped_seqs[0] && !c->payload.empty() && filled_at == 0 &&
        r.pair.a.tcp->counters().retransmitted_segments.get() != 0) {
      filled_at = r.pair.now_us;
    }
    return true;
  });
  loss.drop_offsets = {0};
  const std::string data = pattern(3000, 21);
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>(data.data()), 3000), 3000u);
  r.pair.a.tcp->shutdown(r.h);
  ASSERT_TRUE(r.pair.run_until([&] { return r.server.conns[0].peer_closed; }, 10'000'000));
  EXPECT_TRUE(r.server.conns[0].received == data);
  ASSERT_NE(filled_at, 0u);
  EXPECT_LE(r.pair.now_us - filled_at, 6'000u) << "the FIN waited for its own retransmission";
  EXPECT_EQ(fins, 1);
}

// R2 still applies to a zero window whose probes go unanswered: RFC 1122
// 4.2.2.17 keeps a zero-window connection open only "as long as the
// receiving TCP continues to send acknowledgments in response to the probe
// segments". A peer that closes its window and vanishes must not hold a TCB
// and a full send buffer for ever (a cheap way to exhaust the buffer pool:
// ask for data, advertise a zero window, go silent).
TEST(TcpRecovery, ZeroWindowProbesThatGoUnansweredEndTheConnection) {
  Recovery r;
  r.server.auto_read = false;
  r.open();
  const std::string data = pattern(200'000, 22);
  size_t off = 0;
  r.keep_sending(data, off, 5'000'000);
  ASSERT_GE(r.pair.a.tcp->counters().zero_window_probes.get(), 1u);
  // The receiver is gone: nothing more comes from it.
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame&) { return &from != &r.pair.b; });
  r.pair.run_for(3'600'000'000, 20'000);  // an hour
  EXPECT_EQ(r.pair.a.tcp->state(r.h), State::closed)
      << "still probing a dead peer after an hour: " << r.pair.a.tcp->describe(r.h);
  EXPECT_TRUE(r.client.conns[0].closed);
  EXPECT_EQ(r.pair.a.tcp->connections(), 0u);
}

// RFC 1122 4.2.3.6: keep-alive probes an idle connection; a peer that
// answers keeps it, one that does not loses it after the probes.
TEST(TcpRecovery, KeepAliveKeepsALivePeerAndDropsADeadOne) {
  TcpConfig c = TcpPair::small_config();
  c.keepalive_idle_us = 10'000'000;
  c.keepalive_interval_us = 1'000'000;
  c.keepalive_probes = 3;
  Recovery r(c, TcpPair::small_config());
  r.open();
  r.pair.run_for(60'000'000, 1'000);
  EXPECT_EQ(r.pair.a.tcp->state(r.h), State::established);
  EXPECT_GE(r.pair.a.tcp->counters().keepalive_probes.get(), 5u);
  r.pair.add_tap([&](TcpPair::Side& from, net::Frame&) { return &from != &r.pair.b; });
  ASSERT_TRUE(r.pair.run_until([&] { return r.client.conns[0].closed; }, 60'000'000, 1'000));
  EXPECT_EQ(r.client.conns[0].reason, CloseReason::timed_out);
}

// A receiver that SACKs data and then reneges (RFC 2018 8: it may discard
// SACKed data): after the retransmission timeout the sender forgets the
// SACK information and retransmits from SND.UNA, so nothing is lost.
TEST(TcpRecovery, RenegedSackIsRepairedAfterTheTimeout) {
  ScriptedReceiver r(TcpOptionSpec{.mss = 1000, .sack_permitted = true});
  ASSERT_TRUE(r.accepted);
  ASSERT_EQ(r.pair.a.tcp->state(r.h), State::established);
  r.peer.take();  // the handshake's ACK
  const uint32_t iss = r.accepted->iss;
  TcpSegmentFields seg = r.accepted->next;
  const std::string data = pattern(8000, 23);
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>(data.data()), 8000), 8000u);
  r.pair.step();
  auto out = r.peer.take();
  ASSERT_EQ(out.size(), 8u);
  // "Lose" the first segment and SACK the other seven, three times.
  for (int i = 0; i < 3; ++i) {
    seg.options.sack = {{iss + 1 + 1000, iss + 1 + 8000}};
    r.peer.send(seg);
  }
  // Then renege: keep only what arrives in order from now on.
  std::string received;
  uint32_t expect = iss + 1;
  seg.options.sack.clear();
  r.receive_in_order(seg, expect, received, data.size(), 20'000);
  EXPECT_TRUE(received == data) << received.size() << " of " << data.size() << ": " << r.pair.a.tcp->describe(r.h);
  EXPECT_GE(r.pair.a.tcp->counters().rto_expirations.get(), 1u);
}

// An ACK that ends inside a segment (a receiver whose buffer took only part
// of it): the retransmission starts at the first unacknowledged byte.
TEST(TcpRecovery, AckInsideASegmentRetransmitsFromTheFirstUnackedByte) {
  ScriptedReceiver r(TcpOptionSpec{.mss = 1000});
  ASSERT_TRUE(r.accepted);
  r.peer.take();  // the handshake's ACK
  const uint32_t iss = r.accepted->iss;
  TcpSegmentFields seg = r.accepted->next;
  const std::string data = pattern(3000, 24);
  ASSERT_EQ(r.pair.a.tcp->send(r.h, reinterpret_cast<const uint8_t*>(data.data()), 3000), 3000u);
  r.pair.step();
  ASSERT_EQ(r.peer.take().size(), 3u);
  seg.ack = iss + 1 + 700;
  r.peer.send(seg);
  std::vector<TcpCapture> again;
  for (int i = 0; i < 2'000 && again.empty(); ++i) {
    r.pair.step(1'000);
    again = r.peer.take();
  }
  ASSERT_FALSE(again.empty());
  EXPECT_EQ(again[0].seq(), iss + 1 + 700);
  EXPECT_EQ(again[0].payload, data.substr(700, again[0].payload.size()));
}

}  // namespace
}  // namespace mtlsgw::testing
