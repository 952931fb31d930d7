#include "dataplane/tls/openssl_heap.h"

#include <gtest/gtest.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <thread>

namespace mtlsgw::tls {
namespace {

// One test: the accounting can only be installed before OpenSSL's first
// allocation in the process, so the steps share that one installation.
TEST(OpensslHeap, CountsWhatOpensslHoldsAcrossAllocReallocFreeAndThreads) {
  ASSERT_TRUE(install_openssl_heap_accounting());
  EXPECT_TRUE(install_openssl_heap_accounting()) << "a second call keeps the first";
  // The first X509 sets up OpenSSL's lazily made global state, which stays.
  X509_free(X509_new());
  const int64_t start = openssl_heap_bytes();
  ASSERT_GT(start, 0);

  const int64_t mine = openssl_heap_bytes_this_thread();
  X509* cert = X509_new();
  ASSERT_NE(cert, nullptr);
  const int64_t with_cert = openssl_heap_bytes_this_thread();
  EXPECT_GT(with_cert, mine);
  EXPECT_EQ(openssl_heap_bytes() - start, with_cert - mine) << "one thread allocated";
  X509_free(cert);
  EXPECT_EQ(openssl_heap_bytes_this_thread(), mine);

  void* block = OPENSSL_malloc(100);
  ASSERT_NE(block, nullptr);
  const int64_t small = openssl_heap_bytes() - start;
  EXPECT_GE(small, 100);
  block = OPENSSL_realloc(block, 10'000);
  ASSERT_NE(block, nullptr);
  EXPECT_GE(openssl_heap_bytes() - start, 10'000);

  // Freed on another thread: that thread's count goes down, the total is
  // right again.
  std::thread([block] { OPENSSL_free(block); }).join();
  EXPECT_EQ(openssl_heap_bytes(), start);

  void* from_thread = nullptr;
  std::thread([&from_thread] { from_thread = OPENSSL_zalloc(4096); }).join();
  ASSERT_NE(from_thread, nullptr);
  EXPECT_GE(openssl_heap_bytes() - start, 4096) << "a thread that has ended still counts";
  OPENSSL_free(from_thread);
  EXPECT_EQ(openssl_heap_bytes(), start);
}

}  // namespace
}  // namespace mtlsgw::tls
