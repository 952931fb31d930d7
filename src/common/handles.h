#pragma once
// RAII owners for the C handles the project uses, one line each, so that no
// error path leaks one. Later layers add OpenSSL and IPsec-MB handles here.

#include <rte_mempool.h>
#include <rte_ring.h>

#include <memory>

namespace mtlsgw {

template <typename T, auto Free>
struct CHandleDeleter {
  void operator()(T* p) const noexcept {
    if (p != nullptr) Free(p);
  }
};
template <typename T, auto Free>
using CHandle = std::unique_ptr<T, CHandleDeleter<T, Free>>;

using MempoolHandle = CHandle<rte_mempool, rte_mempool_free>;
using RingHandle = CHandle<rte_ring, rte_ring_free>;

}  // namespace mtlsgw
