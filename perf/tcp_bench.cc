// Micro-benchmarks of the TCP data path (issue 3: "under 300 cycles per
// in-order data segment received or sent, checksums and copies included"),
// without EAL: a real net::Interface + net::tcp::TcpStack configured like the
// gateway of scripts/gateway-netns, with default TcpConfig, one ESTABLISHED
// connection, and the peer (a Linux host: MSS 1460, timestamps, SACK, window
// scaling) played by frames this file builds itself.
//
// How the loop is fed, and why:
// - The handshake is done once, outside the timed loop, by delivering the
//   peer's SYN and ACK and reading our SYN-ACK back.
// - The peer's segments are built before the loop into a ring of 2 KiB slots
//   (an mbuf's size). Delivering one only re-stamps its sequence (or
//   acknowledgment) number with an RFC 1624 incremental checksum update
//   (a few instructions; BM_PeerFrameOnly measures it) and hands the slot to
//   Interface::input: the stack never writes into a received frame, so no
//   per-iteration copy is needed (unlike net_bench, whose echo replies
//   overwrite their requests). The ring's size decides where the frames come
//   from: ring_frames:8 is 16 KiB, hot in L1; ring_frames:1024 is 2 MiB,
//   beyond this CPU's L2, as a NIC ring of 1024 descriptors would be.
// - Simulated time stands still (now = 1 s): the delayed-ACK and
//   retransmission timers are armed, re-armed and cancelled as in a bulk
//   transfer, but none fires, as none would while segments arrive every
//   1.2 us (10 Gb/s). TcpStack::poll is called where a worker would: after
//   each pair of received segments (a worker calls it once per rx burst, so
//   this overstates its share) and after each send().
//
// What one iteration is:
// - BM_TcpReceive/BM_TcpReceiveReordered: one 1448-byte data segment in
//   (Ethernet, IPv4 and TCP parsing, the IPv4 header and TCP checksums
//   verified, 4-tuple lookup, PAWS, window and ACK checks, the copy into the
//   receive buffer, the delayed-ACK bookkeeping), consumed by a discard
//   application from on_readable, and the ACK our stack builds and sends
//   every second segment (every segment when reordered: one ACK with a SACK
//   block for the early one, one for the gap being filled).
// - BM_TcpSend: the application send()s 1448 bytes, poll() builds and
//   transmits the segment (copy from the send buffer, checksum); every 8
//   segments the peer's ACKs for them arrive (one per segment, or one per two
//   as Linux's delayed ACK sends them). The counters split the TSC ticks
//   between the two halves.
// - Baselines: BM_CopyOnly (memcpy of one payload, at the offsets the stack
//   copies between), BM_ChecksumOnly (DPDK's rte_raw_cksum, which the stack
//   used before checksum.h, over 1448 bytes and over the 1480 bytes of a full
//   segment), BM_Checksum/<variant> and BM_ChecksumCopy/<variant> (each
//   variant of checksum.h this CPU runs; the stack uses checksum_impl()).
//
// What is left out: the NIC and the PMD (rx/tx bursts, mbuf alloc/free:
// BenchIo below recycles a LIFO pool), and on this machine net_tap's system
// call per packet, which alone costs several times a whole segment here.
//
// cycles_* counters are TSC ticks read with rdtsc (reference cycles at a
// constant rate, see docs/benchmarks.md), not core clock cycles: over the
// whole loop, and *_p50, the median over batches of a few microseconds,
// which leaves out the time slices other processes take. After each
// loop the benchmark checks that every segment took the intended path
// (bytes in or out exactly as many, ACKs exactly as many, no drop, no
// retransmission, the last frame on the wire as expected); otherwise the
// binary exits non-zero.

#include <benchmark/benchmark.h>
#include <rte_ip.h>
#include <x86intrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "common/siphash.h"
// checksum.h arrived with the fast checksums; without it (a tree from before,
// built with this file for a side-by-side comparison, docs/benchmarks.md)
// its rows are left out and everything else is the same.
#if __has_include("dataplane/net/checksum.h")
#include "dataplane/net/checksum.h"
#define TCP_BENCH_HAS_CHECKSUM_H 1
#endif
#include "dataplane/net/frame.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/stack_counters.h"
#include "dataplane/net/tcp_stack.h"
#include "dataplane/net/wire.h"
#include "packet_builder.h"

namespace {

namespace net = mtlsgw::net;
namespace tcp = mtlsgw::net::tcp;
namespace t = mtlsgw::testing;

// Addresses of scripts/gateway-netns: the gateway and the kernel behind the TAP.
const rte_ether_addr kOurMac = t::mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x02});
const rte_ether_addr kPeerMac = t::mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x01});
const uint32_t kOurIp = t::ip(198, 18, 0, 2);
const uint32_t kPeerIp = t::ip(198, 18, 0, 1);
constexpr uint16_t kOurPort = 9;  // the discard service's port
constexpr uint16_t kPeerPort = 47'001;
// The peer's sequence space wraps after ~11,600 segments, so every timed run
// crosses 2^32 (the stack's modular comparisons are part of what is timed).
constexpr uint32_t kPeerIsn = 0xff00'0000;
constexpr uint32_t kPeerTsVal = 0x1234'5678;
constexpr uint16_t kPeerWindow = 1000;  // << 7: 128,000 bytes, never the limit
constexpr uint8_t kPeerWindowShift = 7;  // what Linux offers with default buffers
constexpr uint64_t kNowUs = 1'000'000;

constexpr uint16_t kPayload = 1448;  // MSS 1460 minus the 12 bytes of NOP,NOP,TS
constexpr size_t kEthLen = 14;
constexpr size_t kTcpAt = kEthLen + 20;
constexpr size_t kSeqAt = kTcpAt + 4;
constexpr size_t kAckAt = kTcpAt + 8;
constexpr size_t kFlagsAt = kTcpAt + 13;
constexpr size_t kChecksumAt = kTcpAt + 16;
constexpr size_t kTsHeaderLen = 32;  // TCP header with NOP,NOP,TS
constexpr size_t kPayloadAt = kTcpAt + kTsHeaderLen;
constexpr size_t kFullFrameLen = kPayloadAt + kPayload;  // 1514
constexpr size_t kFullSegmentLen = kTsHeaderLen + kPayload;  // 1480: what the TCP checksum covers
constexpr uint8_t kAck = 0x10;
constexpr uint8_t kSyn = 0x02;

// The send benchmark's flight: 8 segments fit in the initial window (RFC
// 6928: 10 x SMSS), so cwnd never limits and never grows during the loop.
constexpr uint32_t kSendBatch = 8;

// Set when a benchmark found its segments on another path than intended;
// main() then exits non-zero (Google Benchmark 1.7 exits 0 after
// SkipWithError), so `meson test --benchmark` fails too.
bool g_failed = false;

void fail(benchmark::State& state, const std::string& message) {
  g_failed = true;
  state.SkipWithError(message.c_str());
}

// Buffers as a port hands them out: 2 KiB, cache-line aligned, with headroom.
struct alignas(64) Slot {
  static constexpr uint16_t kSize = 2048;
  static constexpr uint16_t kHeadroom = 128;
  uint8_t bytes[kSize];
};

// Marks frames that belong to a PeerRing, not to BenchIo's pool.
char g_peer_frame_tag;

// The worker's transmit queue: a LIFO pool for what the stack allocates
// (ACKs, data segments), which it recycles on send and release. Frames of a
// PeerRing come back through release() too and are only counted. It records
// sent frames only while `recording` (the handshake); in the timed loop it
// keeps just the last one sent, which stays intact in its recycled buffer
// until the next alloc, for the checks after the loop.
class BenchIo final : public net::FrameIo {
 public:
  explicit BenchIo(size_t buffers) : slots_(buffers) {
    for (size_t i = buffers; i > 0; --i) free_.push_back(slots_[i - 1].bytes);
  }

  bool alloc(net::Frame& out) noexcept override {
    if (free_.empty()) return false;
    uint8_t* const buffer = free_.back();
    free_.pop_back();
    out.data = buffer + Slot::kHeadroom;
    out.len = 0;
    out.headroom = Slot::kHeadroom;
    out.tailroom = Slot::kSize - Slot::kHeadroom;
    out.handle = buffer;
    ++outstanding_;
    return true;
  }

  void send(const net::Frame& frame) noexcept override {
    ++sent_;
    last_sent_ = frame;
    if (recording) recorded.emplace_back(frame.data, frame.data + frame.len);
    recycle(frame);
  }

  void release(const net::Frame& frame) noexcept override {
    if (frame.handle == &g_peer_frame_tag) {
      ++peer_frames_released_;
      return;
    }
    ++released_;
    recycle(frame);
  }

  uint64_t sent() const noexcept { return sent_; }
  uint64_t released() const noexcept { return released_; }
  uint64_t peer_frames_released() const noexcept { return peer_frames_released_; }
  long outstanding() const noexcept { return outstanding_; }
  // The last frame sent: valid until the stack allocates again.
  const net::Frame& last_sent() const noexcept { return last_sent_; }

  bool recording = false;
  std::vector<t::Bytes> recorded;

 private:
  void recycle(const net::Frame& frame) noexcept {
    free_.push_back(static_cast<uint8_t*>(frame.handle));
    --outstanding_;
  }

  std::vector<Slot> slots_;
  std::vector<uint8_t*> free_;
  net::Frame last_sent_;
  uint64_t sent_ = 0;
  uint64_t released_ = 0;
  uint64_t peer_frames_released_ = 0;
  long outstanding_ = 0;
};

// RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), for a 32-bit field: the two
// 16-bit words that change, in the one's-complement sum of the checksum.
void restamp_be32(uint8_t* frame, size_t field_at, uint32_t old_value,
                  uint32_t new_value) noexcept {
  uint32_t sum = static_cast<uint16_t>(~net::load_be16(frame + kChecksumAt));
  sum += static_cast<uint16_t>(~(old_value >> 16)) + (new_value >> 16);
  sum += static_cast<uint16_t>(~old_value) + (new_value & 0xffff);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  net::store_be16(frame + kChecksumAt, static_cast<uint16_t>(~sum));
  net::store_be32(frame + field_at, new_value);
}

// Copies of one peer frame in `slots` port-sized buffers; stamp() sets the
// 32-bit field at field_at (sequence or acknowledgment number) of one slot
// and hands the frame over as a port's rx burst would.
class PeerRing {
 public:
  PeerRing(const t::Bytes& frame, size_t slots, size_t field_at)
      : slots_(slots),
        values_(slots, t::get32(frame, field_at)),
        len_(static_cast<uint16_t>(frame.size())),
        field_at_(field_at) {
    for (Slot& s : slots_) std::memcpy(s.bytes + Slot::kHeadroom, frame.data(), frame.size());
  }

  net::Frame stamp(size_t slot, uint32_t value) noexcept {
    uint8_t* const data = slots_[slot].bytes + Slot::kHeadroom;
    restamp_be32(data, field_at_, values_[slot], value);
    values_[slot] = value;
    ++stamped_;
    net::Frame f;
    f.data = data;
    f.len = len_;
    f.headroom = Slot::kHeadroom;
    f.tailroom = static_cast<uint16_t>(Slot::kSize - Slot::kHeadroom - len_);
    f.handle = &g_peer_frame_tag;
    return f;
  }

  const uint8_t* data(size_t slot) const noexcept { return slots_[slot].bytes + Slot::kHeadroom; }
  size_t size() const noexcept { return slots_.size(); }
  uint64_t stamped() const noexcept { return stamped_; }

 private:
  std::vector<Slot> slots_;
  std::vector<uint32_t> values_;
  uint16_t len_;
  size_t field_at_;
  uint64_t stamped_ = 0;
};

// --- the peer's frames, built independently of the stack's own writer ----

struct TcpFields {
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint8_t flags = kAck;
  uint16_t window = kPeerWindow;
};

t::Bytes pattern(size_t len) {
  t::Bytes out(len);
  for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
  return out;
}

// RFC 9293 3.1 pseudo-header + segment, for the independent checksum.
uint16_t tcp_checksum(uint32_t src, uint32_t dst, const uint8_t* segment, size_t len) {
  t::Bytes sum_over;
  t::put32(sum_over, src);
  t::put32(sum_over, dst);
  t::put16(sum_over, 6);
  t::put16(sum_over, static_cast<uint16_t>(len));
  sum_over.insert(sum_over.end(), segment, segment + len);
  return t::internet_checksum(sum_over.data(), sum_over.size());
}

// A frame from the peer to us.
t::Bytes peer_frame(const TcpFields& f, const t::Bytes& options, const t::Bytes& payload) {
  t::Bytes seg;
  t::put16(seg, kPeerPort);
  t::put16(seg, kOurPort);
  t::put32(seg, f.seq);
  t::put32(seg, f.ack);
  seg.push_back(static_cast<uint8_t>((20 + options.size()) / 4 << 4));
  seg.push_back(f.flags);
  t::put16(seg, f.window);
  t::put16(seg, 0);  // checksum, below
  t::put16(seg, 0);  // urgent pointer
  seg.insert(seg.end(), options.begin(), options.end());
  seg.insert(seg.end(), payload.begin(), payload.end());
  const uint16_t sum = tcp_checksum(kPeerIp, kOurIp, seg.data(), seg.size());
  seg[16] = static_cast<uint8_t>(sum >> 8);
  seg[17] = static_cast<uint8_t>(sum);
  t::Ipv4Fields ip;
  ip.src = kPeerIp;
  ip.dst = kOurIp;
  ip.protocol = 6;
  return t::eth_frame(kOurMac, kPeerMac, RTE_ETHER_TYPE_IPV4, t::ipv4_packet(ip, seg));
}

// NOP,NOP,TS: what Linux puts on every segment after the handshake.
t::Bytes timestamps(uint32_t ts_val, uint32_t ts_ecr) {
  t::Bytes o{1, 1, 8, 10};
  t::put32(o, ts_val);
  t::put32(o, ts_ecr);
  return o;
}

// Linux's SYN options, in Linux's order: MSS 1460, SACK-permitted, TS, NOP,
// window scale 7.
t::Bytes linux_syn_options() {
  t::Bytes o{2, 4, 0x05, 0xb4, 4, 2, 8, 10};
  t::put32(o, kPeerTsVal);
  t::put32(o, 0);
  o.insert(o.end(), {1, 3, 3, kPeerWindowShift});
  return o;
}

// Checks a frame our stack sent: IPv4 from us to the peer, header checksum
// and TCP checksum right (by the independent implementation).
bool sane_frame_from_us(const uint8_t* f, size_t len, std::string& error) {
  if (len < kTcpAt + 20 || f[12] != 0x08 || f[13] != 0x00 || f[kEthLen] != 0x45 ||
      f[kEthLen + 9] != 6) {
    error = "the stack sent something other than a TCP/IPv4 frame";
    return false;
  }
  const uint16_t total = static_cast<uint16_t>(f[kEthLen + 2] << 8 | f[kEthLen + 3]);
  if (t::internet_checksum(f + kEthLen, 20) != 0 || total < 40 || kEthLen + total > len ||
      tcp_checksum(kOurIp, kPeerIp, f + kTcpAt, total - 20u) != 0) {
    error = "a frame the stack sent has a wrong length or checksum";
    return false;
  }
  return true;
}

// --- our side ---------------------------------------------------------------

// What services::Discard does (consume everything readable), plus what the
// checks need: the connection's handle and the byte count.
struct DiscardApp final : tcp::TcpApp {
  tcp::ConnHandle conn;
  uint64_t consumed = 0;
  bool peer_closed = false;
  bool closed = false;

  void on_accepted(tcp::TcpStack&, tcp::ConnHandle h, const tcp::FourTuple&) noexcept override {
    conn = h;
  }
  void on_readable(tcp::TcpStack& stack, tcp::ConnHandle h) noexcept override {
    const uint32_t n = stack.readable(h);
    stack.consume(h, n);
    consumed += n;
  }
  void on_peer_closed(tcp::TcpStack&, tcp::ConnHandle) noexcept override { peer_closed = true; }
  void on_closed(tcp::TcpStack&, tcp::ConnHandle, tcp::CloseReason) noexcept override {
    closed = true;
  }
};

net::InterfaceConfig gateway_config() {
  net::InterfaceConfig config;
  config.mac = kOurMac;
  config.address = net::Ipv4Prefix{kOurIp, 24};
  config.gateway = kPeerIp;
  return config;
}

// One worker's port and TCP with one ESTABLISHED connection to the peer.
struct Gateway {
  BenchIo io{16};
  net::StackCounters counters;
  net::Interface iface{gateway_config(), io, counters};
  tcp::TcpStack stack{tcp::TcpConfig{}, mtlsgw::SipKey{0x0123456789abcdefull, 0xfedcbaull}, kNowUs};
  DiscardApp app;
  uint64_t handshake_frames = 0;  // delivered outside any PeerRing of a benchmark
  uint32_t iss = 0;     // our initial sequence number
  uint32_t ts_val = 0;  // our TSval (time stands still), which the peer echoes

  Gateway() {
    iface.set_tcp(&stack);
    // The neighbour entry the handshake's ARP exchange would have left.
    iface.learn(kPeerIp, kPeerMac, kNowUs, /*create=*/true);
    stack.listen(kOurPort, &app);
  }

  void deliver_once(const t::Bytes& frame) {
    ++handshake_frames;
    PeerRing one(frame, 1, kSeqAt);
    iface.input(one.stamp(0, t::get32(frame, kSeqAt)), kNowUs);
  }

  // The peer's SYN, our SYN-ACK, the peer's ACK.
  bool open(std::string& error) {
    io.recording = true;
    deliver_once(peer_frame(TcpFields{kPeerIsn, 0, kSyn, 64'240}, linux_syn_options(), {}));
    if (io.recorded.size() != 1) {
      error = "no SYN-ACK for the peer's SYN";
      return false;
    }
    const t::Bytes syn_ack = io.recorded.front();
    if (!sane_frame_from_us(syn_ack.data(), syn_ack.size(), error)) return false;
    if (syn_ack[kFlagsAt] != (kSyn | kAck) || t::get32(syn_ack, kAckAt) != kPeerIsn + 1) {
      error = "the answer to the SYN is not a SYN-ACK for it";
      return false;
    }
    iss = t::get32(syn_ack, kSeqAt);
    const size_t options_end = kTcpAt + (syn_ack[kTcpAt + 12] >> 4) * 4u;
    bool has_ts = false;
    for (size_t at = kTcpAt + 20; at < options_end;) {
      const uint8_t kind = syn_ack[at];
      if (kind == 0) break;
      if (kind == 1) {
        ++at;
        continue;
      }
      if (kind == 8) {
        ts_val = t::get32(syn_ack, at + 2);
        has_ts = true;
      }
      at += syn_ack[at + 1];
    }
    if (!has_ts) {
      error = "the SYN-ACK left timestamps off";
      return false;
    }
    deliver_once(peer_frame(TcpFields{kPeerIsn + 1, iss + 1}, timestamps(kPeerTsVal, ts_val), {}));
    io.recording = false;
    io.recorded.clear();
    if (!app.conn.valid() || stack.state(app.conn) != tcp::State::established) {
      error = "the handshake did not establish the connection";
      return false;
    }
    return true;
  }
};

uint64_t total_drops(const net::StackCounters& counters) {
  uint64_t sum = 0;
  for (const auto& c : counters.drops) sum += c.get();
  return sum;
}

// Segments the stack's header prediction took, or nullopt for a tree from
// before it (built with this file for a side-by-side comparison).
template <typename Stack>
std::optional<uint64_t> predicted_of(const Stack& stack) {
  if constexpr (requires { stack.predicted_segments(); }) {
    return stack.predicted_segments();
  } else {
    return std::nullopt;
  }
}

// What the checks after a loop compare: the counters moved by exactly the
// segments the loop delivered or sent, and nothing else moved.
struct Snapshot {
  uint64_t segments_in, segments_out, bytes_in, bytes_out, out_of_order, duplicate,
      retransmitted, delayed_acks, challenge_acks, resets, sent, consumed;
  std::optional<uint64_t> predicted;

  explicit Snapshot(const Gateway& g) {
    const tcp::TcpCounters& c = g.stack.counters();
    segments_in = c.segments_in.get();
    segments_out = c.segments_out.get();
    bytes_in = c.bytes_in.get();
    bytes_out = c.bytes_out.get();
    out_of_order = c.out_of_order_segments.get();
    duplicate = c.duplicate_segments.get();
    retransmitted = c.retransmitted_segments.get();
    delayed_acks = c.delayed_acks.get();
    challenge_acks = c.challenge_acks.get();
    resets = c.resets_sent.get() + c.resets_received.get();
    sent = g.io.sent();
    consumed = g.app.consumed;
    predicted = predicted_of(g.stack);
  }
};

// How much each field of a Snapshot must have moved over a loop.
struct Deltas {
  uint64_t segments_in = 0, segments_out = 0, bytes_in = 0, bytes_out = 0, out_of_order = 0,
           sent = 0, consumed = 0;
  // Segments that took header prediction: the fast path is what is timed.
  uint64_t predicted = 0;
};

// The first discrepancy between what happened and what was intended, or "".
std::string check(const Gateway& g, const PeerRing& ring, const Snapshot& before,
                  const Deltas& want) {
  if (total_drops(g.counters) != 0) return "the stack dropped frames";
  if (g.io.outstanding() != 0) return "a buffer of the pool was neither sent nor released";
  if (g.io.released() != 0) return "the stack released a frame it had allocated";
  if (g.io.peer_frames_released() != ring.stamped() + g.handshake_frames) {
    return "a delivered frame never came back";
  }
  if (g.app.closed || g.app.peer_closed || g.stack.state(g.app.conn) != tcp::State::established) {
    return "the connection left ESTABLISHED";
  }
  const Snapshot after(g);
  const struct {
    const char* name;
    uint64_t before, after, expected;
  } rows[] = {
      {"segments_in", before.segments_in, after.segments_in, want.segments_in},
      {"segments_out", before.segments_out, after.segments_out, want.segments_out},
      {"frames sent", before.sent, after.sent, want.sent},
      {"bytes_in", before.bytes_in, after.bytes_in, want.bytes_in},
      {"bytes_out", before.bytes_out, after.bytes_out, want.bytes_out},
      {"bytes consumed", before.consumed, after.consumed, want.consumed},
      {"out_of_order_segments", before.out_of_order, after.out_of_order, want.out_of_order},
      {"duplicate_segments", before.duplicate, after.duplicate, 0},
      {"retransmitted_segments", before.retransmitted, after.retransmitted, 0},
      {"delayed_acks", before.delayed_acks, after.delayed_acks, 0},
      {"challenge_acks", before.challenge_acks, after.challenge_acks, 0},
      {"resets", before.resets, after.resets, 0},
  };
  for (const auto& r : rows) {
    if (r.after - r.before != r.expected) {
      return std::string(r.name) + " moved by " + std::to_string(r.after - r.before) +
             ", expected " + std::to_string(r.expected);
    }
  }
  if (after.predicted && *after.predicted - *before.predicted != want.predicted) {
    return "header prediction took " + std::to_string(*after.predicted - *before.predicted) +
           " segments, expected " + std::to_string(want.predicted);
  }
  return {};
}

// TSC ticks over the timed loop, per iteration.
class TscMeter {
 public:
  TscMeter() : start_(__rdtsc()) {}
  uint64_t elapsed() const noexcept { return __rdtsc() - start_; }

 private:
  uint64_t start_;
};

void report_per(benchmark::State& state, const char* name, uint64_t ticks, uint64_t count) {
  const double per = count == 0 ? 0.0 : static_cast<double>(ticks) / static_cast<double>(count);
  state.counters[name] = benchmark::Counter(per);
}

// Core clock cycles per TSC tick, now: a chain of dependent adds retires one
// add per core cycle. The core clock of these vCPUs is not the TSC's: it was
// measured between 0.96 and 1.6 cycles per tick, and it moves between such
// levels while a benchmark runs, so the harness measures it next to every
// batch. 8192 adds: ~2.5 to 4 us; rdtsc's own skew is under 1 % of that.
double core_cycles_per_tick() noexcept {
  constexpr int kAddsPerRound = 4;
  constexpr int kRounds = 2048;
  uint64_t chain = 0;
  const uint64_t start = __rdtsc();
  for (int i = 0; i < kRounds; ++i) {
    asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(chain));
  }
  const uint64_t ticks = __rdtsc() - start;
  return static_cast<double>(kAddsPerRound * kRounds) / static_cast<double>(ticks == 0 ? 1 : ticks);
}

// TSC ticks of each batch of a loop (64 received segments, one flight sent
// or its ACKs), with the core clock measured right after it. The median
// batch is the figure for a shared machine: a batch lasts microseconds, so
// the other sessions' time slices (milliseconds) and the hypervisor's
// preemptions land in a few batches, which the median leaves out, whereas
// they inflate the mean over the loop (cycles_per_segment) by up to a
// factor of three here. In core cycles (ticks x core cycles per tick of the
// batch) the median is also free of the clock's changes.
class BatchTicks {
 public:
  // Batches of items_per_batch items; at most max_iterations / min_items of
  // them (reserved up front: no allocation inside the timed loop).
  BatchTicks(const benchmark::State& state, uint64_t items_per_batch, uint64_t min_items)
      : per_batch_(items_per_batch) {
    const size_t most = static_cast<size_t>(state.max_iterations) / min_items + 1;
    ticks_.reserve(most);
    core_cycles_.reserve(most);
    clock_.reserve(most);
  }
  void add(uint64_t ticks, double core_per_tick) {
    ticks_.push_back(static_cast<double>(ticks));
    core_cycles_.push_back(static_cast<double>(ticks) * core_per_tick);
    clock_.push_back(core_per_tick);
  }
  // The median batch per item, in TSC ticks (name) and in core cycles
  // ("core_" + name); with clock_name, the median core cycles per tick.
  void report(benchmark::State& state, const std::string& name, const char* clock_name = nullptr) {
    if (ticks_.empty()) return;
    const double per = static_cast<double>(per_batch_);
    state.counters[name] = benchmark::Counter(median(ticks_) / per);
    state.counters["core_" + name] = benchmark::Counter(median(core_cycles_) / per);
    if (clock_name != nullptr) state.counters[clock_name] = benchmark::Counter(median(clock_));
  }
  uint64_t items_per_batch() const noexcept { return per_batch_; }

 private:
  static double median(std::vector<double>& v) {
    auto middle = v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2);
    std::nth_element(v.begin(), middle, v.end());
    return *middle;
  }

  uint64_t per_batch_;
  std::vector<double> ticks_;
  std::vector<double> core_cycles_;
  std::vector<double> clock_;
};

// --- receive --------------------------------------------------------------

uint32_t peer_seq_of(uint64_t segment) noexcept {
  return kPeerIsn + 1 + static_cast<uint32_t>(segment * kPayload);
}

// One iteration of the receive loop; out of line so that callgrind reports
// its inclusive cost per call (= per segment).
[[gnu::noinline]] void receive_step(Gateway& g, PeerRing& ring, uint64_t segment,
                                    bool end_of_pair) noexcept {
  g.iface.input(ring.stamp(segment % ring.size(), peer_seq_of(segment)), kNowUs);
  if (end_of_pair) g.stack.poll(kNowUs);
}

// Segments arrive in order, or with each pair swapped (1, 0, 3, 2, ...).
void run_receive(benchmark::State& state, bool reordered) {
  const size_t slots = static_cast<size_t>(state.range(0));
  Gateway g;
  std::string error;
  if (!g.open(error)) {
    fail(state, error);
    return;
  }
  PeerRing ring(peer_frame(TcpFields{kPeerIsn + 1, g.iss + 1}, timestamps(kPeerTsVal, g.ts_val),
                           pattern(kPayload)),
                slots, kSeqAt);
  // Warm-up, untimed: every slot stamped once, the receive buffer attached.
  uint64_t next = 0;
  const uint64_t warm = slots < 64 ? 64 : slots;
  for (; next < warm; ++next) receive_step(g, ring, reordered ? next ^ 1 : next, (next & 1) != 0);

  const Snapshot before(g);
  const uint64_t first = next;
  // 64 segments: whole pairs, about 20 us.
  BatchTicks batches(state, 64, 64);
  uint64_t calibration_ticks = 0;  // left out of the loop's total
  const TscMeter tsc;
  uint64_t batch_start = __rdtsc();
  for (auto _ : state) {
    receive_step(g, ring, reordered ? next ^ 1 : next, (next & 1) != 0);
    ++next;
    if ((next - first) % batches.items_per_batch() == 0) {
      const uint64_t end = __rdtsc();
      batches.add(end - batch_start, core_cycles_per_tick());
      batch_start = __rdtsc();
      calibration_ticks += batch_start - end;
    }
  }
  const uint64_t ticks = tsc.elapsed() - calibration_ticks;
  const uint64_t timed = next - first;
  report_per(state, "cycles_per_segment", ticks, timed);
  batches.report(state, "cycles_per_segment_p50", "core_per_tsc");
  state.SetItemsProcessed(static_cast<int64_t>(timed));
  state.SetBytesProcessed(static_cast<int64_t>(timed * kPayload));

  // An odd count leaves half a pair: complete it (untimed) so the checks
  // see whole pairs.
  if ((next & 1) != 0) {
    receive_step(g, ring, reordered ? next ^ 1 : next, true);
    ++next;
  }
  const uint64_t segments = next - first;
  const uint64_t pairs = segments / 2;
  // In order: one ACK per pair (RFC 5681 4.2's every second full segment).
  // Reordered: an immediate ACK for each segment, early or gap-filling.
  Deltas want;
  want.segments_in = segments;
  want.bytes_in = want.consumed = segments * kPayload;
  want.segments_out = want.sent = reordered ? segments : pairs;
  want.out_of_order = reordered ? pairs : 0;
  // Reordered: the early segment is out of order, the late one fills a gap.
  want.predicted = reordered ? 0 : segments;
  error = check(g, ring, before, want);
  if (error.empty() && g.stack.readable(g.app.conn) != 0) error = "data left unread";
  if (error.empty()) {
    // The last ACK acknowledges everything, without a SACK block.
    const net::Frame& f = g.io.last_sent();
    if (sane_frame_from_us(f.data, f.len, error) &&
        (f.data[kFlagsAt] != kAck || f.len != 66 ||
         net::load_be32(f.data + kAckAt) != peer_seq_of(next) ||
         net::load_be32(f.data + kSeqAt) != g.iss + 1)) {
      error = "the last ACK does not acknowledge every byte";
    }
  }
  if (!error.empty()) fail(state, error);
}

void BM_TcpReceive(benchmark::State& state) { run_receive(state, false); }
BENCHMARK(BM_TcpReceive)->ArgName("ring_frames")->Arg(8)->Arg(1024);

void BM_TcpReceiveReordered(benchmark::State& state) { run_receive(state, true); }
BENCHMARK(BM_TcpReceiveReordered)->ArgName("ring_frames")->Arg(8);

// --- send -----------------------------------------------------------------

// Out of line for callgrind, like receive_step: one send() + poll() is one
// segment built and transmitted.
[[gnu::noinline]] uint32_t send_step(Gateway& g, const uint8_t* payload) noexcept {
  const uint32_t taken = g.stack.send(g.app.conn, payload, kPayload);
  g.stack.poll(kNowUs);
  return taken;
}

// The peer's ACKs for segments [first, first + count), `per_ack` segments
// each.
[[gnu::noinline]] void ack_step(Gateway& g, PeerRing& acks, uint64_t first, uint32_t count,
                                uint32_t per_ack) noexcept {
  for (uint32_t k = per_ack; k <= count; k += per_ack) {
    const uint64_t acked = first + k;
    g.iface.input(acks.stamp((k / per_ack - 1) % acks.size(),
                             g.iss + 1 + static_cast<uint32_t>(acked * kPayload)),
                  kNowUs);
  }
}

void BM_TcpSend(benchmark::State& state) {
  const auto per_ack = static_cast<uint32_t>(state.range(0));
  Gateway g;
  std::string error;
  if (!g.open(error)) {
    fail(state, error);
    return;
  }
  const t::Bytes ack =
      peer_frame(TcpFields{kPeerIsn + 1, g.iss + 1}, timestamps(kPeerTsVal, g.ts_val), {});
  PeerRing acks(ack, kSendBatch / per_ack, kAckAt);
  const t::Bytes payload = pattern(kPayload);

  // Warm-up, untimed: a few flights, so that the buffers, timers and the
  // pool have been through their cycle once.
  uint64_t sent = 0;
  for (int flight = 0; flight < 8; ++flight) {
    for (uint32_t k = 0; k < kSendBatch; ++k) send_step(g, payload.data());
    ack_step(g, acks, sent, kSendBatch, per_ack);
    sent += kSendBatch;
  }

  const Snapshot before(g);
  const uint64_t first = sent;
  uint64_t refused = 0;
  uint64_t send_ticks = 0;
  uint64_t ack_ticks = 0;
  uint64_t flight_start = 0;
  BatchTicks send_flights(state, kSendBatch, kSendBatch);
  BatchTicks ack_flights(state, kSendBatch / per_ack, kSendBatch);
  uint64_t calibration_ticks = 0;  // left out of the loop's total
  const TscMeter tsc;
  for (auto _ : state) {
    if ((sent - first) % kSendBatch == 0) flight_start = __rdtsc();
    refused += send_step(g, payload.data()) != kPayload;
    ++sent;
    if ((sent - first) % kSendBatch == 0) {
      const uint64_t sent_at = __rdtsc();
      ack_step(g, acks, sent - kSendBatch, kSendBatch, per_ack);
      const uint64_t acked_at = __rdtsc();
      send_ticks += sent_at - flight_start;
      ack_ticks += acked_at - sent_at;
      const double clock = core_cycles_per_tick();
      send_flights.add(sent_at - flight_start, clock);
      ack_flights.add(acked_at - sent_at, clock);
      calibration_ticks += __rdtsc() - acked_at;
    }
  }
  const uint64_t ticks = tsc.elapsed() - calibration_ticks;
  const uint64_t timed = sent - first;
  const uint64_t timed_flights = timed / kSendBatch;
  report_per(state, "cycles_per_segment", ticks, timed);
  report_per(state, "cycles_send_per_segment", send_ticks, timed_flights * kSendBatch);
  report_per(state, "cycles_per_ack", ack_ticks, timed_flights * (kSendBatch / per_ack));
  send_flights.report(state, "cycles_send_per_segment_p50", "core_per_tsc");
  ack_flights.report(state, "cycles_per_ack_p50");
  state.SetItemsProcessed(static_cast<int64_t>(timed));
  state.SetBytesProcessed(static_cast<int64_t>(timed * kPayload));

  // A partial last flight: acknowledge it (untimed), one ACK for all of it.
  const uint32_t tail = static_cast<uint32_t>(timed % kSendBatch);
  const bool tail_acked = tail != 0;
  if (tail_acked) ack_step(g, acks, sent - tail, tail, tail);
  const uint64_t acks_sent = timed_flights * (kSendBatch / per_ack) + (tail_acked ? 1 : 0);

  Deltas want;
  want.segments_out = want.sent = timed;
  want.bytes_out = timed * kPayload;
  want.segments_in = acks_sent;
  want.predicted = acks_sent;  // pure ACKs of new data
  error = refused != 0 ? "send() refused bytes" : check(g, acks, before, want);
  if (error.empty() && g.stack.unsent_bytes(g.app.conn) != 0) error = "data left unacknowledged";
  if (error.empty()) {
    // The last segment out: full size, at the right sequence number, with
    // the application's bytes (the ACKs sent nothing after it).
    const net::Frame& f = g.io.last_sent();
    const uint32_t last_seq = g.iss + 1 + static_cast<uint32_t>((sent - 1) * kPayload);
    if (sane_frame_from_us(f.data, f.len, error) &&
        (f.len != kFullFrameLen || net::load_be32(f.data + kSeqAt) != last_seq ||
         net::load_be32(f.data + kAckAt) != kPeerIsn + 1 ||
         std::memcmp(f.data + kPayloadAt, payload.data(), kPayload) != 0)) {
      error = "the last segment sent is not the last 1448 bytes written";
    }
  }
  if (!error.empty()) fail(state, error);
}
BENCHMARK(BM_TcpSend)->ArgName("segments_per_ack")->Arg(1)->Arg(2);

// --- baselines ----------------------------------------------------------

// The receive path's one copy (the send path makes two of the same size):
// from where the payload sits in a received frame to the start of a ring.
void BM_CopyOnly(benchmark::State& state) {
  const auto len = static_cast<size_t>(state.range(0));
  const PeerRing frame(peer_frame(TcpFields{}, timestamps(0, 0), pattern(len)), 1, kSeqAt);
  std::vector<Slot> ring(64 * 1024 / sizeof(Slot));
  const uint8_t* const src = frame.data(0) + kPayloadAt;
  uint8_t* const dst = ring.front().bytes;
  const TscMeter tsc;
  for (auto _ : state) {
    benchmark::DoNotOptimize(src);
    std::memcpy(dst, src, len);
    benchmark::ClobberMemory();  // the copied bytes count as used
  }
  report_per(state, "cycles_per_segment", tsc.elapsed(), static_cast<uint64_t>(state.iterations()));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(len));
}
BENCHMARK(BM_CopyOnly)->ArgName("len")->Arg(kPayload);

// The TCP checksum's data pass: rte_raw_cksum from where the TCP header sits
// in a frame (2-byte aligned, as in an mbuf), 1448 bytes of payload alone or
// the 1480 bytes of a full segment, which is what the stack sums.
void BM_ChecksumOnly(benchmark::State& state) {
  const auto len = static_cast<size_t>(state.range(0));
  const PeerRing frame(peer_frame(TcpFields{}, timestamps(0, 0), pattern(kPayload)), 1, kSeqAt);
  const uint8_t* const src = frame.data(0) + kTcpAt;
  const TscMeter tsc;
  for (auto _ : state) {
    benchmark::DoNotOptimize(src);
    uint16_t sum = rte_raw_cksum(src, len);
    benchmark::DoNotOptimize(sum);
  }
  report_per(state, "cycles_per_segment", tsc.elapsed(), static_cast<uint64_t>(state.iterations()));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(len));
}
BENCHMARK(BM_ChecksumOnly)->ArgName("len")->Arg(kPayload)->Arg(kFullSegmentLen);

#ifdef TCP_BENCH_HAS_CHECKSUM_H
// The stack's own checksum (dataplane/net/checksum.h), each implementation
// this CPU runs, over the same bytes as BM_ChecksumOnly; registered from main()
// once the implementations are known. The stack uses checksum_impl().
void BM_Checksum(benchmark::State& state, const net::ChecksumImpl* impl) {
  const auto len = static_cast<size_t>(state.range(0));
  const PeerRing frame(peer_frame(TcpFields{}, timestamps(0, 0), pattern(kPayload)), 1, kSeqAt);
  const uint8_t* const src = frame.data(0) + kTcpAt;
  const TscMeter tsc;
  for (auto _ : state) {
    benchmark::DoNotOptimize(src);
    uint16_t sum = impl->sum(src, len);
    benchmark::DoNotOptimize(sum);
  }
  report_per(state, "cycles_per_segment", tsc.elapsed(), static_cast<uint64_t>(state.iterations()));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(len));
  if (impl->sum(src, len) != rte_raw_cksum(src, len)) fail(state, "the sum differs from DPDK's");
}

// Copy and sum in one pass (what the send path does from the send buffer
// into the frame), against BM_CopyOnly + BM_Checksum of the same length.
void BM_ChecksumCopy(benchmark::State& state, const net::ChecksumImpl* impl) {
  const auto len = static_cast<size_t>(state.range(0));
  const PeerRing frame(peer_frame(TcpFields{}, timestamps(0, 0), pattern(len)), 1, kSeqAt);
  std::vector<Slot> ring(64 * 1024 / sizeof(Slot));
  const uint8_t* const src = frame.data(0) + kPayloadAt;
  uint8_t* const dst = ring.front().bytes;
  const TscMeter tsc;
  for (auto _ : state) {
    benchmark::DoNotOptimize(src);
    uint16_t sum = impl->copy(dst, src, len);
    benchmark::DoNotOptimize(sum);
    benchmark::ClobberMemory();
  }
  report_per(state, "cycles_per_segment", tsc.elapsed(), static_cast<uint64_t>(state.iterations()));
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(len));
  if (impl->copy(dst, src, len) != rte_raw_cksum(src, len) || std::memcmp(dst, src, len) != 0) {
    fail(state, "the copy or its sum is wrong");
  }
}

#endif  // TCP_BENCH_HAS_CHECKSUM_H

// What the harness itself adds to each received frame: the re-stamp of the
// sequence number (RFC 1624 update) and the release back to BenchIo.
void BM_PeerFrameOnly(benchmark::State& state) {
  BenchIo io(1);
  PeerRing ring(peer_frame(TcpFields{}, timestamps(0, 0), pattern(kPayload)), 8, kSeqAt);
  uint64_t segment = 0;
  const TscMeter tsc;
  for (auto _ : state) {
    const net::Frame f = ring.stamp(segment % ring.size(), peer_seq_of(segment));
    benchmark::DoNotOptimize(f.data);
    io.release(f);
    ++segment;
  }
  report_per(state, "cycles_per_segment", tsc.elapsed(), static_cast<uint64_t>(state.iterations()));
  state.SetItemsProcessed(state.iterations());
  // The incremental update must leave a valid checksum (checked once here,
  // on the last stamped frame, by the independent implementation).
  const size_t last = (segment - 1) % ring.size();
  if (tcp_checksum(kPeerIp, kOurIp, ring.data(last) + kTcpAt, kFullSegmentLen) != 0) {
    fail(state, "the RFC 1624 re-stamp broke the checksum");
  }
}
BENCHMARK(BM_PeerFrameOnly);

}  // namespace

int main(int argc, char** argv) {
#ifdef TCP_BENCH_HAS_CHECKSUM_H
  for (const net::ChecksumImpl& impl : net::checksum_impls()) {
    benchmark::RegisterBenchmark((std::string("BM_Checksum/") + impl.name).c_str(), BM_Checksum, &impl)
        ->ArgName("len")
        ->Arg(kFullSegmentLen);
    benchmark::RegisterBenchmark((std::string("BM_ChecksumCopy/") + impl.name).c_str(),
                                 BM_ChecksumCopy, &impl)
        ->ArgName("len")
        ->Arg(kPayload);
  }
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
