#pragma once
// Two TCP stacks wired back to back in one process, without EAL: each side
// is a real Interface + TcpStack; frames cross a fake link that may pass
// through a FaultInjector. Time is simulated, so retransmission timeouts,
// delayed ACKs and TIME-WAIT run in microseconds of real time.

#include <cstring>
#include <deque>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "dataplane/fault_injector.h"
#include "dataplane/net/interface.h"
#include "dataplane/net/tcp_stack.h"
#include "heap_frame_io.h"
#include "packet_builder.h"

namespace mtlsgw::testing {

// One end of the link: buffers from a shared pool; sent frames wait in an
// outbox until the harness carries them across.
class LinkEnd final : public net::FrameIo {
 public:
  explicit LinkEnd(HeapFrameIo& pool) : pool_(pool) {}
  bool alloc(net::Frame& out) noexcept override { return pool_.alloc(out); }
  void release(const net::Frame& frame) noexcept override { pool_.release(frame); }
  void send(const net::Frame& frame) noexcept override { outbox.push_back(frame); }
  std::deque<net::Frame> outbox;

 private:
  HeapFrameIo& pool_;
};

// Records what the stack tells an application and keeps what it reads.
struct RecordingApp : net::tcp::TcpApp {
  struct Conn {
    net::tcp::ConnHandle handle;
    std::string received;
    bool peer_closed = false;
    bool closed = false;
    net::tcp::CloseReason reason = net::tcp::CloseReason::closed;
    bool connected = false;
  };
  std::vector<Conn> conns;
  bool auto_read = true;
  bool echo = false;

  Conn* find(net::tcp::ConnHandle h) {
    for (auto& c : conns) {
      if (c.handle == h) return &c;
    }
    return nullptr;
  }
  Conn& add(net::tcp::ConnHandle h) {
    conns.push_back(Conn{h});
    return conns.back();
  }
  void on_accepted(net::tcp::TcpStack&, net::tcp::ConnHandle h, const net::tcp::FourTuple&) noexcept override {
    add(h).connected = true;
  }
  void on_connected(net::tcp::TcpStack&, net::tcp::ConnHandle h) noexcept override {
    Conn* c = find(h);
    if (c == nullptr) c = &add(h);
    c->connected = true;
  }
  void on_readable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    if (!auto_read) return;
    Conn* c = find(h);
    uint8_t buf[4096];
    for (;;) {
      // An echo reads no more than it can send: back-pressure, not loss.
      const uint32_t room = echo ? std::min<uint32_t>(stack.send_space(h), sizeof buf) : sizeof buf;
      if (room == 0) break;
      const uint32_t n = stack.read(h, buf, room);
      if (n == 0) break;
      if (c != nullptr) c->received.append(reinterpret_cast<char*>(buf), n);
      if (echo) stack.send(h, buf, n);
    }
    if (echo && c != nullptr && c->peer_closed && stack.readable(h) == 0) stack.shutdown(h);
  }
  void on_writable(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    on_readable(stack, h);
  }
  void on_peer_closed(net::tcp::TcpStack& stack, net::tcp::ConnHandle h) noexcept override {
    if (Conn* c = find(h)) c->peer_closed = true;
    if (echo && stack.readable(h) == 0) stack.shutdown(h);
  }
  void on_closed(net::tcp::TcpStack&, net::tcp::ConnHandle h, net::tcp::CloseReason reason) noexcept override {
    if (Conn* c = find(h)) {
      c->closed = true;
      c->reason = reason;
    }
  }
};

class TcpPair {
 public:
  struct Side {
    std::unique_ptr<LinkEnd> link;
    std::unique_ptr<dataplane::FaultInjector> faults;  // on this side's transmit
    net::StackCounters counters;
    std::unique_ptr<net::Interface> iface;
    std::unique_ptr<net::tcp::TcpStack> tcp;
  };

  explicit TcpPair(const net::tcp::TcpConfig& config = small_config(), size_t pool = 8192)
      : TcpPair(config, config, pool) {}
  // Each side with its own configuration (a: the client side, b: the server).
  TcpPair(const net::tcp::TcpConfig& config_a, const net::tcp::TcpConfig& config_b,
          size_t pool = 8192)
      : pool_(pool, false) {
    init(a, mac({2, 0, 0xc6, 0x12, 0, 2}), ip(198, 18, 0, 2), config_a, SipKey{1, 2});
    init(b, mac({2, 0, 0xc6, 0x12, 0, 1}), ip(198, 18, 0, 1), config_b, SipKey{3, 4});
  }
  ~TcpPair() {
    // Stacks release frames into the pool: drop in-flight frames first.
    for (Side* s : {&a, &b}) {
      if (s->faults) s->faults->drain();
      for (const auto& f : s->link->outbox) pool_.release(f);
      s->link->outbox.clear();
    }
  }

  static net::tcp::TcpConfig small_config() {
    net::tcp::TcpConfig c;
    c.max_connections = 256;
    c.max_half_open = 64;
    c.buffer_size = 64 * 1024;
    c.buffer_pool = 256;
    c.time_wait_us = 2'000'000;
    return c;
  }

  // Sees every frame a side transmits, before it crosses the link (and
  // before that side's fault injector). Taps run in the order they were
  // added, and each sees every frame, even one an earlier tap has already
  // taken off. A tap may rewrite the frame in place; false takes it off the
  // link (the frame is released). Tests use taps to watch segments, to lose
  // chosen ones and to play a peer by hand.
  using Tap = std::function<bool(Side& from, net::Frame& frame)>;
  void add_tap(Tap tap) { taps_.push_back(std::move(tap)); }

  // A frame as a port would deliver it to side `to` (crafted segments).
  void inject(Side& to, const Bytes& frame) {
    if (frame.size() > HeapFrameIo::kBufferSize - HeapFrameIo::kHeadroom) {
      throw std::length_error("crafted frame larger than a pool buffer");
    }
    net::Frame f = pool_.receive(frame);
    if (f.data != nullptr) to.iface->input(f, now_us);
  }

  void set_faults(Side& side, const dataplane::FaultSpec& spec, uint64_t seed) {
    side.faults = std::make_unique<dataplane::FaultInjector>(spec, seed, *side.link);
  }

  // One step of simulated time: carry frames both ways, run timers.
  void step(uint64_t dt_us = 50) {
    now_us += dt_us;
    for (int round = 0; round < 4; ++round) {
      carry(a, b);
      carry(b, a);
    }
    a.tcp->poll(now_us);
    b.tcp->poll(now_us);
    a.iface->tick(now_us);
    b.iface->tick(now_us);
  }

  template <typename Pred>
  bool run_until(Pred&& done, uint64_t max_us = 30'000'000, uint64_t dt_us = 50) {
    const uint64_t end = now_us + max_us;
    while (now_us < end) {
      if (done()) return true;
      step(dt_us);
    }
    return done();
  }
  void run_for(uint64_t us, uint64_t dt_us = 50) {
    const uint64_t end = now_us + us;
    while (now_us < end) step(dt_us);
  }

  Side a, b;
  uint64_t now_us = 1'000'000;
  uint64_t frames_carried = 0;
  HeapFrameIo& pool() { return pool_; }

 private:
  void init(Side& s, const rte_ether_addr& m, uint32_t address, const net::tcp::TcpConfig& config,
            const SipKey& key) {
    s.link = std::make_unique<LinkEnd>(pool_);
    net::InterfaceConfig ic;
    ic.mac = m;
    ic.address = net::Ipv4Prefix{address, 24};
    s.iface = std::make_unique<net::Interface>(ic, *s.link, s.counters);
    s.tcp = std::make_unique<net::tcp::TcpStack>(config, key, now_us);
    s.iface->set_tcp(s.tcp.get());
  }

  void carry(Side& from, Side& to) {
    auto deliver = [&](const net::Frame& f) {
      ++frames_carried;
      to.iface->input(f, now_us);
    };
    if (from.faults) from.faults->release_due(now_us, deliver);
    while (!from.link->outbox.empty()) {
      net::Frame f = from.link->outbox.front();
      from.link->outbox.pop_front();
      bool keep = true;
      for (auto& tap : taps_) keep = tap(from, f) && keep;
      if (!keep) {
        pool_.release(f);
        continue;
      }
      if (from.faults) {
        from.faults->push(f, now_us, deliver);
      } else {
        deliver(f);
      }
    }
  }

  HeapFrameIo pool_;
  std::vector<Tap> taps_;
};

// --- looking at what a stack sent --------------------------------------------

// One TCP segment a stack put on the link, copied out of its frame.
struct TcpCapture {
  uint64_t at_us = 0;
  uint32_t src_ip = 0;
  uint32_t dst_ip = 0;
  net::tcp::Segment seg;  // seg.payload is cleared: the frame is gone
  std::string payload;

  bool has(uint8_t flag) const { return seg.has(flag); }
  uint32_t seq() const { return seg.seq; }
  uint32_t ack() const { return seg.ack; }
};

// Parses an Ethernet frame holding IPv4 + TCP with the stack's own parser
// (net::tcp::parse, checksum included); nullopt for anything else.
inline std::optional<TcpCapture> parse_tcp_frame(const uint8_t* p, size_t len, uint64_t at_us = 0) {
  constexpr size_t kEth = 14;
  if (len < kEth + 20 || p[12] != 0x08 || p[13] != 0x00) return std::nullopt;
  const uint8_t* iph = p + kEth;
  const size_t ihl = size_t{iph[0] & 0x0fu} * 4;
  const size_t total = size_t{iph[2]} << 8 | iph[3];
  if ((iph[0] >> 4) != 4 || iph[9] != 6 || ihl < 20 || total < ihl || kEth + total > len) {
    return std::nullopt;
  }
  TcpCapture c;
  c.at_us = at_us;
  c.src_ip = uint32_t{iph[12]} << 24 | uint32_t{iph[13]} << 16 | uint32_t{iph[14]} << 8 | iph[15];
  c.dst_ip = uint32_t{iph[16]} << 24 | uint32_t{iph[17]} << 16 | uint32_t{iph[18]} << 8 | iph[19];
  if (net::tcp::parse(iph + ihl, static_cast<uint16_t>(total - ihl), c.src_ip, c.dst_ip, c.seg)) {
    return std::nullopt;
  }
  if (c.seg.payload_len != 0) c.payload.assign(reinterpret_cast<const char*>(c.seg.payload), c.seg.payload_len);
  c.seg.payload = nullptr;
  return c;
}
inline std::optional<TcpCapture> parse_tcp_frame(const net::Frame& f, uint64_t at_us = 0) {
  return parse_tcp_frame(f.data, f.len, at_us);
}

// Rewrites the options of the given kinds in a TCP frame into NOPs and fixes
// the checksum: the way a test takes SACK-permitted (kind 4) or timestamps
// (kind 8) out of a SYN so that a connection runs without them (RFC 2018 2,
// RFC 7323 3.2: an option absent from either SYN is off). True if any was
// found.
inline bool strip_tcp_options(net::Frame& f, std::initializer_list<uint8_t> kinds) {
  constexpr size_t kEth = 14;
  uint8_t* iph = f.data + kEth;
  if (f.len < kEth + 40 || iph[9] != 6) return false;
  const size_t ihl = size_t{iph[0] & 0x0fu} * 4;
  const size_t total = size_t{iph[2]} << 8 | iph[3];
  uint8_t* tcp = iph + ihl;
  const size_t tcp_len = total - ihl;
  const size_t header_len = static_cast<size_t>(tcp[12] >> 4) * 4;
  bool found = false;
  for (size_t at = 20; at < header_len;) {
    const uint8_t kind = tcp[at];
    if (kind == 0) break;
    if (kind == 1) {
      ++at;
      continue;
    }
    const uint8_t len = tcp[at + 1];
    if (len < 2 || at + len > header_len) break;
    for (uint8_t k : kinds) {
      if (k == kind) {
        std::memset(tcp + at, 1, len);
        found = true;
      }
    }
    at += len;
  }
  if (found) {
    const uint32_t src = uint32_t{iph[12]} << 24 | uint32_t{iph[13]} << 16 | uint32_t{iph[14]} << 8 | iph[15];
    const uint32_t dst = uint32_t{iph[16]} << 24 | uint32_t{iph[17]} << 16 | uint32_t{iph[18]} << 8 | iph[19];
    tcp[16] = tcp[17] = 0;
    const uint16_t sum = tcp_checksum(tcp, tcp_len, src, dst);
    tcp[16] = static_cast<uint8_t>(sum >> 8);
    tcp[17] = static_cast<uint8_t>(sum);
  }
  return found;
}

// A number from TcpStack::describe(), e.g. describe_field(d, "cwnd"); -1 when
// the key is missing. Lets tests read sequence and window state through the
// stack's public telemetry line rather than through a test-only hook.
inline int64_t describe_field(const std::string& d, const std::string& key) {
  const std::string k = " " + key + "=";
  size_t at = d.find(k);
  if (at == std::string::npos) return -1;
  at += k.size();
  int64_t v = 0;
  bool any = false;
  while (at < d.size() && d[at] >= '0' && d[at] <= '9') {
    v = v * 10 + (d[at++] - '0');
    any = true;
  }
  return any ? v : -1;
}

// A remote host played by the test: it crafts segments into one side of a
// TcpPair and collects what that side sends to its address. Frames to it are
// taken off the link, so the other side of the pair never sees them. Its MAC
// is put in the side's ARP cache (and refreshed on every segment it sends),
// and an ARP request for it is answered, so no segment waits for
// resolution.
class ScriptedPeer {
 public:
  ScriptedPeer(TcpPair& pair, TcpPair::Side& target, uint32_t address,
               const rte_ether_addr& peer_mac = mac({2, 0, 0, 0, 0, 0x77}))
      : pair_(pair), target_(target), ip_(address), mac_(peer_mac) {
    target_.iface->learn(ip_, mac_, pair_.now_us, true);
    pair_.add_tap([this](TcpPair::Side& from, net::Frame& f) { return on_frame(from, f); });
  }
  ScriptedPeer(const ScriptedPeer&) = delete;
  ScriptedPeer& operator=(const ScriptedPeer&) = delete;

  uint32_t ip() const { return ip_; }
  uint32_t target_ip() const { return target_.iface->config().address.address; }

  // Sends one segment from this host to the target's address.
  void send(const TcpSegmentFields& f) {
    target_.iface->learn(ip_, mac_, pair_.now_us, true);
    pair_.inject(target_, tcp_frame(target_.iface->config().mac, mac_, ip_, target_ip(), f));
  }

  // Segments the target sent to this host, oldest first, and not yet taken.
  // Those the target already put in its outbox are collected first.
  std::vector<TcpCapture> take() {
    collect();
    std::vector<TcpCapture> out;
    out.swap(inbox_);
    return out;
  }
  // Every TCP segment the target sent to anyone, for attack tests that
  // spoof a real host and watch the target's answers to it.
  std::vector<TcpCapture> seen_by_anyone;

  // Moves frames waiting in the target's outbox through the tap now,
  // without advancing time (the pair's step() would also do it).
  void collect() {
    auto& outbox = target_.link->outbox;
    std::deque<net::Frame> keep;
    while (!outbox.empty()) {
      net::Frame f = outbox.front();
      outbox.pop_front();
      if (on_frame(target_, f)) {
        keep.push_back(f);
      } else {
        pair_.pool().release(f);
      }
    }
    outbox.swap(keep);
  }

 private:
  bool on_frame(TcpPair::Side& from, net::Frame& f) {
    if (&from != &target_) return true;
    // ARP request (RFC 826) for our address: answer it.
    if (f.len >= 42 && f.data[12] == 0x08 && f.data[13] == 0x06 && f.data[21] == 1) {
      const uint32_t wanted = uint32_t{f.data[38]} << 24 | uint32_t{f.data[39]} << 16 |
                              uint32_t{f.data[40]} << 8 | f.data[41];
      if (wanted == ip_) {
        target_.iface->learn(ip_, mac_, pair_.now_us, true);
        return false;
      }
      return true;
    }
    std::optional<TcpCapture> c = parse_tcp_frame(f, pair_.now_us);
    if (!c) return true;
    seen_by_anyone.push_back(*c);
    if (c->dst_ip != ip_) return true;
    inbox_.push_back(std::move(*c));
    return false;
  }

  TcpPair& pair_;
  TcpPair::Side& target_;
  uint32_t ip_;
  rte_ether_addr mac_;
  std::vector<TcpCapture> inbox_;
};

}  // namespace mtlsgw::testing
