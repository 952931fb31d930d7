// Micro-benchmarks of the protocol layers (src/dataplane/net), without EAL:
// frames go through a real net::Interface configured like the gateway in
// scripts/gateway-netns, over HeapFrameIo (a fixed pool of heap buffers that
// recycles every frame the stack sends or releases, recording nothing).
//
// What one iteration costs, and what it leaves out:
// - A frame benchmark takes a buffer from the pool and copies a template
//   frame into it before handing it to the stack: the stack rewrites frames
//   in place (an echo reply overwrites its request), so each iteration needs
//   a fresh copy. That memcpy is part of the measured cost. BM_CopyOnly/<len>
//   measures only the buffer round trip and the copy; the stack's own cost is
//   a benchmark minus the BM_CopyOnly of the same frame length.
// - The pool is small and LIFO, so the same buffer comes back every time and
//   stays in L1: these are hot-cache figures. A NIC writes each frame into a
//   different mbuf, and the PMD's rx/tx bursts are not here at all (net_tap
//   costs a system call per packet).
// - cycles_per_frame is TSC ticks per iteration, read with rdtsc around the
//   timed loop: reference cycles at the TSC rate (constant, see
//   docs/benchmarks.md), not core clock cycles.
// - After the loop each benchmark checks that every frame took the path it is
//   named after (sent or dropped for the named reason, none leaked), so a
//   change in the stack cannot silently turn a benchmark into another one.

#include <benchmark/benchmark.h>
#include <x86intrin.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "dataplane/net/arp_cache.h"
#include "dataplane/net/drop_reason.h"
#include "dataplane/net/frame.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/stack_counters.h"
#include "heap_frame_io.h"
#include "packet_builder.h"

namespace {

namespace net = mtlsgw::net;
namespace t = mtlsgw::testing;

// Addresses of scripts/gateway-netns: the gateway and the kernel behind the TAP.
const rte_ether_addr kOurMac = t::mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x02});
const rte_ether_addr kPeerMac = t::mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x01});
const rte_ether_addr kOtherMac = t::mac({0x02, 0x00, 0xc6, 0x12, 0x00, 0x63});
const uint32_t kOurIp = t::ip(198, 18, 0, 2);
const uint32_t kPeerIp = t::ip(198, 18, 0, 1);
constexpr uint64_t kNowUs = 1'000'000;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kProtocolIcmp = 1;
constexpr uint8_t kProtocolTcp = 6;
constexpr uint16_t kArpRequest = 1;
constexpr size_t kPoolBuffers = 8;
constexpr size_t kArpEntries = 64;

// Set when a benchmark found its frames on another path than it is named
// after; main() then exits non-zero, so `meson test --benchmark` fails too
// (Google Benchmark 1.7 itself exits 0 after SkipWithError).
bool g_failed = false;

void fail(benchmark::State& state, const char* message) {
  g_failed = true;
  state.SkipWithError(message);
}

net::InterfaceConfig gateway_config() {
  net::InterfaceConfig config;
  config.mac = kOurMac;
  config.address = net::Ipv4Prefix{kOurIp, 24};
  config.gateway = kPeerIp;
  return config;
}

// What one worker owns for one port: buffers, counters, the interface.
struct Stack {
  t::HeapFrameIo io{kPoolBuffers, /*record_sent=*/false};
  net::StackCounters counters;
  net::Interface iface{gateway_config(), io, counters};
};

// TSC ticks over the timed loop, reported per iteration.
class TscMeter {
 public:
  TscMeter() : start_(__rdtsc()) {}
  void report(benchmark::State& state) const {
    state.counters["cycles_per_frame"] = benchmark::Counter(
        static_cast<double>(__rdtsc() - start_), benchmark::Counter::kAvgIterations);
  }

 private:
  uint64_t start_;
};

t::Bytes pattern(size_t len) {
  t::Bytes out(len);
  for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
  return out;
}

// The kernel behind the TAP pinging us, as `ping -s payload` sends it.
t::Bytes echo_request(size_t payload) {
  t::Ipv4Fields ip;
  ip.src = kPeerIp;
  ip.dst = kOurIp;
  ip.protocol = kProtocolIcmp;
  const t::Bytes icmp = t::icmp_echo(kIcmpEchoRequest, 0x4d47, 1, pattern(payload));
  return t::eth_frame(kOurMac, kPeerMac, RTE_ETHER_TYPE_IPV4, t::ipv4_packet(ip, icmp));
}

// The kernel resolving our address: 42 bytes, unpadded, as a TAP delivers it.
t::Bytes arp_request() {
  return t::eth_frame(t::broadcast_mac(), kPeerMac, RTE_ETHER_TYPE_ARP,
                      t::arp_payload(kArpRequest, kPeerMac, kPeerIp, rte_ether_addr{}, kOurIp));
}

// What the frames must have become, checked after the timed loop.
struct Expect {
  uint64_t sent_per_frame = 0;
  std::optional<net::DropReason> drop;  // every frame dropped for this reason
};

uint64_t total_drops(const net::StackCounters& counters) {
  uint64_t sum = 0;
  for (const auto& c : counters.drops) sum += c.get();
  return sum;
}

void finish(benchmark::State& state, const Stack& s, const Expect& expect, size_t frame_len) {
  const auto n = static_cast<uint64_t>(state.iterations());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame_len));
  if (state.error_occurred()) return;
  std::string error;
  if (s.io.outstanding() != 0) {
    error = "a frame was neither sent nor released";
  } else if (s.io.sent_count() != n * expect.sent_per_frame) {
    error = "sent " + std::to_string(s.io.sent_count()) + " frames for " + std::to_string(n);
  } else if (total_drops(s.counters) != (expect.drop ? n : 0)) {
    error = "dropped " + std::to_string(total_drops(s.counters)) + " frames of " +
            std::to_string(n);
  } else if (expect.drop && s.counters.dropped(*expect.drop) != n) {
    error = "frames dropped for another reason than " + std::string(net::name_of(*expect.drop));
  }
  if (!error.empty()) fail(state, error.c_str());
}

// Receives `frame` once per iteration: pool buffer + copy + Interface::input.
void run_input(benchmark::State& state, const t::Bytes& frame, const Expect& expect) {
  Stack s;
  const uint8_t* const bytes = frame.data();
  const size_t len = frame.size();
  const TscMeter tsc;
  for (auto _ : state) {
    // The copy is part of the measured cost (see BM_CopyOnly).
    net::Frame f = s.io.receive(bytes, len);
    if (f.data == nullptr) {
      fail(state, "buffer pool empty: the stack leaked a frame");
      break;
    }
    s.iface.input(f, kNowUs);
  }
  tsc.report(state);
  finish(state, s, expect, len);
}

// Baseline: only the pool round trip and the memcpy every frame benchmark
// pays. Lengths: 42 ARP, 54 TCP ACK out, 106 echo/64, 1042 echo/1000,
// 1514 full-size out.
void BM_CopyOnly(benchmark::State& state) {
  Stack s;
  const t::Bytes frame = pattern(static_cast<size_t>(state.range(0)));
  const uint8_t* const bytes = frame.data();
  const size_t len = frame.size();
  const TscMeter tsc;
  for (auto _ : state) {
    net::Frame f = s.io.receive(bytes, len);
    benchmark::DoNotOptimize(f.data);
    benchmark::ClobberMemory();  // the copied bytes count as used
    s.io.release(f);
  }
  tsc.report(state);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(len));
}
BENCHMARK(BM_CopyOnly)->ArgName("frame_len")->Arg(42)->Arg(54)->Arg(106)->Arg(1042)->Arg(1514);

// 1. Echo request in, reply out in the same buffer: Ethernet -> IPv4 -> ICMP,
//    with the ICMP checksum verified and recomputed over the whole payload.
void BM_IcmpEcho(benchmark::State& state) {
  run_input(state, echo_request(static_cast<size_t>(state.range(0))), Expect{1, std::nullopt});
}
BENCHMARK(BM_IcmpEcho)->ArgName("payload")->Arg(64)->Arg(1000);

// 2. ARP request for our address in, reply out in the same buffer (the
//    sender is merged into the neighbour table each time).
void BM_ArpRequest(benchmark::State& state) {
  run_input(state, arp_request(), Expect{1, std::nullopt});
}
BENCHMARK(BM_ArpRequest);

// 3a. Dropped at the first check: unicast to another MAC.
void BM_DropWrongDstMac(benchmark::State& state) {
  t::Bytes frame = echo_request(64);
  std::memcpy(frame.data(), &kOtherMac, sizeof kOtherMac);
  run_input(state, frame, Expect{0, net::DropReason::eth_not_for_us});
}
BENCHMARK(BM_DropWrongDstMac);

// 3b. Dropped after Ethernet and most of IPv4 parsing: bad header checksum.
void BM_DropBadIpv4Checksum(benchmark::State& state) {
  t::Bytes frame = echo_request(64);
  frame[14 + 10] ^= 0x5a;  // IPv4 header checksum, after the 14-byte Ethernet header
  run_input(state, frame, Expect{0, net::DropReason::ipv4_bad_checksum});
}
BENCHMARK(BM_DropBadIpv4Checksum);

// 4. Neighbour lookups that hit, cycling over all 64 entries of a table of
//    default capacity (the counter is per lookup here; no frame involved).
void BM_ArpCacheLookupHit(benchmark::State& state) {
  net::ArpCache cache;
  std::array<net::Ipv4Address, kArpEntries> addresses{};
  net::Frame ready[net::ArpCache::kHoldPerEntry];
  for (size_t i = 0; i < kArpEntries; ++i) {
    addresses[i] = t::ip(198, 18, 0, static_cast<uint8_t>(10 + i));
    const rte_ether_addr mac = t::mac({0x02, 0x00, 0xc6, 0x12, 0x00, static_cast<uint8_t>(10 + i)});
    cache.learn(addresses[i], mac, kNowUs, /*create=*/true, ready);
  }
  if (cache.size() != kArpEntries) {
    fail(state, "the table did not take 64 entries");
    return;
  }
  uint64_t hits = 0;
  size_t next = 0;
  const TscMeter tsc;
  for (auto _ : state) {
    rte_ether_addr mac;
    const net::ArpCache::Lookup result = cache.lookup(addresses[next], kNowUs, &mac);
    benchmark::DoNotOptimize(mac);
    hits += result == net::ArpCache::Lookup::hit;
    next = (next + 1) % kArpEntries;
  }
  tsc.report(state);
  state.SetItemsProcessed(state.iterations());
  if (hits != static_cast<uint64_t>(state.iterations())) fail(state, "a lookup missed");
}
BENCHMARK(BM_ArpCacheLookupHit);

// 5. The transmit path the transport layers will use: a prepared IPv4
//    datagram (TCP, 1500 bytes = a full MTU, 40 = a bare ACK) handed to
//    Interface::output_ipv4 towards a resolved on-link neighbour, which adds
//    the Ethernet header (and pads the ACK to 60 bytes).
void BM_OutputIpv4(benchmark::State& state) {
  const size_t datagram_len = static_cast<size_t>(state.range(0));
  t::Ipv4Fields ip;
  ip.src = kOurIp;
  ip.dst = kPeerIp;
  ip.protocol = kProtocolTcp;
  t::Bytes frame(14, 0);  // room for the Ethernet header output_ipv4 writes
  const t::Bytes datagram = t::ipv4_packet(ip, pattern(datagram_len - 20));
  frame.insert(frame.end(), datagram.begin(), datagram.end());

  Stack s;
  s.iface.learn(kPeerIp, kPeerMac, kNowUs, /*create=*/true);
  const uint8_t* const bytes = frame.data();
  const size_t len = frame.size();
  const TscMeter tsc;
  for (auto _ : state) {
    // The copy is part of the measured cost (see BM_CopyOnly).
    net::Frame f = s.io.receive(bytes, len);
    if (f.data == nullptr) {
      fail(state, "buffer pool empty: the stack leaked a frame");
      break;
    }
    s.iface.output_ipv4(f, kPeerIp, kNowUs);
  }
  tsc.report(state);
  finish(state, s, Expect{1, std::nullopt}, len);
}
BENCHMARK(BM_OutputIpv4)->ArgName("datagram_len")->Arg(40)->Arg(1500);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
