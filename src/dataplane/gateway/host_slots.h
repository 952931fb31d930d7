#pragma once
// Which host each per-host counter slot belongs to. A worker counts
// handshakes per host in a fixed table (HostCounterTable) indexed by slot,
// not by the host's position in the current tables: hosts come and go
// through the control socket, positions change with every publication, and
// a counter must keep adding up under the same name across them.
//
// The control thread assigns slots (a name keeps its slot while the process
// lives; a slot whose host was deleted is given to a new name only when
// every slot is taken); stats readers map slots back to names. Workers never
// touch this object, so a mutex is enough here.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mtlsgw::gateway {

class HostSlots {
 public:
  static constexpr uint32_t kNoSlot = UINT32_MAX;

  explicit HostSlots(uint32_t capacity) : capacity_(capacity) {}

  uint32_t capacity() const noexcept { return capacity_; }

  // The slot of `name`, assigned now if it has none. Live names (those of
  // the hosts in the tables about to be published) keep theirs; when every
  // slot is taken, the slot of a name not in `live` is reassigned. kNoSlot
  // when all slots belong to live names.
  uint32_t assign(std::string_view name, const std::vector<std::string>& live) {
    std::lock_guard lock(mutex_);
    for (uint32_t i = 0; i < names_.size(); ++i) {
      if (names_[i] == name) return i;
    }
    if (names_.size() < capacity_) {
      names_.emplace_back(name);
      return static_cast<uint32_t>(names_.size() - 1);
    }
    for (uint32_t i = 0; i < names_.size(); ++i) {
      bool in_use = false;
      for (const std::string& l : live) in_use = in_use || l == names_[i];
      if (!in_use) {
        names_[i] = std::string(name);
        ++reassigned_;
        return i;
      }
    }
    return kNoSlot;
  }

  // Names by slot, for the stats readers.
  std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    return names_;
  }

  // How many slots changed owner: a reassigned slot's counters start from
  // what its previous host had counted (documented in docs/control.md).
  uint64_t reassigned() const {
    std::lock_guard lock(mutex_);
    return reassigned_;
  }

 private:
  const uint32_t capacity_;
  mutable std::mutex mutex_;
  std::vector<std::string> names_;
  uint64_t reassigned_ = 0;
};

}  // namespace mtlsgw::gateway
