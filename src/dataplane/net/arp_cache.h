#pragma once
// The neighbour table of one interface on one worker (RFC 826, RFC 1122
// 2.3.2). Owned by a single worker: no locks, no allocation after
// construction. Learning from other workers arrives as messages (see
// dataplane/worker.cc), never as shared writes.
//
// States follow RFC 1122 2.3.2.1's "unicast poll" approach, as Linux does:
//   incomplete -> broadcast requests every retry interval, frames held;
//   reachable  -> confirmed within reachable_us;
//   stale      -> still used, but the next use sends a unicast poll;
//   failed     -> no answer after max_probes: frames dropped, new resolutions
//                 refused for a hold-down (so a dead next hop costs one request
//                 per hold-down, not one per packet).

#include <rte_ether.h>

#include <cstdint>
#include <vector>

#include "common/flat_index.h"
#include "dataplane/net/frame.h"
#include "dataplane/net/ipv4_address.h"

namespace mtlsgw::net {

class ArpCache {
 public:
  struct Params {
    uint32_t capacity = 256;  // rounded up to a power of two; 3/4 of it hold entries
    // Linux's base_reachable_time is 30 s; RFC 1122 2.3.2.1 leaves it to us.
    uint64_t reachable_us = 30'000'000;
    uint64_t retry_us = 1'000'000;
    uint8_t max_probes = 3;
    uint64_t failed_holddown_us = 3'000'000;
    // A stale entry nobody used for this long is forgotten.
    uint64_t stale_gc_us = 120'000'000;
  };
  // RFC 1122 2.3.2.2: SHOULD save at least one (the latest) packet per
  // unresolved address. Linux keeps a small bounded queue; so do we.
  static constexpr uint8_t kHoldPerEntry = 4;

  enum class State : uint8_t { empty, incomplete, reachable, stale, failed };

  enum class Lookup : uint8_t {
    hit,          // mac is valid, send now
    hit_stale,    // mac is valid, send now, and send a unicast poll
    started,      // new resolution: hold the frame, broadcast a request
    pending,      // resolution under way: hold the frame
    failed,       // next hop did not answer recently: drop
    full,         // no slot: drop
  };

  // What tick() asks its caller to do.
  class Events {
   public:
    virtual ~Events() = default;
    // Send an ARP request for ip; unicast_to is null for a broadcast.
    virtual void send_request(Ipv4Address ip, const rte_ether_addr* unicast_to) noexcept = 0;
    // A held frame whose next hop never answered: the caller frees it.
    virtual void drop_unresolved(const Frame& frame) noexcept = 0;
  };

  struct Snapshot {
    Ipv4Address ip;
    rte_ether_addr mac;
    State state;
    uint64_t age_us;
  };

  ArpCache() : ArpCache(Params{}) {}
  explicit ArpCache(const Params& params);

  Lookup lookup(Ipv4Address ip, uint64_t now_us, rte_ether_addr* mac) noexcept;

  // Parks a frame until ip resolves. When the entry's queue is full the
  // oldest frame is pushed out into *evicted (returns true in that case).
  bool hold(Ipv4Address ip, const Frame& frame, Frame* evicted) noexcept;

  struct Learned {
    bool changed = false;  // new entry, or the MAC moved
    bool known = false;    // an entry exists now (created or updated)
    uint8_t ready_count = 0;
  };
  // RFC 826 "merge": updates an existing entry (always) or creates one (when
  // create is set: the packet was addressed to us). Frames that were waiting
  // on ip move to ready[], their Ethernet destination still to be written.
  Learned learn(Ipv4Address ip, const rte_ether_addr& mac, uint64_t now_us, bool create,
                Frame (&ready)[kHoldPerEntry]) noexcept;

  // Ages entries, resends requests, fails resolutions. Call every few ms.
  void tick(uint64_t now_us, Events& events) noexcept;

  // Releases every held frame (at shutdown).
  void drain(Events& events) noexcept;

  size_t size() const noexcept { return index_.size(); }
  size_t capacity() const noexcept { return capacity_; }
  std::vector<Snapshot> snapshot(uint64_t now_us) const;
  State state_of(Ipv4Address ip) const noexcept;

  uint64_t expired_count() const noexcept { return expired_; }

 private:
  struct Entry {
    Ipv4Address ip = 0;
    State state = State::empty;
    uint8_t probes = 0;
    uint8_t held_count = 0;
    bool poll_sent = false;  // stale entry already polled once
    rte_ether_addr mac{};
    uint64_t changed_us = 0;  // confirmation, last probe, or failure time
    uint64_t used_us = 0;
    Frame held[kHoldPerEntry];
  };

  struct IpHash {
    // Fibonacci hashing: the top half of the product depends on every bit
    // of the address (neighbours are often consecutive addresses), and
    // FlatIndex keeps the low bits of what this returns.
    size_t operator()(Ipv4Address ip) const noexcept {
      return static_cast<size_t>((uint64_t{ip} * 0x9E3779B97F4A7C15ull) >> 32);
    }
  };

  Entry* find(Ipv4Address ip) noexcept;
  const Entry* find(Ipv4Address ip) const noexcept;
  Entry* insert(Ipv4Address ip) noexcept;
  void erase(Entry& entry) noexcept;

  size_t capacity_;
  std::vector<Entry> entries_;            // a slot is free while its state is empty
  std::vector<uint32_t> free_;            // free slots of entries_, within its reserve
  FlatIndex<Ipv4Address, IpHash> index_;  // ip -> slot of entries_
  Params params_;
  uint64_t expired_ = 0;
};

}  // namespace mtlsgw::net
