#include "dataplane/tls/openssl_heap.h"

#include <malloc.h>
#include <openssl/crypto.h>

#include <atomic>
#include <cstdlib>

namespace mtlsgw::tls {

namespace {

// One counter per thread, each on its own cache line. Threads beyond the
// table (none in practice: workers + control + log writer) share the last
// one with atomic adds.
constexpr uint32_t kOwnedSlots = 255;

struct alignas(64) Slot {
  std::atomic<int64_t> bytes{0};
};

Slot g_slots[kOwnedSlots + 1];
std::atomic<uint32_t> g_next_slot{0};
std::atomic<bool> g_installed{false};
thread_local Slot* t_slot = nullptr;

Slot* claim_slot() noexcept {
  const uint32_t index = g_next_slot.fetch_add(1, std::memory_order_relaxed);
  t_slot = &g_slots[index < kOwnedSlots ? index : kOwnedSlots];
  return t_slot;
}

void account(int64_t delta) noexcept {
  Slot* slot = t_slot != nullptr ? t_slot : claim_slot();
  if (slot != &g_slots[kOwnedSlots]) {
    // Only this thread writes its slot: a plain read-modify-write is enough
    // and spares a locked instruction per allocation.
    slot->bytes.store(slot->bytes.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
  } else {
    slot->bytes.fetch_add(delta, std::memory_order_relaxed);
  }
}

void* counted_malloc(size_t num, const char*, int) {
  void* p = std::malloc(num);
  if (p != nullptr) account(static_cast<int64_t>(malloc_usable_size(p)));
  return p;
}

void* counted_realloc(void* addr, size_t num, const char*, int) {
  const int64_t before = addr != nullptr ? static_cast<int64_t>(malloc_usable_size(addr)) : 0;
  void* p = std::realloc(addr, num);
  if (p != nullptr) {
    account(static_cast<int64_t>(malloc_usable_size(p)) - before);
  } else if (num == 0) {
    account(-before);  // realloc(p, 0) freed p
  }
  return p;
}

void counted_free(void* addr, const char*, int) {
  if (addr == nullptr) return;
  account(-static_cast<int64_t>(malloc_usable_size(addr)));
  std::free(addr);
}

}  // namespace

bool install_openssl_heap_accounting() noexcept {
  if (g_installed.load(std::memory_order_acquire)) return true;
  if (CRYPTO_set_mem_functions(counted_malloc, counted_realloc, counted_free) != 1) return false;
  g_installed.store(true, std::memory_order_release);
  return true;
}

int64_t openssl_heap_bytes() noexcept {
  if (!g_installed.load(std::memory_order_acquire)) return -1;
  int64_t sum = 0;
  for (const Slot& slot : g_slots) sum += slot.bytes.load(std::memory_order_relaxed);
  return sum;
}

int64_t openssl_heap_bytes_this_thread() noexcept {
  if (!g_installed.load(std::memory_order_acquire)) return -1;
  const Slot* slot = t_slot != nullptr ? t_slot : claim_slot();
  return slot->bytes.load(std::memory_order_relaxed);
}

}  // namespace mtlsgw::tls
