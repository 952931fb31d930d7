// What the shared verdict cache saves per handshake: ClientVerifier::verify on
// the chain a device sends (client-devices leaf + devices-int, as libssl
// hands it to the verify callback, certificates already parsed) against the
// devices CA's WorkerTrust built with its CRL file, as the gateway builds it
// (root -> devices-int -> leaf, CRL_CHECK_ALL: two certificate and two CRL
// signatures plus chain building).
//
// - BM_Verify_Full: no cache, no revocation set: X509_verify_cert alone,
//   plus the leaf's SHA-256 that verify now always takes.
// - BM_Verify_FullWithRevocations: the same with an operator revocation set
//   of 10,000 entries: adds the chain's revocation keys (three certificates:
//   SHA-256 of each DER, of each issuer key, and the issuer/serial key).
// - BM_Verify_CacheHit: a warm shared cache: leaf SHA-256, one lookup.
// - BM_Verify_CacheHitWithRevocations: the same plus the 10,000-entry set
//   checked against the six keys the entry kept.
// Times are CPU time per verification, one thread.

#include <benchmark/benchmark.h>
#include <openssl/rand.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/handles.h"
#include "dataplane/tls/client_verify.h"
#include "support/bench_pki.h"

namespace {

namespace tls = mtlsgw::tls;

struct Fixture {
  std::unique_ptr<const tls::TrustStore> store;
  std::unique_ptr<tls::WorkerTrust> trust;
  std::unique_ptr<tls::ClientVerifier> verifier;
  std::unique_ptr<tls::VerdictCache> cache;
  std::unique_ptr<const tls::RevocationSet> revocations;
  mtlsgw::X509StackHandle chain;

  bool load(const std::string& pki, std::string& error) {
    tls::CaSource devices;
    if (!tls::load_ca_source("devices", pki + "/devices-ca.pem", pki + "/devices.crl.pem", &devices, &error)) {
      return false;
    }
    store = tls::TrustStore::build({devices}, {}, &error);
    if (!store) return false;
    trust = store->instantiate(&error);
    verifier = tls::ClientVerifier::create();
    cache = tls::VerdictCache::create({}, &error);
    if (!trust || !verifier || !cache) return false;

    // Revoked: 9,000 random fingerprints and 1,000 serials under devices,
    // none of them this chain's.
    std::vector<tls::RevocationEntry> entries;
    for (int i = 0; i < 10000; ++i) {
      tls::RevocationEntry entry;
      if (i < 9000) {
        RAND_bytes(entry.fingerprint.bytes.data(), static_cast<int>(entry.fingerprint.bytes.size()));
      } else {
        entry.kind = tls::RevocationEntry::Kind::ca_serial;
        entry.ca_name = "devices";
        entry.serial.resize(16);
        RAND_bytes(entry.serial.data(), static_cast<int>(entry.serial.size()));
      }
      entries.push_back(std::move(entry));
    }
    revocations = tls::RevocationSet::build(entries, {devices}, &error);
    if (!revocations) return false;

    FILE* file = std::fopen((pki + "/client-devices.chain.pem").c_str(), "r");
    if (file == nullptr) {
      error = "cannot open client-devices.chain.pem";
      return false;
    }
    chain.reset(sk_X509_new_null());
    while (X509* cert = PEM_read_X509(file, nullptr, nullptr, nullptr)) sk_X509_push(chain.get(), cert);
    std::fclose(file);
    ERR_clear_error();
    if (sk_X509_num(chain.get()) != 2) {
      error = "client-devices.chain.pem should hold the leaf and devices-int";
      return false;
    }
    return true;
  }
};

Fixture* g_fixture = nullptr;

void run(benchmark::State& state, bool with_cache, bool with_revocations) {
  Fixture& f = *g_fixture;
  const tls::VerifyOptions options{with_revocations ? f.revocations.get() : nullptr,
                                   with_cache ? f.cache.get() : nullptr, 0};
  X509* leaf = sk_X509_value(f.chain.get(), 0);
  tls::VerifyFacts facts;
  // Warm: the first verification fills the cache.
  if (!f.verifier->verify(*f.trust, leaf, f.chain.get(), options, &facts).ok()) {
    state.SkipWithError("the chain does not verify");
    return;
  }
  uint64_t hits = 0;
  for (auto _ : state) {
    const tls::ClientVerdict verdict = f.verifier->verify(*f.trust, leaf, f.chain.get(), options, &facts);
    benchmark::DoNotOptimize(verdict);
    hits += facts.cache_hit ? 1 : 0;
  }
  if (hits != (with_cache ? static_cast<uint64_t>(state.iterations()) : 0)) {
    state.SkipWithError("cache hits are not what this benchmark measures");
  }
}

void BM_Verify_Full(benchmark::State& state) { run(state, false, false); }
void BM_Verify_FullWithRevocations(benchmark::State& state) { run(state, false, true); }
void BM_Verify_CacheHit(benchmark::State& state) { run(state, true, false); }
void BM_Verify_CacheHitWithRevocations(benchmark::State& state) { run(state, true, true); }

BENCHMARK(BM_Verify_Full)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Verify_FullWithRevocations)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Verify_CacheHit)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Verify_CacheHitWithRevocations)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::string error;
  const std::string pki = mtlsgw::perf::find_test_pki(error);
  Fixture fixture;
  if (pki.empty() || !fixture.load(pki, error)) {
    std::fprintf(stderr, "verify_bench: %s\n", error.c_str());
    return 1;
  }
  g_fixture = &fixture;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
