#include "dataplane/timer_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace mtlsgw::dataplane {
namespace {

// An owner shaped like a connection: the nodes are not at offset 0.
struct Conn {
  int id = 0;
  char pad[13] = {};
  TimerNode rto;
  TimerNode delack;
};

using Fired = std::vector<TimerNode*>;

auto record(Fired& out) {
  return [&out](TimerNode& node) { out.push_back(&node); };
}

auto ignore() {
  return [](TimerNode&) {};
}

TEST(TimerWheel, ConstructionRoundsSlotsAndStartsEmpty) {
  TimerWheel w(5'500, 1000, 1000);
  EXPECT_EQ(w.slot_count(), 1024u);
  EXPECT_EQ(w.tick_us(), 1000u);
  EXPECT_EQ(w.now_us(), 5'500u);
  EXPECT_EQ(w.armed(), 0u);
  EXPECT_EQ(w.advance(1'000'000'000, ignore()), 0u);
  EXPECT_EQ(w.now_us(), 1'000'000'000u);

  TimerWheel tiny(0, 0, 0);
  EXPECT_EQ(tiny.tick_us(), 1u);
  EXPECT_EQ(tiny.slot_count(), 1u);
  TimerWheel huge(0, 1000, 0xFFFF'FFFFu);
  EXPECT_EQ(huge.slot_count(), TimerWheel::kMaxSlots);
  TimerWheel defaults(0);
  EXPECT_EQ(defaults.slot_count(), 4096u);
  EXPECT_EQ(defaults.tick_us(), 1000u);
}

TEST(TimerWheel, FiresAtItsExpiryToTheMicrosecondNeverBefore) {
  TimerWheel w(0);
  TimerNode mid, before_edge, edge, next_tick;
  w.schedule(mid, 1'500);
  w.schedule(before_edge, 1'999);
  w.schedule(edge, 2'000);
  w.schedule(next_tick, 3'000);
  Fired fired;
  EXPECT_EQ(w.advance(1'499, record(fired)), 0u);
  EXPECT_EQ(w.advance(1'500, record(fired)), 1u);
  EXPECT_EQ(fired, Fired{&mid});
  EXPECT_EQ(w.advance(1'998, record(fired)), 0u);
  EXPECT_EQ(w.advance(1'999, record(fired)), 1u);
  EXPECT_EQ(w.advance(1'999, record(fired)), 0u);
  EXPECT_EQ(w.advance(2'000, record(fired)), 1u);
  EXPECT_EQ(w.advance(2'999, record(fired)), 0u);
  EXPECT_EQ(w.advance(3'000, record(fired)), 1u);
  EXPECT_EQ(fired, (Fired{&mid, &before_edge, &edge, &next_tick}));
  for (TimerNode* n : fired) EXPECT_FALSE(n->armed());
  EXPECT_EQ(mid.expires_us, 1'500u);  // kept for the owner
  EXPECT_EQ(w.armed(), 0u);
}

TEST(TimerWheel, ExactBoundariesWithAnOddTick) {
  // 7 us ticks: expiries on, just before and just after tick edges.
  TimerWheel w(0, 7, 8);
  TimerNode n[6];
  const uint64_t at[6] = {6, 7, 8, 13, 14, 57};
  for (int i = 0; i < 6; ++i) w.schedule(n[i], at[i]);
  Fired fired;
  for (uint64_t now = 0; now <= 60; ++now) {
    const size_t before = fired.size();
    w.advance(now, record(fired));
    for (size_t k = before; k < fired.size(); ++k) EXPECT_EQ(fired[k]->expires_us, now);
  }
  EXPECT_EQ(fired, (Fired{&n[0], &n[1], &n[2], &n[3], &n[4], &n[5]}));
}

TEST(TimerWheel, FiresInTickOrderThenInScheduleOrder) {
  TimerWheel w(0, 1000, 64);
  TimerNode a, b, c, d, e, f;
  w.schedule(a, 5'500);
  w.schedule(b, 3'900);
  w.schedule(c, 3'100);  // same tick as b, scheduled after it
  w.schedule(d, 9'000);
  w.schedule(e, 3'500);
  w.schedule(f, 3'050);
  w.schedule(e, 3'200);  // re-arming moves e behind f
  Fired fired;
  EXPECT_EQ(w.advance(10'000, record(fired)), 6u);
  EXPECT_EQ(fired, (Fired{&b, &c, &f, &e, &a, &d}));
}

TEST(TimerWheel, PastExpiriesFireFirstAtTheNextAdvance) {
  TimerWheel w(10'000, 1000, 64);
  TimerNode later, past, now_exact;
  w.schedule(later, 10'500);
  w.schedule(past, 9'000);
  w.schedule(now_exact, 10'000);
  Fired fired;
  // Time need not move for an expiry that is already due.
  EXPECT_EQ(w.advance(10'000, record(fired)), 2u);
  EXPECT_EQ(fired, (Fired{&past, &now_exact}));
  EXPECT_EQ(w.advance(12'000, record(fired)), 1u);
  EXPECT_EQ(fired.back(), &later);
}

TEST(TimerWheel, ClockGoingBackFiresNothingEarly) {
  TimerWheel w(0);
  w.advance(10'000, ignore());
  TimerNode n, past;
  w.schedule(n, 10'500);
  Fired fired;
  EXPECT_EQ(w.advance(5'000, record(fired)), 0u);
  EXPECT_EQ(w.now_us(), 10'000u);
  w.schedule(past, 9'999);
  EXPECT_EQ(w.advance(4'000, record(fired)), 1u);  // past is due at 10'000
  EXPECT_EQ(w.now_us(), 10'000u);
  EXPECT_EQ(w.advance(10'499, record(fired)), 0u);
  EXPECT_EQ(w.advance(10'500, record(fired)), 1u);
  EXPECT_EQ(fired, (Fired{&past, &n}));
}

TEST(TimerWheel, CancelAndRescheduleOutsideCallbacks) {
  TimerWheel w(0, 1000, 16);
  TimerNode n;
  w.cancel(n);  // not armed: no-op
  EXPECT_EQ(w.armed(), 0u);
  w.schedule(n, 5'000);
  EXPECT_TRUE(n.armed());
  w.schedule(n, 2'000);  // re-arm earlier
  EXPECT_EQ(w.armed(), 1u);
  Fired fired;
  EXPECT_EQ(w.advance(2'000, record(fired)), 1u);
  w.schedule(n, 3'000);
  w.schedule(n, 40'000);  // re-arm later, beyond the lap
  EXPECT_EQ(w.advance(39'999, record(fired)), 0u);
  EXPECT_EQ(w.advance(40'000, record(fired)), 1u);
  w.schedule(n, 41'000);
  w.cancel(n);
  w.cancel(n);
  EXPECT_FALSE(n.armed());
  EXPECT_EQ(w.armed(), 0u);
  EXPECT_EQ(w.advance(1'000'000, record(fired)), 0u);
  EXPECT_EQ(fired.size(), 2u);
}

TEST(TimerWheel, ArmedCountsNodesNotCalls) {
  TimerWheel w(0, 1000, 16);
  TimerNode n[10];
  for (int i = 0; i < 10; ++i) w.schedule(n[i], 1'000 * static_cast<uint64_t>(i + 1));
  EXPECT_EQ(w.armed(), 10u);
  for (int i = 0; i < 10; ++i) w.schedule(n[i], 100'000);  // re-arms
  EXPECT_EQ(w.armed(), 10u);
  w.cancel(n[3]);
  w.cancel(n[3]);
  EXPECT_EQ(w.armed(), 9u);
  w.schedule(n[0], 500);
  w.schedule(n[1], 0);  // due at once
  EXPECT_EQ(w.advance(600, ignore()), 2u);
  EXPECT_EQ(w.armed(), 7u);
  // Inside a callback the fired node is already disarmed and uncounted.
  size_t seen = 0;
  w.advance(100'000, [&](TimerNode& node) {
    EXPECT_FALSE(node.armed());
    EXPECT_EQ(w.armed(), 7u - ++seen);
  });
  EXPECT_EQ(seen, 7u);
  EXPECT_EQ(w.armed(), 0u);
}

TEST(TimerWheel, RearmForNowInsideCallbackFiresOncePerAdvance) {
  TimerWheel w(0, 1000, 16);
  TimerNode n;
  int calls = 0;
  const auto rearm_now = [&](TimerNode& node) {
    ++calls;
    w.schedule(node, w.now_us());
  };
  w.schedule(n, 0);
  for (int i = 1; i <= 50; ++i) {
    ASSERT_EQ(w.advance(0, rearm_now), 1u);  // time standing still
    ASSERT_EQ(calls, i);
  }
  for (uint64_t now = 1; now <= 5'000; now += 37) {
    ASSERT_EQ(w.advance(now, rearm_now), 1u);
  }
  // Re-arming for a time long past behaves the same.
  const auto rearm_past = [&](TimerNode& node) { w.schedule(node, 0); };
  EXPECT_EQ(w.advance(6'000, rearm_past), 1u);
  EXPECT_EQ(w.advance(6'000, rearm_past), 1u);
  EXPECT_TRUE(n.armed());
  EXPECT_EQ(w.armed(), 1u);
}

TEST(TimerWheel, RearmEarlierThanNowWaitsForTheNextAdvanceNotThisOne) {
  // One advance spans ticks 0..10; at tick 2 the callback re-arms for tick
  // 5, which this advance is about to walk: it must not fire twice.
  TimerWheel w(0, 1000, 64);
  TimerNode n;
  w.schedule(n, 2'000);
  int calls = 0;
  const auto rearm = [&](TimerNode& node) {
    if (++calls == 1) w.schedule(node, 5'000);
  };
  EXPECT_EQ(w.advance(10'000, rearm), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(n.armed());
  EXPECT_EQ(w.advance(10'000, rearm), 1u);
  EXPECT_EQ(calls, 2);
  EXPECT_FALSE(n.armed());
}

TEST(TimerWheel, RearmInsideCallbackForLaterFiresThen) {
  TimerWheel w(0, 1000, 64);
  TimerNode n;
  w.schedule(n, 2'000);
  std::vector<uint64_t> when;
  int left = 3;
  const auto rearm = [&](TimerNode& node) {
    when.push_back(w.now_us());
    // Same tick as now, then a later tick, then beyond the lap.
    if (left == 3) w.schedule(node, w.now_us() + 300);
    if (left == 2) w.schedule(node, w.now_us() + 4'000);
    if (left == 1) w.schedule(node, w.now_us() + 200'000);
    --left;
  };
  for (uint64_t now = 0; now <= 300'000; now += 100) w.advance(now, rearm);
  EXPECT_EQ(when, (std::vector<uint64_t>{2'000, 2'300, 6'300, 206'300}));
}

TEST(TimerWheel, PeriodicRearmKeepsAnExactPeriod) {
  TimerWheel w(0, 1000, 16);
  TimerNode n;
  w.schedule(n, 700);
  std::vector<uint64_t> late;
  int calls = 0;
  const auto periodic = [&](TimerNode& node) {
    ++calls;
    late.push_back(w.now_us() - node.expires_us);
    w.schedule(node, node.expires_us + 700);
  };
  for (uint64_t now = 0; now <= 100'000; now += 100) w.advance(now, periodic);
  EXPECT_EQ(calls, 100'000 / 700);
  EXPECT_EQ(std::count(late.begin(), late.end(), 0u), calls);
}

TEST(TimerWheel, CallbackCancelsOthersDueInTheSameAdvance) {
  TimerWheel w(0, 1000, 16);
  TimerNode a, same_slot, other_slot, far, current_tick;
  w.schedule(a, 1'000);
  w.schedule(same_slot, 1'500);
  w.schedule(other_slot, 2'500);
  w.schedule(far, 90'000);
  w.schedule(current_tick, 400);
  Fired fired;
  const auto cancel_others = [&](TimerNode& node) {
    fired.push_back(&node);
    if (&node == &current_tick) w.cancel(a);  // due in this advance, not yet fired
  };
  // current_tick fires first and cancels a; a then never fires.
  EXPECT_EQ(w.advance(3'000, cancel_others), 3u);
  EXPECT_EQ(fired, (Fired{&current_tick, &same_slot, &other_slot}));
  EXPECT_FALSE(a.armed());

  fired.clear();
  w.schedule(a, 4'000);
  w.schedule(same_slot, 4'000);
  w.schedule(other_slot, 5'000);
  const auto cancel_all = [&](TimerNode& node) {
    fired.push_back(&node);
    w.cancel(same_slot);
    w.cancel(other_slot);
    w.cancel(far);
    w.cancel(node);  // itself: already disarmed, no-op
  };
  EXPECT_EQ(w.advance(6'000, cancel_all), 1u);
  EXPECT_EQ(fired, Fired{&a});
  EXPECT_EQ(w.armed(), 0u);
  EXPECT_FALSE(same_slot.armed());
  EXPECT_FALSE(other_slot.armed());
  EXPECT_FALSE(far.armed());
  EXPECT_EQ(w.advance(1'000'000, cancel_all), 0u);
}

TEST(TimerWheel, CallbackPostponesAnotherDueNode) {
  TimerWheel w(0, 1000, 16);
  TimerNode a, b;
  w.schedule(a, 1'000);
  w.schedule(b, 3'000);
  Fired fired;
  const auto postpone = [&](TimerNode& node) {
    fired.push_back(&node);
    // Beyond the lap, into slot 2: a slot this advance walks after slot 1.
    if (&node == &a) w.schedule(b, 50'000);
  };
  EXPECT_EQ(w.advance(4'000, postpone), 1u);
  EXPECT_TRUE(b.armed());
  EXPECT_EQ(w.advance(49'999, postpone), 0u);
  EXPECT_EQ(w.advance(50'000, postpone), 1u);
  EXPECT_EQ(fired, (Fired{&a, &b}));
}

TEST(TimerWheel, CallbackArmsOtherNodes) {
  TimerWheel w(0, 1000, 64);
  TimerNode a, due_now, this_tick, later_slot, far;
  w.schedule(a, 1'000);
  Fired fired;
  const auto arm_others = [&](TimerNode& node) {
    fired.push_back(&node);
    if (&node != &a) return;
    w.schedule(due_now, 5'000);      // <= now: next advance
    w.schedule(this_tick, 10'300);   // the current tick
    w.schedule(later_slot, 12'000);  // a slot this advance does not walk
    w.schedule(far, 64'000 + 5'000);  // slot 5, which this advance walks later
  };
  EXPECT_EQ(w.advance(10'000, arm_others), 1u);
  EXPECT_EQ(w.armed(), 4u);
  EXPECT_EQ(w.advance(10'000, arm_others), 1u);
  EXPECT_EQ(fired.back(), &due_now);
  EXPECT_EQ(w.advance(10'299, arm_others), 0u);
  EXPECT_EQ(w.advance(10'300, arm_others), 1u);
  EXPECT_EQ(w.advance(11'999, arm_others), 0u);
  EXPECT_EQ(w.advance(12'000, arm_others), 1u);
  EXPECT_EQ(w.advance(68'999, arm_others), 0u);
  EXPECT_EQ(w.advance(69'000, arm_others), 1u);
  EXPECT_EQ(fired, (Fired{&a, &due_now, &this_tick, &later_slot, &far}));
}

TEST(TimerWheel, NodesWalkedPastStayAheadOfNodesArmedDuringTheWalk) {
  // Same tick, scheduled earlier, fires earlier: also when the later one is
  // armed by a callback while the earlier one is being walked past.
  TimerWheel w(0, 1000, 8);
  TimerNode far_first, trigger, far_second;
  w.schedule(far_first, 9'000);  // slot 1, next lap
  w.schedule(trigger, 1'000);    // slot 1, this lap, behind far_first
  Fired fired;
  const auto arm_second = [&](TimerNode& node) {
    fired.push_back(&node);
    if (&node == &trigger) w.schedule(far_second, 9'500);  // slot 1 again
  };
  EXPECT_EQ(w.advance(1'000, arm_second), 1u);
  EXPECT_EQ(w.advance(10'000, arm_second), 2u);
  EXPECT_EQ(fired, (Fired{&trigger, &far_first, &far_second}));

  // Nodes already waiting in the current tick come out by 1/64 of a tick.
  TimerNode tick_late, trigger2, tick_early;
  w.schedule(tick_late, 11'600);
  w.schedule(trigger2, 11'000);
  fired.clear();
  const auto arm_tick_early = [&](TimerNode& node) {
    fired.push_back(&node);
    if (&node == &trigger2) w.schedule(tick_early, 11'500);
  };
  EXPECT_EQ(w.advance(11'200, arm_tick_early), 1u);
  EXPECT_EQ(w.advance(12'000, arm_tick_early), 2u);
  EXPECT_EQ(fired, (Fired{&trigger2, &tick_early, &tick_late}));
}

TEST(TimerWheel, FarFutureTimersWaitManyLaps) {
  // 8 slots of 1 ms: a lap is 8 ms. Expiries hundreds of laps out.
  TimerWheel w(0, 1000, 8);
  TimerNode n[5];
  const uint64_t at[5] = {800'000, 800'001, 800'999, 801'000, 1'234'567};
  for (int i = 0; i < 5; ++i) w.schedule(n[i], at[i]);
  Fired fired;
  for (uint64_t now = 0; now <= 1'300'000; now += 250) {
    const size_t before = fired.size();
    w.advance(now, record(fired));
    for (size_t k = before; k < fired.size(); ++k) {
      // Never early; never later than the first advance at or past it.
      EXPECT_LE(fired[k]->expires_us, now);
      EXPECT_GT(fired[k]->expires_us + 250, now);
    }
  }
  EXPECT_EQ(fired, (Fired{&n[0], &n[1], &n[2], &n[3], &n[4]}));
}

TEST(TimerWheel, FarTimersAreLookedAtOncePerLap) {
  TimerWheel w(0, 1000, 8);
  TimerNode far[3];
  for (TimerNode& n : far) w.schedule(n, 800'000);  // tick 800: slot 0
  // Several advances per tick: the ones inside a tick must not walk lists.
  for (uint64_t now = 0; now < 800'000; now += 100) ASSERT_EQ(w.advance(now, ignore()), 0u);
  // Slot 0 came round at ticks 8, 16, ..., 792: 99 laps, 3 nodes each.
  EXPECT_EQ(w.scanned_nodes(), 99u * 3);
  EXPECT_EQ(w.scanned_slots(), 799u);
  EXPECT_EQ(w.advance(800'000, ignore()), 3u);
  EXPECT_EQ(w.scanned_nodes(), 100u * 3);
}

TEST(TimerWheel, AdvancesWithinATickLookOnlyAtThatTicksTimers) {
  TimerWheel w(0, 1000, 8);
  TimerNode far[50];
  // The slot of the current tick, several laps out.
  for (TimerNode& n : far) w.schedule(n, 3 * 8'000 + 100);
  TimerNode soon;
  w.schedule(soon, 600);
  for (uint64_t now = 0; now < 600; ++now) ASSERT_EQ(w.advance(now, ignore()), 0u);
  EXPECT_EQ(w.scanned_nodes(), 0u);
  EXPECT_EQ(w.advance(600, ignore()), 1u);
  EXPECT_EQ(w.scanned_nodes(), 1u);
  for (uint64_t now = 601; now < 1'000; ++now) ASSERT_EQ(w.advance(now, ignore()), 0u);
  EXPECT_EQ(w.scanned_nodes(), 1u);
  EXPECT_EQ(w.scanned_slots(), 0u);
}

TEST(TimerWheel, AdvanceEveryMicrosecondThroughABusyTickStaysCheap) {
  // 640 expiries spread over one 1 ms tick, advanced 1 us at a time (a
  // worker calling advance on every poll loop). Each fires at its exact
  // microsecond; the nodes still waiting are looked at again only within
  // their 1/64 of the tick, not by every advance that fires something.
  TimerWheel w(0);
  std::mt19937_64 rng(3);
  constexpr int kNodes = 640;
  std::vector<TimerNode> nodes(kNodes);
  for (TimerNode& n : nodes) w.schedule(n, 5'000 + rng() % 1'000);
  // The tick starts: the ones not due yet move to its sub-slots.
  size_t fired = w.advance(5'000, ignore());
  const uint64_t visits_before = w.scanned_nodes();
  for (uint64_t now = 5'001; now < 6'000; ++now) {
    fired += w.advance(now, [&](TimerNode& node) { EXPECT_EQ(node.expires_us, now); });
  }
  EXPECT_EQ(fired, static_cast<size_t>(kNodes));
  EXPECT_EQ(w.armed(), 0u);
  // One list for the tick would cost about kNodes^2 / 2 = 204,800 visits.
  EXPECT_LT(w.scanned_nodes() - visits_before, 8u * kNodes);
}

TEST(TimerWheel, LongIdleGapDoesBoundedWork) {
  TimerWheel w(0);  // 4096 x 1 ms
  std::mt19937_64 rng(7);
  constexpr int kDue = 10'000;
  constexpr int kLater = 1'000;
  std::vector<TimerNode> nodes(kDue + kLater);
  const uint64_t gap = 600'000'000;  // ten minutes, ~146 laps
  for (int i = 0; i < kDue; ++i) w.schedule(nodes[i], 1 + rng() % gap);
  for (int i = kDue; i < kDue + kLater; ++i) w.schedule(nodes[i], gap + 1 + rng() % gap);
  const uint64_t slots_before = w.scanned_slots();
  const uint64_t nodes_before = w.scanned_nodes();
  size_t calls = 0;
  const auto count_due = [&](TimerNode& node) {
    ++calls;
    EXPECT_LE(node.expires_us, gap);
  };
  EXPECT_EQ(w.advance(gap, count_due), static_cast<size_t>(kDue));
  EXPECT_EQ(calls, static_cast<size_t>(kDue));
  EXPECT_LE(w.scanned_slots() - slots_before, 4096u);
  EXPECT_EQ(w.scanned_nodes() - nodes_before, static_cast<uint64_t>(kDue + kLater));
  EXPECT_EQ(w.armed(), static_cast<size_t>(kLater));
  for (int i = 0; i < kDue; ++i) EXPECT_FALSE(nodes[i].armed());
  // The rest still fire at their time, not before.
  size_t early = 0;
  const auto no_early = [&](TimerNode& node) { early += node.expires_us > w.now_us(); };
  size_t later = w.advance(gap + gap / 2, no_early);
  later += w.advance(2 * gap, no_early);
  EXPECT_EQ(later, static_cast<size_t>(kLater));
  EXPECT_EQ(early, 0u);
  EXPECT_EQ(w.armed(), 0u);
}

TEST(TimerWheel, GapOfExactlyOneLapAndOneTickMore) {
  for (uint64_t gap_ticks : {7u, 8u, 9u, 16u, 17u}) {
    TimerWheel w(0, 1000, 8);
    TimerNode n[17];
    for (uint64_t t = 0; t < 17; ++t) w.schedule(n[t], (t + 1) * 1000 + 1);  // mid-tick 1..17
    Fired fired;
    w.advance(gap_ticks * 1000 + 1, record(fired));
    // Exactly the ones due, each once.
    ASSERT_EQ(fired.size(), gap_ticks) << gap_ticks;
    std::sort(fired.begin(), fired.end());
    EXPECT_EQ(std::unique(fired.begin(), fired.end()), fired.end());
    for (TimerNode* f : fired) EXPECT_LE(f->expires_us, gap_ticks * 1000 + 1);
    EXPECT_LE(w.scanned_slots(), 8u);
    EXPECT_EQ(w.armed(), 17 - gap_ticks);
  }
}

TEST(TimerWheel, ReentrantAdvanceDoesNothing) {
  TimerWheel w(0, 1000, 16);
  TimerNode a, b;
  w.schedule(a, 1'000);
  w.schedule(b, 5'000);
  size_t inner = 99;
  EXPECT_EQ(w.advance(2'000, [&](TimerNode&) { inner = w.advance(10'000, ignore()); }), 1u);
  EXPECT_EQ(inner, 0u);
  EXPECT_EQ(w.now_us(), 2'000u);
  EXPECT_TRUE(b.armed());
  EXPECT_EQ(w.advance(5'000, ignore()), 1u);
}

TEST(TimerWheel, DestructionDisarmsWhatIsLeft) {
  TimerNode due, this_tick, slot, far;
  {
    TimerWheel w(10'000, 1000, 16);
    w.schedule(due, 5);
    w.schedule(this_tick, 10'500);
    w.schedule(slot, 13'000);
    w.schedule(far, 10'000'000);
  }
  EXPECT_FALSE(due.armed());
  EXPECT_FALSE(this_tick.armed());
  EXPECT_FALSE(slot.armed());
  EXPECT_FALSE(far.armed());
}

struct Base {
  virtual ~Base() = default;
  int base_value = 7;
};

// Not standard-layout: a vtable, a base, a std::string before the node.
struct Session : Base {
  std::string name;
  TimerNode keepalive;
  int id = 0;
};

TEST(TimerWheel, ContainerOfFindsTheOwner) {
  Conn conns[3];
  for (int i = 0; i < 3; ++i) conns[i].id = 100 + i;
  TimerWheel w(0, 1000, 16);
  w.schedule(conns[2].delack, 1'000);
  w.schedule(conns[0].rto, 2'000);
  w.schedule(conns[1].delack, 3'000);
  std::vector<std::pair<int, char>> seen;
  w.advance(5'000, [&](TimerNode& node) {
    // The owner tells the two nodes apart by address.
    for (const Conn& c : conns) {
      if (&node == &c.rto) seen.emplace_back(owner_of<Conn, &Conn::rto>(node).id, 'r');
      if (&node == &c.delack) seen.emplace_back(owner_of<Conn, &Conn::delack>(node).id, 'd');
    }
  });
  EXPECT_EQ(seen, (std::vector<std::pair<int, char>>{{102, 'd'}, {100, 'r'}, {101, 'd'}}));

  Session s;
  s.id = 42;
  EXPECT_EQ((&owner_of<Session, &Session::keepalive>(s.keepalive)), &s);
  const Session& cs = s;
  const Session& back = owner_of<Session, &Session::keepalive>(cs.keepalive);
  EXPECT_EQ(&back, &s);
  EXPECT_EQ(back.id, 42);
  EXPECT_EQ(back.base_value, 7);
  EXPECT_EQ((&owner_of<Conn, &Conn::delack>(conns[1].delack)), &conns[1]);
}

// Random schedules, cancels and advances, with callbacks that re-arm
// themselves and cancel or arm others, against a std::multimap of what
// should be armed. Checked at every step: nothing fires early, everything
// due at the start of an advance fires in it exactly once, nothing armed
// during an advance fires in it, fire order follows ticks, and the counts
// agree.
struct ModelCase {
  uint32_t tick_us;
  uint32_t slots;
};

class TimerWheelModel : public ::testing::TestWithParam<ModelCase> {};

TEST_P(TimerWheelModel, MatchesAMultimapUnderChurn) {
  const uint32_t tick_us = GetParam().tick_us;
  const uint32_t slots = GetParam().slots;
  constexpr int kNodes = 300;
  constexpr int kOps = 100'000;
  const uint64_t lap = uint64_t{tick_us} * slots;
  std::mt19937_64 rng(tick_us * 1'000'003ull + slots);
  const uint64_t start = 1'000'000 + rng() % 1'000'000;
  TimerWheel w(start, tick_us, slots);

  struct Item {
    TimerNode node;
    int id = 0;
  };
  std::vector<Item> items(kNodes);
  for (int i = 0; i < kNodes; ++i) items[i].id = i;

  std::multimap<uint64_t, int> model;
  std::vector<std::multimap<uint64_t, int>::iterator> where(kNodes, model.end());
  std::vector<bool> in_model(kNodes, false);
  std::vector<bool> armed_this_advance(kNodes, false);
  bool in_advance = false;

  const auto pick_expiry = [&]() -> uint64_t {
    const uint64_t now = w.now_us();
    switch (rng() % 10) {
      case 0: return now - std::min<uint64_t>(now, rng() % (3 * lap + 1));  // past
      case 1: return now;
      case 2: return now + 1 + rng() % tick_us;        // this tick or the next
      case 3: case 4: case 5: return now + rng() % lap;  // within the lap
      case 6: case 7: return now + lap + rng() % (20 * lap);  // laps out
      case 8: return (now / tick_us + 1 + rng() % 4) * tick_us;  // on a tick edge
      default: return now + rng() % (4 * tick_us);
    }
  };
  const auto model_cancel = [&](int id) {
    if (!in_model[id]) return;
    model.erase(where[id]);
    in_model[id] = false;
  };
  const auto do_schedule = [&](int id, uint64_t at) {
    model_cancel(id);
    where[id] = model.emplace(at, id);
    in_model[id] = true;
    armed_this_advance[id] = in_advance;
    w.schedule(items[id].node, at);
  };
  const auto do_cancel = [&](int id) {
    model_cancel(id);
    w.cancel(items[id].node);
  };

  uint64_t advance_now = 0;
  uint64_t old_tick = 0;
  bool ordered = true;
  uint64_t last_tick = 0;
  size_t calls = 0;
  size_t total_fired = 0;
  const auto on_expired = [&](TimerNode& node) {
    const Item& item = owner_of<Item, &Item::node>(node);
    const int id = item.id;
    ++calls;
    ASSERT_FALSE(node.armed());
    ASSERT_TRUE(in_model[id]) << "fired a node that is not armed: " << id;
    ASSERT_EQ(where[id]->first, node.expires_us);
    ASSERT_LE(node.expires_us, advance_now) << "fired early";
    ASSERT_FALSE(armed_this_advance[id]) << "armed during this advance, fired in it";
    const uint64_t tick = std::max(node.expires_us / tick_us, old_tick);
    if (ordered) {
      ASSERT_GE(tick, last_tick) << "out of tick order";
      last_tick = tick;
    }
    model_cancel(id);
    switch (rng() % 8) {
      case 0: case 1: do_schedule(id, pick_expiry()); break;  // re-arm itself
      case 2: do_cancel(static_cast<int>(rng() % kNodes)); break;
      case 3: do_schedule(static_cast<int>(rng() % kNodes), pick_expiry()); break;
      case 4: do_schedule(id, w.now_us()); break;  // again at "now"
      default: break;
    }
  };

  for (int op = 0; op < kOps; ++op) {
    const uint64_t r = rng() % 100;
    if (r < 40) {
      do_schedule(static_cast<int>(rng() % kNodes), pick_expiry());
    } else if (r < 60) {
      do_cancel(static_cast<int>(rng() % kNodes));
    } else {
      // Mostly within a tick or two, sometimes most of a lap, rarely
      // several laps, or a clock that went back (treated as not moved).
      const uint64_t now = w.now_us();
      const uint64_t kind = rng() % 100;
      uint64_t target = now;
      if (kind < 10) {
        target = now;
      } else if (kind < 80) {
        target = now + rng() % (2 * tick_us);
      } else if (kind < 97) {
        target = now + rng() % lap;
      } else if (kind < 99) {
        target = now + lap + rng() % (5 * lap);
      } else {
        target = now - std::min<uint64_t>(now, 1 + rng() % lap);
      }
      const uint64_t effective_now = std::max(target, now);
      old_tick = w.now_us() / tick_us;
      ordered = effective_now / tick_us - old_tick < slots;
      last_tick = 0;
      calls = 0;
      advance_now = effective_now;
      std::fill(armed_this_advance.begin(), armed_this_advance.end(), false);
      in_advance = true;
      const size_t fired = w.advance(target, on_expired);
      in_advance = false;
      ASSERT_FALSE(::testing::Test::HasFatalFailure()) << "op " << op;
      ASSERT_EQ(fired, calls) << "op " << op;
      ASSERT_EQ(w.now_us(), effective_now);
      total_fired += fired;
      // Whatever is still due must have been armed during this advance.
      for (auto it = model.begin(); it != model.end() && it->first <= advance_now; ++it) {
        ASSERT_TRUE(armed_this_advance[it->second])
            << "op " << op << ": node " << it->second << " due at " << it->first
            << " did not fire at " << advance_now;
      }
    }
    ASSERT_EQ(w.armed(), model.size()) << "op " << op;
  }
  for (int i = 0; i < kNodes; ++i) ASSERT_EQ(items[i].node.armed(), in_model[i]) << i;
  // Drain: everything left fires, never early, half a lap at a time.
  for (uint64_t now = w.now_us(); !model.empty();) {
    now += lap / 2 + 1;
    w.advance(now, [&](TimerNode& node) {
      ASSERT_LE(node.expires_us, now);
      model_cancel(owner_of<Item, &Item::node>(node).id);
    });
    ASSERT_FALSE(::testing::Test::HasFatalFailure());
  }
  EXPECT_TRUE(model.empty());
  EXPECT_EQ(w.armed(), 0u);
  EXPECT_GT(total_fired, static_cast<size_t>(kOps / 20));
}

INSTANTIATE_TEST_SUITE_P(Shapes, TimerWheelModel,
                         ::testing::Values(ModelCase{1000, 4096}, ModelCase{1000, 16},
                                           ModelCase{7, 8}, ModelCase{1, 1},
                                           ModelCase{250, 64}),
                         [](const auto& info) {
                           return "tick" + std::to_string(info.param.tick_us) + "_slots" +
                                  std::to_string(info.param.slots);
                         });

}  // namespace
}  // namespace mtlsgw::dataplane
