#pragma once
// An open-addressing index from a small key to a 32-bit slot number, with
// linear probing and backward-shift deletion (no tombstones, so lookups stay
// short however much churn there is). Fixed capacity, no allocation after
// construction: the connection table of a worker uses it on every packet.

#include <bit>
#include <cstdint>
#include <vector>

namespace mtlsgw {

template <typename Key, typename Hash>
class FlatIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;

  // Room for max_entries with the table at most half full.
  explicit FlatIndex(uint32_t max_entries)
      : slots_(std::bit_ceil(std::max<uint32_t>(max_entries * 2, 8))), mask_(slots_.size() - 1) {}

  uint32_t find(const Key& key) const noexcept {
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.value == kNone) return kNone;
      if (s.key == key) return s.value;
    }
  }

  // False when the key is present already or the table is full.
  bool insert(const Key& key, uint32_t value) noexcept {
    if (size_ >= slots_.size() / 2) return false;
    for (size_t i = home(key);; i = (i + 1) & mask_) {
      Slot& s = slots_[i];
      if (s.value == kNone) {
        s.key = key;
        s.value = value;
        ++size_;
        return true;
      }
      if (s.key == key) return false;
    }
  }

  bool erase(const Key& key) noexcept {
    size_t i = home(key);
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].value == kNone) return false;
      if (slots_[i].key == key) break;
    }
    slots_[i].value = kNone;
    --size_;
    size_t hole = i;
    for (size_t j = (i + 1) & mask_; slots_[j].value != kNone; j = (j + 1) & mask_) {
      const size_t h = home(slots_[j].key);
      // Move j into the hole unless its home lies cyclically in (hole, j].
      const bool stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        slots_[j].value = kNone;
        hole = j;
      }
    }
    return true;
  }

  uint32_t size() const noexcept { return size_; }

 private:
  struct Slot {
    Key key{};
    uint32_t value = kNone;
  };
  size_t home(const Key& key) const noexcept { return Hash{}(key) & mask_; }

  std::vector<Slot> slots_;
  size_t mask_;
  uint32_t size_ = 0;
};

}  // namespace mtlsgw
