#include "dataplane/flow_steering.h"

#include <gtest/gtest.h>
#include <rte_ethdev.h>

#include <array>
#include <bit>
#include <cstdint>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <tuple>
#include <vector>

#include "dataplane/net/tcp_isn.h"

namespace mtlsgw::dataplane {
namespace {

using net::tcp::FourTuple;

// The key of Microsoft's RSS verification suite ("Verifying the RSS Hash
// Calculation"), also the default key of many NICs.
constexpr std::array<uint8_t, 40> kVerificationKey = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa};

// The suite's IPv4/TCP rows. The 32-bit numbers are hash inputs from the
// published table, not addresses: nothing is ever sent to them, which is
// why they stay raw integers here.
struct Vector {
  uint32_t src_word;
  uint32_t dst_word;
  uint16_t src_port;
  uint16_t dst_port;
  uint32_t hash;
};
constexpr std::array<Vector, 5> kVectors = {{
    {0x420995bb, 0xa18e6450, 2794, 1766, 0x51ccc178},
    {0xc75c6f02, 0x41458c53, 14230, 4739, 0xc626b0ea},
    {0x1813c65f, 0x0c16cfb8, 12898, 38024, 0x5c2b394a},
    {0x261bcd1e, 0xd18ea306, 48228, 2217, 0xafc7327f},
    {0x9927a3bf, 0xcabc7f02, 44251, 1303, 0x10e828a2},
}};

// The device hashes the segment it receives, so a row's source is our
// flow's remote end.
FourTuple flow_of(const Vector& v) {
  return FourTuple{v.dst_word, v.dst_port, v.src_word, v.src_port};
}

constexpr uint64_t kTcpHash = RTE_ETH_RSS_IPV4 | RTE_ETH_RSS_NONFRAG_IPV4_TCP;
constexpr net::Ipv4Address kGateway = 0xc6120002;  // 198.18.0.2
constexpr net::Ipv4Address kRemotes = 0xc6130000;  // 198.19.0.0/16

// Toeplitz from its definition (Microsoft RSS specification): for every set
// bit of the input, most significant first, XOR in the 32 key bits that start
// at that bit's position. Independent of rte_thash, which FlowSteering uses.
uint32_t reference_toeplitz(std::span<const uint8_t> key, std::span<const uint8_t> input) {
  uint32_t hash = 0;
  for (size_t bit = 0; bit < input.size() * 8; ++bit) {
    if (((input[bit / 8] >> (7 - bit % 8)) & 1) == 0) continue;
    uint32_t window = 0;
    for (size_t k = 0; k < 32; ++k) {
      const size_t kb = bit + k;
      window = (window << 1) | ((key[kb / 8] >> (7 - kb % 8)) & 1);
    }
    hash ^= window;
  }
  return hash;
}

uint32_t reference_reply_hash(std::span<const uint8_t> key, const FourTuple& flow) {
  const uint32_t words[] = {flow.remote_ip, flow.local_ip};
  std::array<uint8_t, 12> input{};
  for (size_t w = 0; w < 2; ++w) {
    for (size_t b = 0; b < 4; ++b) input[w * 4 + b] = static_cast<uint8_t>(words[w] >> (24 - 8 * b));
  }
  input[8] = static_cast<uint8_t>(flow.remote_port >> 8);
  input[9] = static_cast<uint8_t>(flow.remote_port);
  input[10] = static_cast<uint8_t>(flow.local_port >> 8);
  input[11] = static_cast<uint8_t>(flow.local_port);
  return reference_toeplitz(key, input);
}

std::vector<uint16_t> round_robin(size_t size, uint16_t queues) {
  std::vector<uint16_t> reta(size);
  for (size_t i = 0; i < size; ++i) reta[i] = static_cast<uint16_t>(i % queues);
  return reta;
}

// A key as a NIC would pick it at random.
std::array<uint8_t, 40> some_key(uint32_t seed) {
  std::mt19937 rng(seed);
  std::array<uint8_t, 40> key{};
  for (uint8_t& b : key) b = static_cast<uint8_t>(rng());
  return key;
}

FlowSteering rss(std::span<const uint8_t> key, const std::vector<uint16_t>& reta, uint16_t queues,
                 uint64_t hash_types = kTcpHash) {
  FlowSteering::FromDevice made = FlowSteering::from_device({key, hash_types, reta}, queues);
  EXPECT_EQ(made.fallback_reason, "");
  EXPECT_EQ(made.steering.mode(), FlowSteering::Mode::rss);
  return made.steering;
}

// ------------------------------------------------------------- the hash

TEST(FlowSteering, ReferenceToeplitzReproducesTheVerificationSuite) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(reference_reply_hash(kVerificationKey, flow_of(v)), v.hash) << std::hex << v.hash;
  }
}

TEST(FlowSteering, ReplyHashMatchesTheVerificationSuite) {
  const FlowSteering s = rss(kVerificationKey, round_robin(128, 4), 4);
  for (const Vector& v : kVectors) EXPECT_EQ(s.reply_hash(flow_of(v)), v.hash) << std::hex << v.hash;
}

TEST(FlowSteering, ReadsOnlyTheFirstFortyBytesOfALongerKey) {
  // Some devices (i40e) report a 52-byte key; an IPv4/TCP hash never reaches
  // past byte 16.
  std::array<uint8_t, 52> key{};
  std::copy(kVerificationKey.begin(), kVerificationKey.end(), key.begin());
  for (size_t i = 40; i < key.size(); ++i) key[i] = static_cast<uint8_t>(0xa5 ^ i);
  const FlowSteering s = rss(key, round_robin(128, 4), 4);
  for (const Vector& v : kVectors) EXPECT_EQ(s.reply_hash(flow_of(v)), v.hash);
}

TEST(FlowSteering, AgreesWithTheReferenceUnderOtherKeys) {
  for (uint32_t seed = 1; seed <= 8; ++seed) {
    const auto key = some_key(seed);
    const FlowSteering s = rss(key, round_robin(128, 2), 2);
    std::mt19937 rng(seed);
    for (int i = 0; i < 200; ++i) {
      const FourTuple flow{kGateway, static_cast<uint16_t>(rng()),
                           static_cast<net::Ipv4Address>(kRemotes | (rng() & 0xffff)), static_cast<uint16_t>(rng())};
      ASSERT_EQ(s.reply_hash(flow), reference_reply_hash(key, flow)) << "seed " << seed;
    }
  }
}

// ---------------------------------------------- redirection table sizes

class RetaSize : public testing::TestWithParam<size_t> {};

TEST_P(RetaSize, OwnerIsTheEntryAtTheHashsLowBits) {
  const size_t size = GetParam();
  // The two highest index bits pick the queue, so a table indexed with too
  // few or too many hash bits gives other owners.
  const int shift = std::countr_zero(size) - 2;
  std::vector<uint16_t> reta(size);
  for (size_t i = 0; i < size; ++i) reta[i] = static_cast<uint16_t>((i >> shift) & 3);
  const FlowSteering s = rss(kVerificationKey, reta, 4);
  EXPECT_EQ(s.reta_size(), size);
  for (const Vector& v : kVectors) {
    EXPECT_EQ(s.owner(flow_of(v)), reta[v.hash & (size - 1)]) << std::hex << v.hash;
  }
  std::mt19937 rng(static_cast<uint32_t>(size));
  std::array<unsigned, 4> per_queue{};
  for (int i = 0; i < 4000; ++i) {
    const FourTuple flow{kGateway, static_cast<uint16_t>(32768 + rng() % 28232),
                         static_cast<net::Ipv4Address>(kRemotes | (rng() & 0xffff)), 443};
    const uint16_t owner = s.owner(flow);
    ASSERT_EQ(owner, reta[reference_reply_hash(kVerificationKey, flow) & (size - 1)]);
    ++per_queue[owner];
  }
  // Toeplitz output bits are close to uniform over random inputs: each
  // quarter of the table receives about 1000 of 4000 flows.
  for (unsigned n : per_queue) {
    EXPECT_GT(n, 800u);
    EXPECT_LT(n, 1200u);
  }
}

INSTANTIATE_TEST_SUITE_P(FlowSteering, RetaSize, testing::Values(64, 128, 512));

// ------------------------------------------------------ active opens

TEST(FlowSteering, ConnectLoopKeepsEveryReplyOnTheOpeningWorker) {
  // Four workers, each with its own port selector under the shared key, as
  // Worker and TcpStack set them up; the filter is Worker::owns_port's rule.
  constexpr uint16_t kWorkers = 4;
  constexpr uint32_t kMaxTries = 64;
  const SipKey sip{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  const auto key = some_key(42);
  const std::vector<uint16_t> reta = round_robin(128, kWorkers);
  const FlowSteering s = rss(key, reta, kWorkers);
  std::vector<net::tcp::EphemeralPorts> selectors(kWorkers, net::tcp::EphemeralPorts(sip));
  auto less = [](const FourTuple& a, const FourTuple& b) {
    return std::tie(a.local_ip, a.local_port, a.remote_ip, a.remote_port) <
           std::tie(b.local_ip, b.local_port, b.remote_ip, b.remote_port);
  };
  std::set<FourTuple, decltype(less)> open(less);
  uint64_t offered = 0;
  unsigned opened = 0;
  for (uint32_t r = 0; r < 50; ++r) {
    const net::Ipv4Address remote = kRemotes + 1 + r;
    for (const uint16_t remote_port : {uint16_t{443}, uint16_t{9000}}) {
      for (uint16_t w = 0; w < kWorkers; ++w) {
        for (int c = 0; c < 5; ++c) {  // several connections to one destination
          FourTuple flow{kGateway, 0, remote, remote_port};
          const uint16_t port = selectors[w].select(
              kGateway, remote, remote_port,
              [&](uint16_t candidate) {
                ++offered;
                flow.local_port = candidate;
                return !open.contains(flow) && s.owner(flow) == w;
              },
              kMaxTries);
          ASSERT_NE(port, 0) << "worker " << w << " found no port within " << kMaxTries;
          flow.local_port = port;
          EXPECT_TRUE(open.insert(flow).second);
          // The reply, hashed as the device would, lands on this worker.
          EXPECT_EQ(reta[reference_reply_hash(key, flow) & 127], w) << "port " << port;
          ++opened;
        }
      }
    }
  }
  EXPECT_EQ(opened, 50u * 2 * kWorkers * 5);
  // A quarter of the ports suit each worker: about four candidates a connect.
  const double per_connect = static_cast<double>(offered) / opened;
  EXPECT_GT(per_connect, 3.0);
  EXPECT_LT(per_connect, 5.5);
}

// ------------------------------------------------------- software mode

TEST(FlowSteering, SoftwareOwnerIsLocalPortModWorkers) {
  const FlowSteering s(3);
  EXPECT_EQ(s.mode(), FlowSteering::Mode::software);
  EXPECT_EQ(s.queues(), 3);
  for (uint16_t port : {uint16_t{32768}, uint16_t{32769}, uint16_t{32770}, uint16_t{60999}}) {
    EXPECT_EQ(s.owner({kGateway, port, kRemotes + 1, 443}), port % 3);
  }
  const FlowSteering single;
  EXPECT_EQ(single.owner({kGateway, 40001, kRemotes + 1, 443}), 0);
  EXPECT_THROW(FlowSteering(0), std::invalid_argument);
}

struct Unusable {
  const char* what;
  uint64_t hash_types;
  std::vector<uint8_t> key;
  std::vector<uint16_t> reta;
};

TEST(FlowSteering, FallsBackToSoftwareWhenTheDeviceCannotPredictQueues) {
  const std::vector<uint8_t> key(kVerificationKey.begin(), kVerificationKey.end());
  const std::vector<uint16_t> good = round_robin(128, 4);
  std::vector<uint16_t> out_of_range = good;
  out_of_range[77] = 4;
  const std::vector<Unusable> cases = {
      // net_tap: a hash-type mask, but no key or table to read back.
      {"no table (net_tap)", kTcpHash, {}, {}},
      {"no table", kTcpHash, key, {}},
      {"addresses only", RTE_ETH_RSS_IPV4, key, good},
      {"destination port only", kTcpHash | RTE_ETH_RSS_L4_DST_ONLY, key, good},
      {"short key", kTcpHash, std::vector<uint8_t>(key.begin(), key.begin() + 12), good},
      {"zero key", kTcpHash, std::vector<uint8_t>(40, 0), good},
      {"table of 96", kTcpHash, key, round_robin(96, 4)},
      {"entry beyond the queues", kTcpHash, key, out_of_range},
      {"queue 3 in no entry", kTcpHash, key, round_robin(128, 3)},
  };
  for (const Unusable& c : cases) {
    const FlowSteering::FromDevice made = FlowSteering::from_device({c.key, c.hash_types, c.reta}, 4);
    EXPECT_EQ(made.steering.mode(), FlowSteering::Mode::software) << c.what;
    EXPECT_NE(made.fallback_reason, "") << c.what;
    EXPECT_EQ(made.steering.owner({kGateway, 40001, kRemotes + 1, 443}), 40001 % 4) << c.what;
  }
}

TEST(FlowSteering, ModeNames) {
  EXPECT_EQ(to_string(FlowSteering::Mode::rss), "rss");
  EXPECT_EQ(to_string(FlowSteering::Mode::software), "software");
}

}  // namespace
}  // namespace mtlsgw::dataplane
