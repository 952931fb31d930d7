#pragma once
// The bytes OpenSSL holds on the heap, counted as it allocates, so that the
// gateway can say what a connection costs in memory (issue 5's target: at
// most 8 KiB per idle established mTLS connection) without sampling RSS,
// which hugepages, preallocated pools and glibc's arenas make meaningless.
//
// OpenSSL routes every allocation of its own through the functions given to
// CRYPTO_set_mem_functions, which it accepts only before its first
// allocation: install_openssl_heap_accounting() must run first thing in
// main(). Each thread adds to its own cache line (no sharing between workers
// on the hot path); a free on another thread than the allocation subtracts
// there, so only the sum over threads means anything.

#include <cstdint>

namespace mtlsgw::tls {

// False when OpenSSL has already allocated (the counts would be wrong, so
// nothing is installed and openssl_heap_bytes() reports -1).
bool install_openssl_heap_accounting() noexcept;

// Live bytes allocated by OpenSSL in the whole process, as malloc sized them
// (malloc_usable_size: the real footprint, not the requested size); -1 when
// accounting is not installed.
int64_t openssl_heap_bytes() noexcept;

// The same, added and freed by the calling thread only: exact for what one
// thread allocates between two reads (the size of an SSL object as made),
// meaningless as a total.
int64_t openssl_heap_bytes_this_thread() noexcept;

}  // namespace mtlsgw::tls
