#pragma once
// Steps that the two-stack TCP tests (tcp_pair.h) share: their test data,
// opening a connection between the pair's sides, keeping a send buffer fed,
// and the segments a ScriptedPeer sends in a handshake.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "tcp_pair.h"

namespace mtlsgw::testing {

// n bytes from a seeded generator: a block that is lost, repeated or
// delivered out of place shows as a mismatch, which a constant fill would
// hide; different seeds tell streams apart.
inline std::string pattern(size_t n, uint32_t seed = 1) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Side `from` opens a connection to remote_ip:port for app, which records
// the handle (an invalid one when connect() refused).
inline net::tcp::ConnHandle connect_from(TcpPair& pair, TcpPair::Side& from, uint32_t remote_ip,
                                         uint16_t port, RecordingApp& app) {
  const net::tcp::ConnHandle h = from.tcp->connect(*from.iface, remote_ip, port, &app, pair.now_us);
  app.add(h);
  return h;
}

// Side b listens on port for server and side a connects to it for client.
// Returns the client's handle, invalid when either step failed; the
// handshake runs in the pair's next steps.
inline net::tcp::ConnHandle listen_and_connect(TcpPair& pair, uint16_t port, RecordingApp& server,
                                               RecordingApp& client) {
  if (!pair.b.tcp->listen(port, &server)) return {};
  return connect_from(pair, pair.a, pair.b.iface->config().address.address, port, client);
}

// Queues data from offset on h for as long as the stack takes any, and
// moves offset past what it took; true once all of data is queued. Writes
// go in pieces of at most 16 KiB, like an application's reads from a file:
// send() only fills the send buffer (segments leave at the next poll), so
// the piece size does not change what goes on the wire.
inline bool send_rest(net::tcp::TcpStack& stack, net::tcp::ConnHandle h, const std::string& data,
                      size_t& offset) {
  constexpr size_t kPiece = 16384;
  while (offset < data.size()) {
    const uint32_t n = stack.send(h, reinterpret_cast<const uint8_t*>(data.data()) + offset,
                                  static_cast<uint32_t>(std::min(data.size() - offset, kPiece)));
    if (n == 0) break;
    offset += n;
  }
  return offset == data.size();
}

// A link that loses, reorders (by 300 us) and duplicates the given fractions
// of frames.
inline dataplane::FaultSpec lossy_link(double drop, double reorder, double duplicate) {
  dataplane::FaultSpec spec;
  spec.drop = drop;
  spec.reorder = reorder;
  spec.duplicate = duplicate;
  spec.reorder_us = 300;
  return spec;
}

// The same faults on both directions of the pair's link, each direction
// with its own seed.
inline void set_faults_both_ways(TcpPair& pair, const dataplane::FaultSpec& spec, uint64_t seed_a,
                                 uint64_t seed_b) {
  pair.set_faults(pair.a, spec, seed_a);
  pair.set_faults(pair.b, spec, seed_b);
}

// --- segments of a handshake played by a ScriptedPeer ------------------------

// A segment with the given ports, sequence number and flags, no
// acknowledgment number, no options and the full 16-bit window.
inline TcpSegmentFields peer_segment(uint16_t src_port, uint16_t dst_port, uint32_t seq,
                                     uint8_t flags) {
  TcpSegmentFields s;
  s.src_port = src_port;
  s.dst_port = dst_port;
  s.seq = seq;
  s.flags = flags;
  return s;
}

// The peer's SYN,ACK (its ISN: seq) to the SYN the stack sent.
inline TcpSegmentFields syn_ack_to(const TcpCapture& syn, uint32_t seq) {
  TcpSegmentFields s = peer_segment(syn.seg.dst_port, syn.seg.src_port, seq,
                                    net::tcp::kFlagSyn | net::tcp::kFlagAck);
  s.ack = syn.seq() + 1;
  return s;
}

// What the peer sends after its SYN or SYN,ACK: the same ports, window and
// options, the sequence number after the SYN, flags ACK, acknowledging ack.
inline TcpSegmentFields after_syn(const TcpSegmentFields& syn, uint32_t ack) {
  TcpSegmentFields s = syn;
  s.seq = syn.seq + 1;
  s.ack = ack;
  s.flags = net::tcp::kFlagAck;
  return s;
}

// An active open towards a ScriptedPeer, accepted by hand: the stack's one
// SYN is answered with a SYN,ACK carrying seq and options, which establishes
// the connection. Returns the stack's ISS and the peer's next segment (an ACK
// without options), or nullopt when the stack had not sent exactly one
// segment.
struct AcceptedSyn {
  uint32_t iss = 0;
  TcpSegmentFields next;
};
inline std::optional<AcceptedSyn> accept_syn(ScriptedPeer& peer, uint32_t seq,
                                             const TcpOptionSpec& options) {
  const std::vector<TcpCapture> out = peer.take();
  if (out.size() != 1) return std::nullopt;
  TcpSegmentFields syn_ack = syn_ack_to(out[0], seq);
  syn_ack.options = options;
  peer.send(syn_ack);
  AcceptedSyn accepted{out[0].seq(), after_syn(syn_ack, syn_ack.ack)};
  accepted.next.options = TcpOptionSpec{};
  return accepted;
}

// Side a connected to a receiver the test plays by hand (a ScriptedPeer at
// 198.18.0.9, port 443), which accepted the SYN with syn_ack_options: for
// tests that decide every ACK the sender sees. accepted is empty when the
// SYN did not come as expected.
struct ScriptedReceiver {
  explicit ScriptedReceiver(const TcpOptionSpec& syn_ack_options)
      : h(connect_from(pair, pair.a, peer.ip(), 443, client)),
        accepted(accept_syn(peer, 9000, syn_ack_options)) {}

  // Receives in order for at most max_ms steps of 1 ms, or until received
  // holds size bytes: each segment that continues the stream at expect is
  // kept, and every segment is answered with ack acknowledging what has
  // been received.
  void receive_in_order(TcpSegmentFields& ack, uint32_t& expect, std::string& received, size_t size,
                        int max_ms) {
    for (int i = 0; i < max_ms && received.size() < size; ++i) {
      pair.step(1'000);
      for (const auto& c : peer.take()) {
        if (c.seq() == expect && !c.payload.empty()) {
          received += c.payload;
          expect += static_cast<uint32_t>(c.payload.size());
        }
        ack.ack = expect;
        peer.send(ack);
      }
    }
  }

  TcpPair pair;
  ScriptedPeer peer{pair, pair.a, ip(198, 18, 0, 9)};
  RecordingApp client;
  net::tcp::ConnHandle h;
  std::optional<AcceptedSyn> accepted;
};

}  // namespace mtlsgw::testing
