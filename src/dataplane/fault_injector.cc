#include "dataplane/fault_injector.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>

namespace mtlsgw::dataplane {
namespace {

// std::push_heap builds a max-heap; ordering by "later" puts the earliest
// due time, then the earliest push, on top.
bool later(const auto& a, const auto& b) noexcept {
  return a.due_us != b.due_us ? a.due_us > b.due_us : a.order > b.order;
}

double clamp_probability(double p) noexcept {
  if (!(p > 0)) return 0;  // also NaN
  return p < 1 ? p : 1;
}

std::string_view trim(std::string_view s) noexcept {
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

void set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

bool parse_probability(std::string_view key, std::string_view value, double& out,
                       std::string* error) {
  double p = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), p);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    set_error(error, std::string(key) + ": '" + std::string(value) + "' is not a number");
    return false;
  }
  if (!(p >= 0 && p <= 1)) {
    set_error(error,
              std::string(key) + ": " + std::string(value) + " is not a probability in [0, 1]");
    return false;
  }
  out = p;
  return true;
}

bool parse_microseconds(std::string_view key, std::string_view value, uint32_t& out,
                        std::string* error) {
  uint32_t v = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec == std::errc::result_out_of_range) {
    set_error(error, std::string(key) + ": " + std::string(value) + " is out of range (at most " +
                         std::to_string(std::numeric_limits<uint32_t>::max()) + ")");
    return false;
  }
  if (ec != std::errc{} || end != value.data() + value.size()) {
    set_error(error, std::string(key) + ": '" + std::string(value) +
                         "' is not a whole number of microseconds");
    return false;
  }
  out = v;
  return true;
}

std::string shortest(double v) {
  char buffer[64];
  const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, v);
  return ec == std::errc{} ? std::string(buffer, end) : std::string("?");
}

}  // namespace

std::optional<FaultSpec> parse_fault_spec(std::string_view text, std::string* error) {
  FaultSpec spec;
  if (trim(text).empty()) return spec;

  enum Key : unsigned { kDrop, kDuplicate, kReorder, kCorrupt, kDelay, kReorderHold, kKeys };
  static constexpr std::string_view kNames[kKeys] = {"drop",    "duplicate", "reorder",
                                                     "corrupt", "delay_us",  "reorder_us"};
  bool seen[kKeys] = {};

  while (true) {
    const size_t comma = text.find(',');
    const std::string_view item = trim(text.substr(0, comma));
    if (item.empty()) {
      set_error(error, "empty entry (two commas, or a comma at an end)");
      return std::nullopt;
    }
    const size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      set_error(error, "'" + std::string(item) + "' has no value (expected key=value)");
      return std::nullopt;
    }
    const std::string_view key = trim(item.substr(0, equals));
    const std::string_view value = trim(item.substr(equals + 1));
    const auto* found = std::find(std::begin(kNames), std::end(kNames), key);
    if (found == std::end(kNames)) {
      set_error(error, "unknown key '" + std::string(key) + "'");
      return std::nullopt;
    }
    const auto index = static_cast<unsigned>(found - std::begin(kNames));
    if (seen[index]) {
      set_error(error, "key '" + std::string(key) + "' given twice");
      return std::nullopt;
    }
    seen[index] = true;
    if (value.empty()) {
      set_error(error, std::string(key) + ": missing value");
      return std::nullopt;
    }
    bool ok = false;
    switch (index) {
      case kDrop: ok = parse_probability(key, value, spec.drop, error); break;
      case kDuplicate: ok = parse_probability(key, value, spec.duplicate, error); break;
      case kReorder: ok = parse_probability(key, value, spec.reorder, error); break;
      case kCorrupt: ok = parse_probability(key, value, spec.corrupt, error); break;
      case kDelay: ok = parse_microseconds(key, value, spec.delay_us, error); break;
      case kReorderHold: ok = parse_microseconds(key, value, spec.reorder_us, error); break;
    }
    if (!ok) return std::nullopt;
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return spec;
}

std::string format_fault_spec(const FaultSpec& spec) {
  return "drop=" + shortest(spec.drop) + ",duplicate=" + shortest(spec.duplicate) +
         ",reorder=" + shortest(spec.reorder) + ",corrupt=" + shortest(spec.corrupt) +
         ",delay_us=" + std::to_string(spec.delay_us) +
         ",reorder_us=" + std::to_string(spec.reorder_us);
}

uint64_t FaultInjector::threshold_of(double probability) noexcept {
  // Exact at 1: 2^53 is above every 53-bit draw.
  return static_cast<uint64_t>(std::ldexp(clamp_probability(probability), kDrawBits));
}

FaultInjector::FaultInjector(const FaultSpec& spec, uint64_t seed, net::FrameIo& io,
                             size_t max_held)
    : spec_(spec),
      drop_threshold_(threshold_of(spec.drop)),
      corrupt_threshold_(threshold_of(spec.corrupt)),
      duplicate_threshold_(threshold_of(spec.duplicate)),
      reorder_threshold_(threshold_of(spec.reorder)),
      rng_(seed),
      io_(io),
      heap_(max_held) {
  spec_.drop = clamp_probability(spec.drop);
  spec_.duplicate = clamp_probability(spec.duplicate);
  spec_.reorder = clamp_probability(spec.reorder);
  spec_.corrupt = clamp_probability(spec.corrupt);
  enabled_ = spec_.enabled();
}

FaultInjector::~FaultInjector() { drain(); }

FaultInjector::Stats FaultInjector::stats() const noexcept {
  Stats s;
#define MTLSGW_FAULT_STAT_READ(name) s.name = counters_.name.get();
  MTLSGW_FAULT_STATS(MTLSGW_FAULT_STAT_READ)
#undef MTLSGW_FAULT_STAT_READ
  return s;
}

void FaultInjector::drain() noexcept {
  while (count_ != 0) io_.release(heap_[--count_].frame);
}

void FaultInjector::corrupt(net::Frame& frame, uint64_t draw) noexcept {
  if (frame.len <= kCorruptFrom) return;
  // At most 65535 * 8 bits, so the 32x32-bit product cannot overflow.
  const uint64_t bits = static_cast<uint64_t>(frame.len - kCorruptFrom) * 8;
  const uint64_t pick = ((draw >> 32) * bits) >> 32;
  frame.data[kCorruptFrom + pick / 8] ^= static_cast<uint8_t>(1u << (pick % 8));
  counters_.corrupted.add();
}

bool FaultInjector::make_copy(const net::Frame& frame, net::Frame& copy) noexcept {
  if (!io_.alloc(copy)) {
    counters_.duplicate_failed.add();
    return false;
  }
  if (copy.tailroom < frame.len) {
    io_.release(copy);
    counters_.duplicate_failed.add();
    return false;
  }
  std::memcpy(copy.data, frame.data, frame.len);
  copy.append(frame.len);
  counters_.duplicated.add();
  return true;
}

bool FaultInjector::hold(const net::Frame& frame, uint64_t due_us) noexcept {
  if (count_ == heap_.size()) {
    counters_.hold_overflow.add();
    return false;
  }
  heap_[count_] = Held{due_us, next_order_++, frame};
  ++count_;
  std::push_heap(heap_.begin(), heap_.begin() + static_cast<std::ptrdiff_t>(count_),
                 later<Held, Held>);
  return true;
}

net::Frame FaultInjector::pop_earliest() noexcept {
  std::pop_heap(heap_.begin(), heap_.begin() + static_cast<std::ptrdiff_t>(count_),
                later<Held, Held>);
  --count_;
  return heap_[count_].frame;
}

}  // namespace mtlsgw::dataplane
