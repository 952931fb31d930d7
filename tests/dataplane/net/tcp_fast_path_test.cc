// Header prediction (TcpStack::predicted_input) against the general path:
// the same exchanges run twice in lockstep, once with TcpConfig::
// header_prediction on both stacks and once with it off, and everything
// observable must be the same: every frame each stack sends, byte for byte
// and in the same order, each connection's state (describe(): sequence and
// window variables, TS.Recent, Last.ACK.sent, SND.WL1/WL2, cwnd, RACK) after
// every step, the counters and the bytes the applications read. Each
// exchange also checks that the fast path was taken, so that a change which
// quietly turned it off fails here rather than passing as "equal".
//
// Sequence numbers cross 2^32 (fixed ISNs just below it) and so do the
// timestamps: a tap adds an offset to the client's TSval on the wire (and
// takes it off the server's TSecr on the way back), so that the server sees
// a peer clock that wraps a few milliseconds into the test.

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/net/tcp_stack.h"
#include "packet_builder.h"
#include "tcp_pair.h"
#include "tcp_steps.h"

namespace mtlsgw::testing {
namespace {

using net::tcp::ConnHandle;
using net::tcp::TcpConfig;

constexpr uint16_t kPort = 7000;
constexpr size_t kEthLen = 14;

// Offset added to the client's TSval: its clock (1 ms ticks from 1000 at
// the start) wraps 2 ms into the test, early in every transfer below (3 MiB
// take about 5 ms of simulated time).
constexpr uint32_t kTsOffset = 0xffff'ffffu - 1001u;

// The TCP header of a frame, or nullptr when it is not TCP/IPv4.
uint8_t* tcp_header(net::Frame& f, size_t& tcp_len) {
  if (f.len < kEthLen + 20 || f.data[12] != 0x08 || f.data[13] != 0x00 || f.data[kEthLen + 9] != 6) {
    return nullptr;
  }
  const size_t ihl = (f.data[kEthLen] & 0x0f) * 4u;
  const size_t total = static_cast<size_t>(f.data[kEthLen + 2] << 8 | f.data[kEthLen + 3]);
  tcp_len = total - ihl;
  return f.data + kEthLen + ihl;
}

uint32_t load32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
void store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Adds val_delta to TSval and ecr_delta to a nonzero TSecr of the frame's
// timestamp option, if it has one, and recomputes the TCP checksum.
void shift_timestamps(net::Frame& f, uint32_t val_delta, uint32_t ecr_delta) {
  size_t tcp_len = 0;
  uint8_t* const tcp = tcp_header(f, tcp_len);
  if (tcp == nullptr) return;
  const size_t header_len = (tcp[12] >> 4) * 4u;
  for (size_t at = 20; at < header_len;) {
    const uint8_t kind = tcp[at];
    if (kind == 0) break;
    if (kind == 1) {
      ++at;
      continue;
    }
    if (at + 1 >= header_len || tcp[at + 1] < 2) return;
    if (kind == 8 && tcp[at + 1] == 10) {
      store32(tcp + at + 2, load32(tcp + at + 2) + val_delta);
      const uint32_t ecr = load32(tcp + at + 6);
      if (ecr != 0) store32(tcp + at + 6, ecr + ecr_delta);
      Bytes sum_over;
      sum_over.insert(sum_over.end(), f.data + kEthLen + 12, f.data + kEthLen + 20);  // addresses
      put16(sum_over, 6);
      put16(sum_over, static_cast<uint16_t>(tcp_len));
      tcp[16] = tcp[17] = 0;
      sum_over.insert(sum_over.end(), tcp, tcp + tcp_len);
      const uint16_t sum = internet_checksum(sum_over.data(), sum_over.size());
      tcp[16] = static_cast<uint8_t>(sum >> 8);
      tcp[17] = static_cast<uint8_t>(sum);
      return;
    }
    at += tcp[at + 1];
  }
}

// One of the two runs: a pair of stacks, a client on side a and a server on
// side b, and every frame each side sent.
struct StackRun {
  explicit StackRun(TcpConfig config) : pair(config) {
    pair.add_tap([this](TcpPair::Side& from, net::Frame& f) {
      (&from == &pair.a ? sent_by_a : sent_by_b).emplace_back(f.data, f.data + f.len);
      return true;
    });
    pair.add_tap([this](TcpPair::Side& from, net::Frame& f) {
      if (&from == &pair.a) {
        shift_timestamps(f, kTsOffset, 0);
      } else {
        shift_timestamps(f, 0, 0u - kTsOffset);
      }
      return true;
    });
  }

  ConnHandle server_handle() const {
    return server.conns.empty() ? ConnHandle{} : server.conns.front().handle;
  }
  std::string states() const {
    return "client: " + pair.a.tcp->describe(client_handle) +
           "\nserver: " + pair.b.tcp->describe(server_handle());
  }

  TcpPair pair;
  RecordingApp server;
  RecordingApp client;
  ConnHandle client_handle;
  std::vector<Bytes> sent_by_a;
  std::vector<Bytes> sent_by_b;
};

TcpConfig config_with(bool prediction, uint32_t isn) {
  TcpConfig c = TcpPair::small_config();
  c.header_prediction = prediction;
  c.fixed_isn = isn;
  return c;
}

// The two runs side by side. step() advances both and returns false at the
// first difference, which `failure` then describes.
class Twin {
 public:
  explicit Twin(uint32_t isn) : fast_(config_with(true, isn)), slow_(config_with(false, isn)) {}

  // Both runs, in the same order: the same calls on each.
  template <typename Fn>
  void both(Fn&& fn) {
    fn(fast_);
    fn(slow_);
  }

  bool open() {
    both([](StackRun& r) {
      r.client_handle = listen_and_connect(r.pair, kPort, r.server, r.client);
    });
    for (int i = 0; i < 200 && (fast_.server.conns.empty() || slow_.server.conns.empty()); ++i) {
      if (!step()) return false;
    }
    return !fast_.server.conns.empty() && !slow_.server.conns.empty() && step();
  }

  bool step(uint64_t dt_us = 50) {
    ++steps_;
    fast_.pair.step(dt_us);
    slow_.pair.step(dt_us);
    return same();
  }

  StackRun& fast() { return fast_; }
  StackRun& slow() { return slow_; }
  const std::string& failure() const { return failure_; }

  // The counters of one side's stack, as telemetry shows them.
  static std::string counters(const net::tcp::TcpStack& stack) {
    std::string out;
    net::tcp::for_each_counter(stack.counters(), [&](const char* name, uint64_t v) {
      out += std::string(name) + "=" + std::to_string(v) + " ";
    });
    return out;
  }

  bool same_counters() {
    if (counters(*fast_.pair.a.tcp) != counters(*slow_.pair.a.tcp) ||
        counters(*fast_.pair.b.tcp) != counters(*slow_.pair.b.tcp)) {
      failure_ = "counters differ:\nfast a: " + counters(*fast_.pair.a.tcp) +
                 "\nslow a: " + counters(*slow_.pair.a.tcp) + "\nfast b: " +
                 counters(*fast_.pair.b.tcp) + "\nslow b: " + counters(*slow_.pair.b.tcp);
      return false;
    }
    return true;
  }

 private:
  bool same_frames(const std::vector<Bytes>& fast, const std::vector<Bytes>& slow, const char* who) {
    if (fast.size() != slow.size()) {
      failure_ = std::string(who) + " sent " + std::to_string(fast.size()) + " frames with prediction, " +
                 std::to_string(slow.size()) + " without";
      return false;
    }
    for (; checked_[who[0] == 'a'] < fast.size(); ++checked_[who[0] == 'a']) {
      const size_t i = checked_[who[0] == 'a'];
      if (fast[i] != slow[i]) {
        failure_ = std::string(who) + "'s frame " + std::to_string(i) + " differs";
        return false;
      }
    }
    return true;
  }

  bool same() {
    const std::string where = " (step " + std::to_string(steps_) + ")";
    if (!same_frames(fast_.sent_by_a, slow_.sent_by_a, "a") ||
        !same_frames(fast_.sent_by_b, slow_.sent_by_b, "b")) {
      failure_ += where + "\nfast:\n" + fast_.states() + "\nslow:\n" + slow_.states();
      return false;
    }
    if (fast_.states() != slow_.states()) {
      failure_ = "connection state differs" + where + "\nfast:\n" + fast_.states() + "\nslow:\n" +
                 slow_.states();
      return false;
    }
    return true;
  }

  StackRun fast_;
  StackRun slow_;
  uint64_t steps_ = 0;
  size_t checked_[2] = {0, 0};
  std::string failure_;
};

uint64_t predicted(const StackRun& r) {
  return r.pair.a.tcp->predicted_segments() + r.pair.b.tcp->predicted_segments();
}

uint64_t segments_in(const StackRun& r) {
  return r.pair.a.tcp->counters().segments_in.get() + r.pair.b.tcp->counters().segments_in.get();
}

// The client sends `data`; the server's application reads as set up by the
// test. Runs until the server has it all, then until both sides are idle.
void transfer(Twin& twin, const std::string& data, uint64_t max_steps = 400'000) {
  size_t offset_fast = 0;
  size_t offset_slow = 0;
  for (uint64_t i = 0; i < max_steps; ++i) {
    send_rest(*twin.fast().pair.a.tcp, twin.fast().client_handle, data, offset_fast);
    send_rest(*twin.slow().pair.a.tcp, twin.slow().client_handle, data, offset_slow);
    ASSERT_TRUE(twin.step()) << twin.failure();
    if (twin.fast().server.conns.front().received.size() == data.size() &&
        twin.slow().server.conns.front().received.size() == data.size()) {
      break;
    }
  }
  // Delayed ACKs, probes and timers run out the same way too.
  for (int i = 0; i < 4000; ++i) ASSERT_TRUE(twin.step()) << twin.failure();
  EXPECT_EQ(twin.fast().server.conns.front().received, data);
  EXPECT_EQ(twin.slow().server.conns.front().received, data);
  EXPECT_TRUE(twin.same_counters()) << twin.failure();
}

constexpr uint32_t kIsnBelowWrap = 0xffff'ffffu - 200'000u;

TEST(TcpFastPath, BulkTransferAcrossSequenceAndTimestampWrapIsTheSame) {
  Twin twin(kIsnBelowWrap);
  ASSERT_TRUE(twin.open()) << twin.failure();
  transfer(twin, pattern(3 << 20, 11));
  // In order data at the server, pure ACKs at the client: most segments
  // take the fast path; none without it.
  EXPECT_GT(predicted(twin.fast()), segments_in(twin.fast()) * 3 / 4);
  EXPECT_EQ(predicted(twin.slow()), 0u);
  // The server's TS.Recent went past 2^32 (it is a small number now).
  const int64_t ts_recent = describe_field(
      twin.fast().pair.b.tcp->describe(twin.fast().server_handle()), "ts_recent");
  EXPECT_GE(ts_recent, 0);
  EXPECT_LT(ts_recent, 10'000);
}

TEST(TcpFastPath, EchoBothWaysIsTheSame) {
  Twin twin(kIsnBelowWrap);
  twin.both([](StackRun& r) { r.server.echo = true; });
  ASSERT_TRUE(twin.open()) << twin.failure();
  const std::string data = pattern(1 << 20, 12);
  transfer(twin, data);
  EXPECT_EQ(twin.fast().client.conns.front().received, data);
  EXPECT_EQ(twin.slow().client.conns.front().received, data);
  EXPECT_GT(predicted(twin.fast()), 0u);
  EXPECT_EQ(predicted(twin.slow()), 0u);
}

TEST(TcpFastPath, LossReorderingAndDuplicatesInAndOutOfTheFastPathAreTheSame) {
  // Recoveries, SACK blocks, D-SACKs, probes and RTOs: the fast path steps
  // aside and back in, and every frame stays the same.
  Twin twin(kIsnBelowWrap);
  ASSERT_TRUE(twin.open()) << twin.failure();
  twin.both([](StackRun& r) { set_faults_both_ways(r.pair, lossy_link(0.03, 0.03, 0.01), 21, 22); });
  transfer(twin, pattern(2 << 20, 13));
  EXPECT_GT(predicted(twin.fast()), 0u);
  EXPECT_GT(twin.fast().pair.a.tcp->counters().retransmitted_segments.get(), 0u);
  EXPECT_GT(twin.fast().pair.b.tcp->counters().out_of_order_segments.get(), 0u);
}

TEST(TcpFastPath, ASlowReaderClosingAndOpeningTheWindowIsTheSame) {
  // The receive window fills (no reads), then reopens: window updates,
  // zero-window probes and segments beyond the buffer all go the general
  // way; the in-order ones around them take the fast path.
  Twin twin(kIsnBelowWrap);
  twin.both([](StackRun& r) { r.server.auto_read = false; });
  ASSERT_TRUE(twin.open()) << twin.failure();
  const std::string data = pattern(600 << 10, 14);
  size_t offset_fast = 0;
  size_t offset_slow = 0;
  size_t read_fast = 0;
  for (int round = 0; round < 400; ++round) {
    send_rest(*twin.fast().pair.a.tcp, twin.fast().client_handle, data, offset_fast);
    send_rest(*twin.slow().pair.a.tcp, twin.slow().client_handle, data, offset_slow);
    // Read in bursts every 40 steps, nothing in between.
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(twin.step()) << twin.failure();
    twin.both([](StackRun& r) {
      uint8_t buf[8192];
      const ConnHandle h = r.server_handle();
      for (int k = 0; k < 4; ++k) {
        const uint32_t n = r.pair.b.tcp->read(h, buf, sizeof buf);
        r.server.conns.front().received.append(reinterpret_cast<char*>(buf), n);
      }
    });
    read_fast = twin.fast().server.conns.front().received.size();
    if (read_fast == data.size()) break;
  }
  for (int i = 0; i < 4000; ++i) ASSERT_TRUE(twin.step()) << twin.failure();
  EXPECT_EQ(twin.fast().server.conns.front().received, data);
  EXPECT_EQ(twin.slow().server.conns.front().received, data);
  EXPECT_TRUE(twin.same_counters()) << twin.failure();
  EXPECT_GT(predicted(twin.fast()), 0u);
  EXPECT_EQ(predicted(twin.slow()), 0u);
}

TEST(TcpFastPath, CloseAfterBulkTransferIsTheSame) {
  // FINs both ways after data: never predicted, and what follows the last
  // predicted segment (FIN-WAIT, TIME-WAIT) is the same.
  Twin twin(kIsnBelowWrap);
  twin.both([](StackRun& r) { r.server.echo = true; });
  ASSERT_TRUE(twin.open()) << twin.failure();
  const std::string data = pattern(256 << 10, 15);
  transfer(twin, data);
  twin.both([](StackRun& r) { r.pair.a.tcp->shutdown(r.client_handle); });
  for (int i = 0; i < 8000; ++i) ASSERT_TRUE(twin.step()) << twin.failure();
  EXPECT_TRUE(twin.fast().client.conns.front().peer_closed);
  EXPECT_TRUE(twin.fast().server.conns.front().peer_closed);
  EXPECT_TRUE(twin.same_counters()) << twin.failure();
}

}  // namespace
}  // namespace mtlsgw::testing
