// Micro-benchmarks of TLS 1.3 record protection: ours (IPsec-MB AES-GCM,
// src/dataplane/tls/record_protection.h) against OpenSSL's record layer
// (SSL_write / SSL_read over memory BIOs) on the same connection's keys and
// the same record sizes, plus the batch form.
//
// What one iteration is (bytes_per_second counts plaintext):
// - BM_Seal: one record from a separate plaintext buffer into an output
//   buffer (header, streaming GCM over data then type, tag).
// - BM_SealInPlace: the plaintext already at out + 5 (one GCM call).
// - BM_Open: one record into a separate plaintext buffer, tag compared,
//   padding scan. Records are sealed beforehand, `kRing` at a time at
//   consecutive sequence numbers; refilling the ring (and re-keying the
//   receiver at sequence 0) runs with the timer paused.
// - BM_SslWrite: SSL_write_ex of one record by an OpenSSL server after a
//   real handshake, its memory BIO emptied (BIO_reset) each time.
// - BM_SslRead: SSL_read_ex of one record the OpenSSL client wrote, from
//   the server's memory BIO; refills like BM_Open.
// - BM_SealBatch: kBatch records in one seal_batch call, per method
//   (0 = one GCM call per record, 1 = the IPsec-MB job API).
// Both AES-GCM suites: arg cipher 0 = AES-128-GCM, 1 = AES-256-GCM.

#include <benchmark/benchmark.h>
#include <openssl/ssl.h>

#include <memory>
#include <vector>

#include "common/handles.h"
#include "dataplane/tls/record_protection.h"
#include "record_test_peers.h"

namespace {

using mtlsgw::ImbMgrHandle;
using mtlsgw::tls::BatchMethod;
using mtlsgw::tls::ContentType;
using mtlsgw::tls::RecordCipher;
using mtlsgw::tls::RecordProtection;
using mtlsgw::tls::RecordStatus;
using mtlsgw::tls::sealed_length;
using mtlsgw::tls::SealRequest;
using mtlsgw::tls::TrafficSecret;
using mtlsgw::tls::testing::Bytes;
using mtlsgw::tls::testing::PeerPair;
using mtlsgw::tls::testing::TestPki;

constexpr size_t kRing = 64;
constexpr size_t kBatch = 16;

RecordCipher cipher_of(const benchmark::State& state) {
  return state.range(1) == 0 ? RecordCipher::aes_128_gcm_sha256 : RecordCipher::aes_256_gcm_sha384;
}
const char* suite_of(const benchmark::State& state) {
  return state.range(1) == 0 ? "TLS_AES_128_GCM_SHA256" : "TLS_AES_256_GCM_SHA384";
}

TrafficSecret bench_secret(RecordCipher cipher) {
  TrafficSecret secret;
  secret.length = static_cast<uint8_t>(mtlsgw::tls::secret_length(cipher));
  for (size_t i = 0; i < secret.length; ++i) secret.bytes[i] = static_cast<uint8_t>(i * 29 + 3);
  return secret;
}

void BM_Seal(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  ImbMgrHandle mgr = mtlsgw::make_imb_mgr();
  RecordProtection tx;
  if (!mgr || !tx.install(*mgr, cipher_of(state), bench_secret(cipher_of(state)))) {
    state.SkipWithError("setup");
    return;
  }
  Bytes data(size, 0x5a);
  Bytes out(sealed_length(size));
  for (auto _ : state) {
    const auto r = tx.seal(*mgr, ContentType::application_data, data.data(), size, out.data(), out.size());
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_SealInPlace(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  ImbMgrHandle mgr = mtlsgw::make_imb_mgr();
  RecordProtection tx;
  if (!mgr || !tx.install(*mgr, cipher_of(state), bench_secret(cipher_of(state)))) {
    state.SkipWithError("setup");
    return;
  }
  Bytes out(sealed_length(size), 0x5a);
  for (auto _ : state) {
    const auto r = tx.seal(*mgr, ContentType::application_data, out.data() + 5, size, out.data(), out.size());
    benchmark::DoNotOptimize(r);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_Open(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const RecordCipher cipher = cipher_of(state);
  ImbMgrHandle mgr = mtlsgw::make_imb_mgr();
  RecordProtection tx;
  RecordProtection rx;
  if (!mgr || !tx.install(*mgr, cipher, bench_secret(cipher))) {
    state.SkipWithError("setup");
    return;
  }
  const size_t record_length = sealed_length(size);
  Bytes ring(kRing * record_length);
  Bytes data(size, 0x5a);
  Bytes out(size + 1);
  auto refill = [&] {
    tx.install(*mgr, cipher, bench_secret(cipher));
    rx.install(*mgr, cipher, bench_secret(cipher));
    for (size_t i = 0; i < kRing; ++i) {
      tx.seal(*mgr, ContentType::application_data, data.data(), size, ring.data() + i * record_length,
              record_length);
    }
  };
  refill();
  size_t next = 0;
  for (auto _ : state) {
    if (next == kRing) {
      state.PauseTiming();
      refill();
      next = 0;
      state.ResumeTiming();
    }
    const auto r = rx.open(*mgr, ring.data() + next * record_length, record_length, out.data(), out.size());
    if (r.status != RecordStatus::ok) {
      state.SkipWithError("open failed");
      break;
    }
    ++next;
    benchmark::DoNotOptimize(r);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

// One handshake per benchmark run; the pair stays for the timed loop.
struct OpenSslConnection {
  std::unique_ptr<TestPki> pki = std::make_unique<TestPki>();
  std::unique_ptr<PeerPair> pair;
  bool ok = false;
  explicit OpenSslConnection(const char* suite) {
    if (!pki->ok()) return;
    pair = std::make_unique<PeerPair>(*pki, suite);
    if (!pair->handshake()) return;
    pair->client.give_input(pair->server.take_output());
    Bytes ticket;
    ok = pair->client.read_all(ticket);
  }
};

void BM_SslWrite(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  OpenSslConnection c(suite_of(state));
  if (!c.ok) {
    state.SkipWithError("handshake");
    return;
  }
  SSL* ssl = c.pair->server.ssl.get();
  BIO* out = c.pair->server.out;
  Bytes data(size, 0x5a);
  for (auto _ : state) {
    size_t written = 0;
    if (SSL_write_ex(ssl, data.data(), size, &written) != 1) {
      state.SkipWithError("SSL_write");
      break;
    }
    (void)BIO_reset(out);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_SslRead(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  OpenSslConnection c(suite_of(state));
  if (!c.ok) {
    state.SkipWithError("handshake");
    return;
  }
  SSL* ssl = c.pair->server.ssl.get();
  Bytes data(size, 0x5a);
  Bytes out(size);
  Bytes ring;
  auto refill = [&] {
    for (size_t i = 0; i < kRing; ++i) c.pair->client.write(data);
    ring = c.pair->client.take_output();
  };
  size_t next = kRing;
  const size_t record_length = sealed_length(size);
  for (auto _ : state) {
    if (next == kRing) {
      state.PauseTiming();
      refill();
      next = 0;
      state.ResumeTiming();
    }
    BIO_write(c.pair->server.in, ring.data() + next * record_length, static_cast<int>(record_length));
    size_t n = 0;
    if (SSL_read_ex(ssl, out.data(), out.size(), &n) != 1 || n != size) {
      state.SkipWithError("SSL_read");
      break;
    }
    ++next;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * size));
}

void BM_SealBatch(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  const auto method = state.range(2) == 0 ? BatchMethod::gcm_calls : BatchMethod::job_api;
  ImbMgrHandle mgr = mtlsgw::make_imb_mgr();
  RecordProtection tx;
  if (!mgr || !tx.install(*mgr, cipher_of(state), bench_secret(cipher_of(state)))) {
    state.SkipWithError("setup");
    return;
  }
  // The plaintext already in place, as the job API needs it (no copy in
  // either method).
  std::vector<Bytes> outs(kBatch, Bytes(sealed_length(size), 0x5a));
  std::vector<SealRequest> requests(kBatch);
  for (size_t i = 0; i < kBatch; ++i) {
    requests[i] = {ContentType::application_data, outs[i].data() + 5, size, outs[i].data(), outs[i].size(), {}};
  }
  for (auto _ : state) {
    const size_t sealed = tx.seal_batch(*mgr, requests.data(), kBatch, method);
    if (sealed != kBatch) {
      state.SkipWithError("seal_batch");
      break;
    }
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kBatch * size));
}

void sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "cipher"});
  for (int cipher : {0, 1}) {
    for (int size : {64, 256, 1024, 4096, 16384}) b->Args({size, cipher});
  }
}

void batch_sizes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"size", "cipher", "method"});
  for (int cipher : {0, 1}) {
    for (int size : {64, 256, 1024, 4096, 16384}) {
      for (int method : {0, 1}) b->Args({size, cipher, method});
    }
  }
}

BENCHMARK(BM_Seal)->Apply(sizes);
BENCHMARK(BM_SealInPlace)->Apply(sizes);
BENCHMARK(BM_Open)->Apply(sizes);
BENCHMARK(BM_SslWrite)->Apply(sizes);
BENCHMARK(BM_SslRead)->Apply(sizes);
BENCHMARK(BM_SealBatch)->Apply(batch_sizes);

}  // namespace

BENCHMARK_MAIN();
