#pragma once
// Link faults made by the gateway itself: the kernels we test against have no
// netem, so loss, duplication, reordering, delay and corruption come from here.
// One FaultInjector sits on one direction of one port queue of one worker (rx
// after rte_eth_rx_burst, tx before the burst reaches the NIC), or on one
// direction of the fake link between two stacks in a unit test.
//
// Replay: every decision comes from a private PRNG seeded at construction, and
// the number of draws per frame depends only on the dice, never on frame
// contents, lengths or times. The same spec, seed and sequence of push() calls
// therefore drop, corrupt, duplicate and reorder the same frames, so a seed
// printed by a failing run reproduces it. Give each injector its own seed
// (base + stream index is fine: seeds are hashed before use); two injectors
// with one seed would throw correlated dice.
//
// Ownership: push() takes the frame. It ends in exactly one deliver() call or
// one io.release() (dropped, drained, or a copy that could not be used).
// Copies made for duplication come from io.alloc() and are delivered like any
// other frame. The destructor drains, so io must outlive the injector.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/counter.h"
#include "dataplane/net/frame.h"

namespace mtlsgw::dataplane {

struct FaultSpec {
  // Probabilities per frame, 0..1, each thrown independently.
  double drop = 0;
  double duplicate = 0;
  double reorder = 0;
  double corrupt = 0;
  uint32_t delay_us = 0;      // added to every frame (a fixed link delay); 0: none
  uint32_t reorder_us = 500;  // how much longer a reordered frame is held back

  bool enabled() const noexcept {
    return drop > 0 || duplicate > 0 || reorder > 0 || corrupt > 0 || delay_us > 0;
  }
};

// "drop=0.03,reorder=0.03,duplicate=0.01,corrupt=0.001,delay_us=200,reorder_us=500".
// Keys may come in any order, each at most once; spaces around keys, values
// and commas are ignored; an empty text is the disabled spec. On bad input
// returns nullopt and, when error is not null, says why. Control path.
std::optional<FaultSpec> parse_fault_spec(std::string_view text, std::string* error);

// The spec in the form parse_fault_spec reads (all keys, shortest exact
// numbers), for logs and for replaying a run.
std::string format_fault_spec(const FaultSpec& spec);

// splitmix64 used as the generator: one word of state, a full 2^64 period and
// good statistical quality for a few nanoseconds a draw.
class FaultRng {
 public:
  explicit FaultRng(uint64_t seed) noexcept : state_(mix(seed)) {}

  uint64_t next() noexcept { return mix(state_ += kGamma); }

  static constexpr uint64_t mix(uint64_t z) noexcept {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

 private:
  static constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ULL;
  uint64_t state_;
};

// What a FaultInjector did. Every pushed frame counts once in passed or in
// dropped; the others are facts about the passed ones (and their copies):
//   duplicated        extra copies delivered
//   duplicate_failed  copy wanted but no buffer, or the frame did not fit one
//   reordered         frames held back the extra reorder_us
//   delayed           frames held for delay_us (and not reordered)
//   corrupted         frames with one bit flipped
//   hold_overflow     frames (or copies) delivered at once: hold queue full
#define MTLSGW_FAULT_STATS(X) \
  X(passed)                   \
  X(dropped)                  \
  X(duplicated)               \
  X(duplicate_failed)         \
  X(reordered)                \
  X(delayed)                  \
  X(corrupted)                \
  X(hold_overflow)

class FaultInjector {
 public:
  // Bytes never corrupted: the Ethernet header has no checksum of its own in
  // the mbuf (the FCS is gone), so a flip there would not be a link error the
  // stack can detect but a misaddressed frame.
  static constexpr uint16_t kCorruptFrom = 14;

  // A copy of the counts, which any thread may take (telemetry reads a
  // running worker's injectors).
  struct Stats {
#define MTLSGW_FAULT_STAT_FIELD(name) uint64_t name = 0;
    MTLSGW_FAULT_STATS(MTLSGW_FAULT_STAT_FIELD)
#undef MTLSGW_FAULT_STAT_FIELD

    Stats& operator+=(const Stats& other) noexcept {
#define MTLSGW_FAULT_STAT_ADD(name) name += other.name;
      MTLSGW_FAULT_STATS(MTLSGW_FAULT_STAT_ADD)
#undef MTLSGW_FAULT_STAT_ADD
      return *this;
    }
    // Visits every count with its name (telemetry, the exit report).
    template <typename Fn>
    void for_each(Fn&& fn) const {
#define MTLSGW_FAULT_STAT_VISIT(name) fn(#name, name);
      MTLSGW_FAULT_STATS(MTLSGW_FAULT_STAT_VISIT)
#undef MTLSGW_FAULT_STAT_VISIT
    }
  };

  // Control path: sets up the hold storage (max_held frames). Probabilities
  // outside [0, 1] are clamped (NaN counts as 0).
  FaultInjector(const FaultSpec& spec, uint64_t seed, net::FrameIo& io, size_t max_held = 1024);
  ~FaultInjector();
  FaultInjector(const FaultInjector&) = delete;
  FaultInjector& operator=(const FaultInjector&) = delete;

  // Takes ownership of frame; deliver(const net::Frame&) takes ownership of
  // what it is given. Dice, in this order: drop (released, nothing else
  // happens); corrupt (one bit flipped at or after kCorruptFrom; frames no
  // longer than that are left intact and not counted); duplicate (a
  // byte-identical copy of the possibly corrupted frame, which then shares
  // the original's fate); reorder. A frame is held when reordered or when
  // delay_us is set, and delivered now otherwise. Held frames come out of
  // release_due()/flush() by due time, ties in push order. When the hold
  // queue is full the frame is delivered at once instead: counted, never
  // dropped, since a silent extra loss would make a run's loss rate a lie.
  template <typename Deliver>
  void push(const net::Frame& frame, uint64_t now_us, Deliver&& deliver) noexcept {
    if (!enabled_) {
      counters_.passed.add();
      deliver(frame);
      return;
    }
    push_faulty(frame, now_us, deliver);
  }

  // Delivers every held frame whose due time is at or before now_us, earliest
  // first. Deliver may push into this injector again.
  template <typename Deliver>
  void release_due(uint64_t now_us, Deliver&& deliver) noexcept {
    while (count_ != 0 && heap_[0].due_us <= now_us) deliver(pop_earliest());
  }

  // Delivers everything held, earliest first (shutdown, end of a test).
  template <typename Deliver>
  void flush(Deliver&& deliver) noexcept {
    while (count_ != 0) deliver(pop_earliest());
  }

  // Releases everything held through io, delivering nothing.
  void drain() noexcept;

  Stats stats() const noexcept;
  const FaultSpec& spec() const noexcept { return spec_; }
  bool enabled() const noexcept { return enabled_; }
  size_t held() const noexcept { return count_; }
  size_t max_held() const noexcept { return heap_.size(); }
  // Due time of the earliest held frame, UINT64_MAX when none: a worker that
  // wants to sleep must wake by then.
  uint64_t next_due_us() const noexcept { return count_ != 0 ? heap_[0].due_us : UINT64_MAX; }

 private:
  struct Held {
    uint64_t due_us = 0;
    uint64_t order = 0;  // push order, so that equal due times keep it
    net::Frame frame;
  };

  // Draws below a threshold fire; 53-bit draws let both 0 (never) and 1
  // (always) be exact.
  static constexpr int kDrawBits = 53;
  static uint64_t threshold_of(double probability) noexcept;
  bool roll(uint64_t threshold) noexcept {
    return threshold != 0 && (rng_.next() >> (64 - kDrawBits)) < threshold;
  }

  template <typename Deliver>
  void push_faulty(const net::Frame& frame, uint64_t now_us, Deliver& deliver) noexcept {
    if (roll(drop_threshold_)) {
      counters_.dropped.add();
      io_.release(frame);
      return;
    }
    counters_.passed.add();
    net::Frame original = frame;
    if (roll(corrupt_threshold_)) corrupt(original, rng_.next());
    net::Frame copy;
    const bool duplicated = roll(duplicate_threshold_) && make_copy(original, copy);
    const bool reordered = roll(reorder_threshold_);
    if (!reordered && spec_.delay_us == 0) {
      deliver(original);
      if (duplicated) deliver(copy);
      return;
    }
    const uint64_t due = now_us + spec_.delay_us + (reordered ? spec_.reorder_us : 0);
    bool held = hold(original, due);
    if (!held) deliver(original);
    if (duplicated && !hold(copy, due)) deliver(copy);
    // Counted when held, so that the counters say what the link really did.
    if (held) (reordered ? counters_.reordered : counters_.delayed).add();
  }

  // Flips the bit that draw picks among those at or after kCorruptFrom.
  void corrupt(net::Frame& frame, uint64_t draw) noexcept;
  // A byte-identical copy from io; false (counted) when there is none.
  bool make_copy(const net::Frame& frame, net::Frame& copy) noexcept;
  // False (counted) when the hold queue is full.
  bool hold(const net::Frame& frame, uint64_t due_us) noexcept;
  net::Frame pop_earliest() noexcept;

  FaultSpec spec_;
  bool enabled_;
  uint64_t drop_threshold_;
  uint64_t corrupt_threshold_;
  uint64_t duplicate_threshold_;
  uint64_t reorder_threshold_;
  FaultRng rng_;
  net::FrameIo& io_;
  std::vector<Held> heap_;  // a binary min-heap in [0, count_); never resized
  size_t count_ = 0;
  uint64_t next_order_ = 0;
  // Written by the owning thread only (common/counter.h).
  struct Counters {
#define MTLSGW_FAULT_STAT_COUNTER(name) Counter name;
    MTLSGW_FAULT_STATS(MTLSGW_FAULT_STAT_COUNTER)
#undef MTLSGW_FAULT_STAT_COUNTER
  } counters_;
};

// A FrameIo whose send() goes through a FaultInjector on its way to inner:
// the shape of a faulty transmit side (a worker's tx, or one end of a fake
// link in a test). Buffers still come from and return to inner. The owner
// calls advance(now) once per poll iteration: it sets the time that later
// sends are stamped with and hands inner what has come due.
class FaultInjectingIo final : public net::FrameIo {
 public:
  FaultInjectingIo(net::FrameIo& inner, const FaultSpec& spec, uint64_t seed,
                   size_t max_held = 1024)
      : inner_(inner), injector_(spec, seed, inner, max_held) {}

  bool alloc(net::Frame& out) noexcept override { return inner_.alloc(out); }
  void send(const net::Frame& frame) noexcept override {
    injector_.push(frame, now_us_, [this](const net::Frame& f) { inner_.send(f); });
  }
  void release(const net::Frame& frame) noexcept override { inner_.release(frame); }

  void advance(uint64_t now_us) noexcept {
    now_us_ = now_us;
    injector_.release_due(now_us, [this](const net::Frame& f) { inner_.send(f); });
  }
  // Sends everything still held (shutdown, end of a test).
  void flush() noexcept {
    injector_.flush([this](const net::Frame& f) { inner_.send(f); });
  }

  FaultInjector& injector() noexcept { return injector_; }
  const FaultInjector& injector() const noexcept { return injector_; }

 private:
  net::FrameIo& inner_;
  FaultInjector injector_;
  uint64_t now_us_ = 0;
};

}  // namespace mtlsgw::dataplane
