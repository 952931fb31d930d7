// Crypto ceilings of issue 5: what the public-key operations of one TLS 1.3
// mTLS handshake cost on one core, and AES-256-GCM record encryption with
// OpenSSL and with IPsec-MB 1.3 (docs/benchmarks.md, "Crypto ceilings and TLS
// costs"). perf/compare reads this binary's JSON output: the benchmark names
// and the items_per_second / bytes_per_second fields are its contract.
//
// - BM_Ceiling_FullMtlsHandshake: one iteration = the server's public-key
//   work of one full handshake (perf/support/handshake_crypto.h): X25519 key
//   share, ECDSA P-256 sign, ECDSA P-256 verify, client chain verification
//   with CRLs. items_per_second = handshakes per second the crypto alone
//   allows on one core.
// - BM_Ceiling_ResumedHandshake: the X25519 key share of a psk_dhe_ke
//   resumption.
// - BM_Ceiling_<primitive>: each of the four alone; their times add up to
//   the full handshake's.
// - BM_AesGcm_OpenSSL/<bytes>, BM_AesGcm_IpsecMb/<bytes>: one TLS 1.3 record
//   of that much plaintext sealed with AES-256-GCM: a fresh nonce (static IV
//   XOR record number, RFC 8446 5.3), the 5-byte record header as AAD
//   (5.2), a 16-byte tag. OpenSSL through EVP with the cipher fetched once
//   and one context re-keyed with the nonce only; IPsec-MB with the key
//   expanded once (IMB_AES256_GCM_PRE) and one IMB_AES256_GCM_ENC call per
//   record. Both are checked at start-up to give the same ciphertext and tag;
//   a mismatch stops the binary with an error.

#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/handles.h"
#include "support/bench_pki.h"
#include "support/handshake_crypto.h"

namespace {

using mtlsgw::perf::HandshakeCrypto;

// Google Benchmark 1.7 exits 0 after SkipWithError; main() exits non-zero
// when any benchmark failed, so `meson test --benchmark` fails too.
bool g_failed = false;

void fail(benchmark::State& state, const std::string& message) {
  g_failed = true;
  state.SkipWithError(message.c_str());
}

HandshakeCrypto* g_crypto = nullptr;

void run_ceiling(benchmark::State& state, bool (HandshakeCrypto::*op)()) {
  for (auto _ : state) {
    if (!(g_crypto->*op)()) {
      fail(state, "OpenSSL failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Ceiling_FullMtlsHandshake(benchmark::State& state) {
  run_ceiling(state, &HandshakeCrypto::full_handshake);
  state.counters["chain_length"] = g_crypto->chain_length();
}
void BM_Ceiling_ResumedHandshake(benchmark::State& state) { run_ceiling(state, &HandshakeCrypto::resumed_handshake); }
void BM_Ceiling_X25519KeyShare(benchmark::State& state) { run_ceiling(state, &HandshakeCrypto::x25519_key_share); }
void BM_Ceiling_EcdsaP256Sign(benchmark::State& state) { run_ceiling(state, &HandshakeCrypto::ecdsa_sign); }
void BM_Ceiling_EcdsaP256Verify(benchmark::State& state) { run_ceiling(state, &HandshakeCrypto::ecdsa_verify); }
void BM_Ceiling_ChainVerify(benchmark::State& state) { run_ceiling(state, &HandshakeCrypto::chain_verify); }

// ---- AES-256-GCM, one TLS 1.3 record per iteration ----

constexpr size_t kMaxRecord = 16384;
constexpr size_t kTagLen = 16;
constexpr size_t kAadLen = 5;

struct RecordKeys {
  uint8_t key[32];
  uint8_t static_iv[12];
};

RecordKeys make_keys() {
  RecordKeys k;
  for (size_t i = 0; i < sizeof k.key; ++i) k.key[i] = static_cast<uint8_t>(0x11 * i + 3);
  for (size_t i = 0; i < sizeof k.static_iv; ++i) k.static_iv[i] = static_cast<uint8_t>(0x5c ^ (7 * i));
  return k;
}

// RFC 8446 5.3: the 64-bit record number, left-padded, XORed into the IV.
void record_nonce(const RecordKeys& keys, uint64_t seq, uint8_t (&nonce)[12]) {
  std::memcpy(nonce, keys.static_iv, sizeof nonce);
  for (int i = 0; i < 8; ++i) nonce[11 - i] ^= static_cast<uint8_t>(seq >> (8 * i));
}

// RFC 8446 5.2: opaque_type 23, legacy_record_version 0x0303, length of
// the ciphertext (plaintext + inner content type + tag).
void record_header(size_t plaintext, uint8_t (&aad)[kAadLen]) {
  const size_t len = plaintext + kTagLen;
  aad[0] = 23;
  aad[1] = 3;
  aad[2] = 3;
  aad[3] = static_cast<uint8_t>(len >> 8);
  aad[4] = static_cast<uint8_t>(len);
}

class OpenSslGcm {
 public:
  bool init(const RecordKeys& keys) {
    keys_ = keys;
    cipher_.reset(EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr));
    ctx_.reset(EVP_CIPHER_CTX_new());
    return cipher_ && ctx_ && EVP_EncryptInit_ex2(ctx_.get(), cipher_.get(), keys.key, nullptr, nullptr) == 1;
  }
  bool seal(uint64_t seq, const uint8_t* in, size_t len, uint8_t* out, uint8_t* tag) {
    uint8_t nonce[12];
    uint8_t aad[kAadLen];
    record_nonce(keys_, seq, nonce);
    record_header(len, aad);
    int n = 0;
    int tail = 0;
    return EVP_EncryptInit_ex2(ctx_.get(), nullptr, nullptr, nonce, nullptr) == 1 &&
           EVP_EncryptUpdate(ctx_.get(), nullptr, &n, aad, kAadLen) == 1 &&
           EVP_EncryptUpdate(ctx_.get(), out, &n, in, static_cast<int>(len)) == 1 &&
           EVP_EncryptFinal_ex(ctx_.get(), out + n, &tail) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_GCM_GET_TAG, kTagLen, tag) == 1;
  }

 private:
  RecordKeys keys_;
  mtlsgw::EvpCipherHandle cipher_;
  mtlsgw::EvpCipherCtxHandle ctx_;
};

class IpsecMbGcm {
 public:
  bool init(const RecordKeys& keys) {
    keys_ = keys;
    mgr_.reset(alloc_mb_mgr(0));
    if (!mgr_) return false;
    IMB_ARCH arch;
    init_mb_mgr_auto(mgr_.get(), &arch);
    if (imb_get_errno(mgr_.get()) != 0) return false;
    arch_ = arch;
    IMB_AES256_GCM_PRE(mgr_.get(), keys.key, &expanded_);
    return imb_get_errno(mgr_.get()) == 0;
  }
  bool seal(uint64_t seq, const uint8_t* in, size_t len, uint8_t* out, uint8_t* tag) {
    uint8_t nonce[12];
    uint8_t aad[kAadLen];
    record_nonce(keys_, seq, nonce);
    record_header(len, aad);
    IMB_AES256_GCM_ENC(mgr_.get(), &expanded_, &context_, out, in, len, nonce, aad, kAadLen, tag, kTagLen);
    return true;
  }
  const char* arch_name() const {
    switch (arch_) {
      case IMB_ARCH_SSE:
        return "sse";
      case IMB_ARCH_AVX:
        return "avx";
      case IMB_ARCH_AVX2:
        return "avx2";
      case IMB_ARCH_AVX512:
        return "avx512";
      default:
        return "other";
    }
  }

 private:
  RecordKeys keys_;
  mtlsgw::ImbMgrHandle mgr_;
  IMB_ARCH arch_ = IMB_ARCH_NONE;
  alignas(64) gcm_key_data expanded_;
  alignas(64) gcm_context_data context_;
};

OpenSslGcm* g_openssl_gcm = nullptr;
IpsecMbGcm* g_ipsec_gcm = nullptr;

template <typename Gcm>
void run_gcm(benchmark::State& state, Gcm& gcm) {
  const size_t len = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> in(len, 0x42);
  std::vector<uint8_t> out(len + 64);
  uint8_t tag[kTagLen];
  uint64_t seq = 0;
  for (auto _ : state) {
    if (!gcm.seal(seq++, in.data(), len, out.data(), tag)) {
      fail(state, "encryption failed");
      break;
    }
    benchmark::DoNotOptimize(out.data());
    benchmark::DoNotOptimize(tag);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * len));
}

void BM_AesGcm_OpenSSL(benchmark::State& state) { run_gcm(state, *g_openssl_gcm); }
void BM_AesGcm_IpsecMb(benchmark::State& state) {
  run_gcm(state, *g_ipsec_gcm);
  state.SetLabel(g_ipsec_gcm->arch_name());
}

// The same record sealed by both: equal ciphertext and tag for every size
// the benchmarks use, at a record number with high bytes set.
bool same_ciphertext(OpenSslGcm& a, IpsecMbGcm& b, std::string& error) {
  std::vector<uint8_t> in(kMaxRecord);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(i * 131 + 7);
  std::vector<uint8_t> out_a(kMaxRecord), out_b(kMaxRecord);
  for (size_t len : {64, 256, 1024, 4096, 16384, 1}) {
    uint8_t tag_a[kTagLen], tag_b[kTagLen];
    const uint64_t seq = 0x0102'0304'0506'0708 + len;
    if (!a.seal(seq, in.data(), len, out_a.data(), tag_a) || !b.seal(seq, in.data(), len, out_b.data(), tag_b)) {
      error = "AES-256-GCM encryption failed";
      return false;
    }
    if (std::memcmp(out_a.data(), out_b.data(), len) != 0 || std::memcmp(tag_a, tag_b, kTagLen) != 0) {
      error = "OpenSSL and IPsec-MB disagree on AES-256-GCM of " + std::to_string(len) + " bytes";
      return false;
    }
  }
  return true;
}

}  // namespace

BENCHMARK(BM_Ceiling_FullMtlsHandshake);
BENCHMARK(BM_Ceiling_ResumedHandshake);
BENCHMARK(BM_Ceiling_X25519KeyShare);
BENCHMARK(BM_Ceiling_EcdsaP256Sign);
BENCHMARK(BM_Ceiling_EcdsaP256Verify);
BENCHMARK(BM_Ceiling_ChainVerify);
BENCHMARK(BM_AesGcm_OpenSSL)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(16384);
BENCHMARK(BM_AesGcm_IpsecMb)->Arg(64)->Arg(256)->Arg(1024)->Arg(4096)->Arg(16384);

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  std::string error;
  const std::string pki = mtlsgw::perf::find_test_pki(error);
  std::unique_ptr<HandshakeCrypto> crypto = pki.empty() ? nullptr : HandshakeCrypto::load(pki, error);
  if (!crypto) {
    std::fprintf(stderr, "crypto_bench: %s\n", error.c_str());
    return 1;
  }
  g_crypto = crypto.get();

  OpenSslGcm openssl_gcm;
  IpsecMbGcm ipsec_gcm;
  if (!openssl_gcm.init(make_keys()) || !ipsec_gcm.init(make_keys())) {
    std::fprintf(stderr, "crypto_bench: cannot set up AES-256-GCM (OpenSSL or IPsec-MB %s)\n", imb_get_version_str());
    return 1;
  }
  if (!same_ciphertext(openssl_gcm, ipsec_gcm, error)) {
    std::fprintf(stderr, "crypto_bench: %s\n", error.c_str());
    return 1;
  }
  g_openssl_gcm = &openssl_gcm;
  g_ipsec_gcm = &ipsec_gcm;
  benchmark::AddCustomContext("ipsec_mb", imb_get_version_str());
  benchmark::AddCustomContext("openssl", OpenSSL_version(OPENSSL_VERSION));
  benchmark::AddCustomContext("test_pki", pki);

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return g_failed ? 1 : 0;
}
