#pragma once
// The per-worker timer wheel of the TCP stack: retransmission (RFC 6298),
// delayed ACK, persist, keep-alive, TIME-WAIT and handshake timeouts. Owned
// by one worker: no locks. Timers are intrusive (a TimerNode lives inside its
// connection), so arming, re-arming and cancelling allocate nothing and cost
// O(1): a TCP timer is typically re-armed or cancelled many times (the RTO is
// restarted on every ACK of new data, RFC 6298 5.3) for each time it fires.
//
// Shape: one hashed wheel (Varghese and Lauck, "Hashed and Hierarchical
// Timing Wheels", scheme 6): slot_count slots of tick_us, one circular list
// per slot. A timer further out than one lap (4.096 s with the defaults) sits
// in the slot of its expiry tick and is looked at, and skipped, once per lap
// until its lap comes.
//
// Why not a hierarchy: nearly every TCP timer is within a few laps (delayed
// ACK <= 500 ms, RFC 1122 4.2.3.2; RTO from 1 s, RFC 6298 2.1, backing off
// to about 60 s; TIME-WAIT 2*MSL, 60 s as on Linux). Only a live keep-alive
// is far (>= 2 h, RFC 1122 4.2.3.6): about 1,760 looks over its life, and
// 50,000 idle connections cost 50,000 / 4.096 s = ~12 node visits per 1 ms
// tick, ~1 us per ms even if each is a cache miss (~0.1% of a core). A
// hierarchy would save that but adds a cascade that mostly moves timers
// about to be cancelled, and a second bound to keep after an idle gap.
// scanned_nodes() makes the cost measurable in a running worker.
//
// Precision: expiry is exact to the microsecond, not rounded to ticks.
// advance(now) fires a node only once now >= expires_us, and fires it at the
// first advance() where that holds: never early, and late only by the gap
// between calls. Ticks only bucket the work. The current tick is split once
// more into kSubSlots lists with a bitmap of the non-empty ones, so that a
// worker may call advance() on every poll loop: while nothing is due that
// costs one compare, and a node due within the tick is looked at again only
// by advances that land in its 1/64 of a tick. Measured here with 50,000
// connections, 140 expiries per ms and an advance every 1 us: one list for
// the whole tick cost 9,700 node visits per ms, the sub-slots 540 (290 with
// one advance per tick).
//
// What advance(now) fires: every node armed when it starts whose expiry is
// <= now, each once, disarmed before its callback, unless an earlier
// callback of the same advance cancels or re-arms it. A node (re-)armed from
// a callback for a time <= now fires at the next advance, never in this one,
// so a callback that re-arms for "now" cannot loop. Order: nodes scheduled
// in the past first, then by expiry tick. Within one tick the order is not
// promised: by 1/64 of a tick for nodes that were waiting in the current
// tick, else the order of scheduling. After a gap of more than one lap,
// nodes that are more than a lap late come out in slot order: all are late,
// and each still fires exactly once.
//
// Rules for owners: the wheel holds raw pointers, so cancel a node before
// its owner is destroyed, moved or copied over (a copy of an armed node
// looks armed but is on no list: never schedule or cancel it). A node
// belongs to one wheel at a time. advance() is not reentrant: called from a
// callback it returns 0 and does nothing. Callbacks must not throw (advance
// is noexcept).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>

namespace mtlsgw::dataplane {

struct TimerNode {
  TimerNode* next = nullptr;
  TimerNode* prev = nullptr;
  uint64_t expires_us = 0;  // kept after firing, for the owner to read

  bool armed() const noexcept { return next != nullptr; }
};

namespace detail {

// offsetof() needs a member name, not a pointer to member. On the Itanium
// C++ ABI (g++ and clang on Linux, the only targets here) a pointer to data
// member is the member's byte offset as a ptrdiff_t (ABI 2.3), and Member
// can only name a member of T itself or of a non-virtual base (template
// arguments allow no conversion through a virtual base), so the offset is
// fixed for every T.
template <typename T, TimerNode T::*Member>
inline std::ptrdiff_t member_offset() noexcept {
  static_assert(sizeof(Member) == sizeof(std::ptrdiff_t), "Itanium C++ ABI member pointer");
  constexpr TimerNode T::*member = Member;
  std::ptrdiff_t offset;
  std::memcpy(&offset, &member, sizeof offset);
  return offset;
}

}  // namespace detail

// The owner of a node: owner_of<Connection, &Connection::rto_timer>(node).
// (Not named container_of: DPDK's rte_common.h defines that as a macro.)
template <typename T, TimerNode T::*Member>
inline T& owner_of(TimerNode& node) noexcept {
  return *reinterpret_cast<T*>(reinterpret_cast<char*>(&node) -
                               detail::member_offset<T, Member>());
}

template <typename T, TimerNode T::*Member>
inline const T& owner_of(const TimerNode& node) noexcept {
  return *reinterpret_cast<const T*>(reinterpret_cast<const char*>(&node) -
                                     detail::member_offset<T, Member>());
}

class TimerWheel {
 public:
  // 1 << 20 slots is 24 MiB of list heads, a 17-minute lap at 1 ms.
  static constexpr uint32_t kMaxSlots = 1u << 20;

  // slot_count is rounded up to a power of two in [1, kMaxSlots]; a tick_us
  // of 0 is taken as 1. Construction allocates (control path).
  explicit TimerWheel(uint64_t now_us, uint32_t tick_us = 1000, uint32_t slot_count = 4096);
  // Disarms every node still armed, so that an owner that outlives the
  // wheel sees armed() == false instead of pointers into freed memory.
  ~TimerWheel();
  // The list heads point at themselves.
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Arms node, or re-arms it if armed. An expiry <= now_us() fires at the
  // next advance().
  void schedule(TimerNode& node, uint64_t expires_us) noexcept {
    if (node.armed()) {
      unlink(node);
    } else {
      ++armed_;
    }
    node.expires_us = expires_us;
    place(node);
  }

  // No-op when node is not armed.
  void cancel(TimerNode& node) noexcept {
    if (!node.armed()) return;
    unlink(node);
    node.next = node.prev = nullptr;
    --armed_;
  }

  // Moves the clock to now_us (a clock that went back counts as not moved)
  // and calls on_expired(TimerNode&) for each node due; see the top of the
  // file for exactly which, and in what order. Walks at most slot_count
  // slots (and the kSubSlots lists of the tick), and visits each node at
  // most once, plus nodes that callbacks arm during the call. Returns how
  // many fired.
  template <typename Fn>
  size_t advance(uint64_t now_us, Fn&& on_expired) noexcept;

  size_t armed() const noexcept { return armed_; }
  uint64_t now_us() const noexcept { return now_us_; }
  uint32_t tick_us() const noexcept { return tick_us_; }
  uint32_t slot_count() const noexcept { return static_cast<uint32_t>(mask_ + 1); }

  // Work done since construction: slots walked, and nodes looked at (fired
  // or skipped). For counters and for tests of the bounds above.
  uint64_t scanned_slots() const noexcept { return scanned_slots_; }
  uint64_t scanned_nodes() const noexcept { return scanned_nodes_; }

  // The current tick's subdivisions: 64 fits one bitmap word.
  static constexpr uint32_t kSubSlots = 64;

 private:
  static constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();

  static void init_head(TimerNode& head) noexcept { head.next = head.prev = &head; }
  static bool empty(const TimerNode& head) noexcept { return head.next == &head; }

  static void link_tail(TimerNode& head, TimerNode& node) noexcept {
    node.prev = head.prev;
    node.next = &head;
    head.prev->next = &node;
    head.prev = &node;
  }

  static void unlink(TimerNode& node) noexcept {
    node.prev->next = node.next;
    node.next->prev = node.prev;
  }

  // Moves every node of from (kept in order) to the front of to.
  static void splice_front(TimerNode& to, TimerNode& from) noexcept {
    if (empty(from)) return;
    TimerNode* first = from.next;
    TimerNode* last = from.prev;
    last->next = to.next;
    to.next->prev = last;
    to.next = first;
    first->prev = &to;
    init_head(from);
  }

  // For tick_start_us_ <= e < tick_end_us_.
  uint32_t sub_of(uint64_t e) const noexcept {
    return static_cast<uint32_t>((e - tick_start_us_) * kSubSlots / tick_us_);
  }
  // The earliest expiry that sub_of() puts in sub-slot j.
  uint64_t sub_start_us(uint32_t j) const noexcept {
    return tick_start_us_ + (uint64_t{j} * tick_us_ + kSubSlots - 1) / kSubSlots;
  }

  // For now_us_ < e < tick_end_us_.
  void link_sub(TimerNode& node) noexcept {
    const uint64_t e = node.expires_us;
    const uint32_t j = sub_of(e);
    link_tail(subs_[j], node);
    occupied_ |= uint64_t{1} << j;
    if (j == cur_sub_ && e < sub_min_us_) sub_min_us_ = e;
  }

  // Where a node waits, outside advance(): due_ when its expiry is <=
  // now_us_; else subs_[sub_of(expiry)] when it is in the current tick; else
  // the slot of its expiry tick (a later tick, maybe laps later).
  void place(TimerNode& node) noexcept {
    const uint64_t e = node.expires_us;
    if (e <= now_us_) {
      link_tail(due_, node);
      next_check_us_ = 0;
    } else if (e < tick_end_us_) {
      link_sub(node);
      if (e < next_check_us_) next_check_us_ = e;
    } else {
      link_tail(slots_[(e / tick_us_) & mask_], node);
    }
  }

  // Fires the nodes of list that are due. The others go to the sub-slot of
  // their expiry when it is in the current tick, else back to the front of
  // list (ahead of nodes that callbacks add meanwhile).
  template <typename Fn>
  size_t scan(TimerNode& list, Fn& on_expired) noexcept;
  // Scans the sub-slots whose bits are in mask.
  template <typename Fn>
  size_t scan_subs(uint64_t mask, Fn& on_expired) noexcept;

  void update_next_check() noexcept;

  uint64_t now_us_;
  uint64_t tick_;            // now_us_ / tick_us_
  uint64_t tick_start_us_;   // tick_ * tick_us_
  uint64_t tick_end_us_;     // (tick_ + 1) * tick_us_
  // advance() before this returns at once: the earliest time a node can be
  // due, or 0 while due_ is not empty.
  uint64_t next_check_us_ = 0;
  uint64_t occupied_ = 0;         // bit j: subs_[j] may be non-empty
  uint64_t sub_min_us_ = kNever;  // <= every expiry in subs_[cur_sub_]
  uint32_t cur_sub_ = 0;          // sub_of(now_us_) at the last advance
  uint32_t tick_us_;
  uint64_t mask_;
  size_t armed_ = 0;
  bool advancing_ = false;
  uint64_t scanned_slots_ = 0;
  uint64_t scanned_nodes_ = 0;
  std::unique_ptr<TimerNode[]> slots_;
  TimerNode due_;
  TimerNode subs_[kSubSlots];
  // Used only inside advance(): the nodes of the list being scanned, and
  // the ones that stay on it, until they are put back.
  TimerNode pending_;
  TimerNode keep_;
};

template <typename Fn>
size_t TimerWheel::scan(TimerNode& list, Fn& on_expired) noexcept {
  if (empty(list)) return 0;
  // Walk a detached copy: a callback may cancel or re-arm any node,
  // including ones not yet looked at, and whatever it arms lands on a live
  // list that this walk does not see again.
  splice_front(pending_, list);
  size_t fired = 0;
  while (!empty(pending_)) {
    TimerNode& node = *pending_.next;
    unlink(node);
    ++scanned_nodes_;
    if (node.expires_us <= now_us_) {
      node.next = node.prev = nullptr;
      --armed_;
      ++fired;
      on_expired(node);
    } else if (node.expires_us < tick_end_us_) {
      link_sub(node);
    } else {
      link_tail(keep_, node);
    }
  }
  splice_front(list, keep_);
  return fired;
}

template <typename Fn>
size_t TimerWheel::scan_subs(uint64_t mask, Fn& on_expired) noexcept {
  size_t fired = 0;
  uint64_t bits = occupied_ & mask;
  while (bits != 0) {
    const uint32_t j = static_cast<uint32_t>(__builtin_ctzll(bits));
    bits &= bits - 1;
    fired += scan(subs_[j], on_expired);
    if (empty(subs_[j])) occupied_ &= ~(uint64_t{1} << j);
  }
  return fired;
}

template <typename Fn>
size_t TimerWheel::advance(uint64_t now_us, Fn&& on_expired) noexcept {
  if (advancing_) return 0;
  if (now_us < next_check_us_) {
    if (now_us > now_us_) now_us_ = now_us;
    return 0;
  }
  if (now_us < now_us_) now_us = now_us_;
  advancing_ = true;

  const uint64_t old_tick = tick_;
  const uint32_t old_sub = cur_sub_;
  const uint64_t old_sub_min = sub_min_us_;
  const uint64_t old_occupied = occupied_;
  // Moved first, so that whatever callbacks arm is placed against the new
  // time (and anything due at it waits for the next advance, in due_).
  now_us_ = now_us;
  tick_ = now_us / tick_us_;
  tick_start_us_ = tick_ * tick_us_;
  tick_end_us_ = tick_start_us_ + tick_us_;
  cur_sub_ = sub_of(now_us);
  sub_min_us_ = kNever;

  size_t fired = scan(due_, on_expired);
  if (tick_ != old_tick) {
    // The sub-slots held the old tick: all of it is due.
    fired += scan_subs(old_occupied, on_expired);
    // Ticks (old_tick, tick_], or only the last lap of them after a long
    // gap: one lap covers every slot, so nothing due is missed.
    const uint64_t first = tick_ - old_tick > mask_ ? tick_ - mask_ : old_tick + 1;
    for (uint64_t t = first; t <= tick_; ++t) {
      ++scanned_slots_;
      fired += scan(slots_[t & mask_], on_expired);
    }
  } else {
    // Sub-slots [old_sub, cur_sub_]: all due but the last, which is looked at
    // only if its earliest node may be due.
    uint64_t mask = (cur_sub_ == kSubSlots - 1 ? ~uint64_t{0} : (uint64_t{2} << cur_sub_) - 1) &
                    ~((uint64_t{1} << old_sub) - 1);
    if (cur_sub_ == old_sub && now_us < old_sub_min) {
      mask = 0;
      if (old_sub_min < sub_min_us_) sub_min_us_ = old_sub_min;
    }
    fired += scan_subs(mask & old_occupied, on_expired);
  }

  update_next_check();
  advancing_ = false;
  return fired;
}

inline void TimerWheel::update_next_check() noexcept {
  if (!empty(due_)) {
    next_check_us_ = 0;
    return;
  }
  uint64_t next = tick_end_us_;
  if ((occupied_ >> cur_sub_) & 1) next = sub_min_us_ < next ? sub_min_us_ : next;
  const uint64_t later =
      cur_sub_ == kSubSlots - 1 ? 0 : occupied_ & ~((uint64_t{2} << cur_sub_) - 1);
  if (later != 0) {
    const uint64_t start = sub_start_us(static_cast<uint32_t>(__builtin_ctzll(later)));
    if (start < next) next = start;
  }
  next_check_us_ = next;
}

}  // namespace mtlsgw::dataplane
