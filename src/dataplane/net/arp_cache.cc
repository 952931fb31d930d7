#include "dataplane/net/arp_cache.h"

#include <bit>

namespace mtlsgw::net {

namespace {

size_t table_size(uint32_t capacity) { return std::bit_ceil(std::max<uint32_t>(capacity, 8)); }

}  // namespace

ArpCache::ArpCache(const Params& params)
    : capacity_(table_size(params.capacity)),
      entries_(capacity_ - capacity_ / 4),
      index_(static_cast<uint32_t>(entries_.size())),
      params_(params) {
  free_.reserve(entries_.size());
  for (size_t i = entries_.size(); i > 0; --i) free_.push_back(static_cast<uint32_t>(i - 1));
}

ArpCache::Entry* ArpCache::find(Ipv4Address ip) noexcept {
  const uint32_t slot = index_.find(ip);
  return slot == FlatIndex<Ipv4Address, IpHash>::kNone ? nullptr : &entries_[slot];
}

const ArpCache::Entry* ArpCache::find(Ipv4Address ip) const noexcept {
  return const_cast<ArpCache*>(this)->find(ip);
}

ArpCache::Entry* ArpCache::insert(Ipv4Address ip) noexcept {
  if (free_.empty()) return nullptr;
  const uint32_t slot = free_.back();
  if (!index_.insert(ip, slot)) return nullptr;
  free_.pop_back();
  Entry& e = entries_[slot];
  e = Entry{};
  e.ip = ip;
  return &e;
}

void ArpCache::erase(Entry& entry) noexcept {
  index_.erase(entry.ip);
  free_.push_back(static_cast<uint32_t>(&entry - entries_.data()));
  entry = Entry{};
}

ArpCache::Lookup ArpCache::lookup(Ipv4Address ip, uint64_t now_us, rte_ether_addr* mac) noexcept {
  Entry* e = find(ip);
  if (e == nullptr) {
    e = insert(ip);
    if (e == nullptr) return Lookup::full;
    e->state = State::incomplete;
    e->probes = 1;
    e->changed_us = now_us;
    e->used_us = now_us;
    return Lookup::started;
  }
  e->used_us = now_us;
  switch (e->state) {
    case State::reachable:
      *mac = e->mac;
      return Lookup::hit;
    case State::stale:
      *mac = e->mac;
      if (!e->poll_sent) {
        e->poll_sent = true;
        e->probes = 1;
        e->changed_us = now_us;
        return Lookup::hit_stale;
      }
      return Lookup::hit;
    case State::incomplete:
      return Lookup::pending;
    case State::failed:
      return Lookup::failed;
    case State::empty:
      break;
  }
  return Lookup::failed;
}

bool ArpCache::hold(Ipv4Address ip, const Frame& frame, Frame* evicted) noexcept {
  Entry* e = find(ip);
  if (e == nullptr || e->state != State::incomplete) {
    *evicted = frame;
    return true;
  }
  bool pushed_out = false;
  if (e->held_count == kHoldPerEntry) {
    *evicted = e->held[0];
    for (uint8_t i = 1; i < kHoldPerEntry; ++i) e->held[i - 1] = e->held[i];
    --e->held_count;
    pushed_out = true;
  }
  e->held[e->held_count++] = frame;
  return pushed_out;
}

ArpCache::Learned ArpCache::learn(Ipv4Address ip, const rte_ether_addr& mac, uint64_t now_us,
                                  bool create, Frame (&ready)[kHoldPerEntry]) noexcept {
  Learned result;
  Entry* e = find(ip);
  if (e == nullptr) {
    if (!create) return result;
    e = insert(ip);
    if (e == nullptr) return result;
    e->used_us = now_us;
    result.changed = true;
  } else if (e->state != State::reachable && e->state != State::stale) {
    result.changed = true;
  } else if (!rte_is_same_ether_addr(&e->mac, &mac)) {
    result.changed = true;
  }
  result.known = true;
  e->mac = mac;
  e->state = State::reachable;
  e->probes = 0;
  e->poll_sent = false;
  e->changed_us = now_us;
  for (uint8_t i = 0; i < e->held_count; ++i) ready[i] = e->held[i];
  result.ready_count = e->held_count;
  e->held_count = 0;
  return result;
}

void ArpCache::tick(uint64_t now_us, Events& events) noexcept {
  for (Entry& e : entries_) {
    switch (e.state) {
      case State::empty:
        continue;
      case State::incomplete:
        if (now_us - e.changed_us < params_.retry_us) continue;
        if (e.probes < params_.max_probes) {
          ++e.probes;
          e.changed_us = now_us;
          events.send_request(e.ip, nullptr);
          continue;
        }
        for (uint8_t h = 0; h < e.held_count; ++h) events.drop_unresolved(e.held[h]);
        e.held_count = 0;
        e.state = State::failed;
        e.changed_us = now_us;
        continue;
      case State::reachable:
        if (now_us - e.changed_us >= params_.reachable_us) {
          e.state = State::stale;
          e.poll_sent = false;
          ++expired_;
        }
        continue;
      case State::stale:
        if (e.poll_sent && now_us - e.changed_us >= params_.retry_us) {
          // The unicast poll went unanswered: fall back to broadcasts.
          if (e.probes < params_.max_probes) {
            ++e.probes;
            e.changed_us = now_us;
            events.send_request(e.ip, nullptr);
            continue;
          }
          e.state = State::failed;
          e.changed_us = now_us;
          continue;
        }
        if (!e.poll_sent && now_us - e.used_us >= params_.stale_gc_us) break;
        continue;
      case State::failed:
        if (now_us - e.changed_us >= params_.failed_holddown_us) break;
        continue;
    }
    // Reached only to forget the entry.
    erase(e);
  }
}

void ArpCache::drain(Events& events) noexcept {
  for (Entry& e : entries_) {
    for (uint8_t h = 0; h < e.held_count; ++h) events.drop_unresolved(e.held[h]);
    e.held_count = 0;
  }
}

std::vector<ArpCache::Snapshot> ArpCache::snapshot(uint64_t now_us) const {
  std::vector<Snapshot> out;
  for (const Entry& e : entries_) {
    if (e.state == State::empty) continue;
    out.push_back(Snapshot{e.ip, e.mac, e.state, now_us - e.changed_us});
  }
  return out;
}

ArpCache::State ArpCache::state_of(Ipv4Address ip) const noexcept {
  const Entry* e = find(ip);
  return e == nullptr ? State::empty : e->state;
}

}  // namespace mtlsgw::net
