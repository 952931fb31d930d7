#pragma once
// The set of CAs a host trusts for client certificates: roots and
// intermediates from the operator's CA files, their CRLs, and the verification
// policy (maximum depth, revocation). Two objects, two threads:
//
// - TrustStore is built on the control thread from CA sources, checked there
//   (so a bad CA file or a CRL that fits no CA is refused with a message, not
//   discovered by failing handshakes), and never changes afterwards. A CRL or
//   CA update builds a new TrustStore; revocation takes effect when it is
//   published.
// - WorkerTrust is one worker's private copy, made from a TrustStore by
//   instantiate() on the control thread and then used by that worker alone.
//
// Why a copy per worker instead of one shared X509_STORE: OpenSSL 3.0 takes the
// store's lock for every issuer and CRL lookup during chain building (a write
// lock in 3.0, X509_STORE_CTX_get_by_subject; made a read lock only later, see
// openssl#20952), bumps the atomic reference count of every certificate and CRL
// it finds, and takes each certificate's own rwlock when it reads its cached
// extensions. Shared between workers, all of these are cache lines written by
// every core on every handshake (openssl#20286 measures what such contention
// costs 3.0). With a copy per worker, made by re-encoding every certificate and
// CRL (X509_dup), no handshake touches memory another worker writes. The price
// is memory (a few KiB per CA per worker) and one decode per object per worker
// at publication, on the control thread.
//
// Revocation policy per source: a source with a CRL file must carry a CRL for
// every CA certificate in it, and chains under its roots are checked at every
// level (X509_V_FLAG_CRL_CHECK_ALL: an intermediate revoked by the root counts,
// as in nginx's ssl_crl and HAProxy's crl-file). A source without a CRL file is
// not checked for revocation, and build() says so in its warnings.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/handles.h"

namespace mtlsgw::tls {

// One operator CA entry ("cas" in the config): PEM text, not paths, so the
// control socket can hand over uploaded files the same way.
struct CaSource {
  std::string name;     // "devices"; used in messages
  std::string cert_pem;  // one or more CA certificates (roots and/or intermediates)
  std::string crl_pem;   // zero or more CRLs; empty: no revocation check for this CA
};

// A PEM file's text, up to kMaxPemBytes.
bool read_pem_file(const std::string& path, std::string* out, std::string* error);

// Reads the two files into a CaSource; crl_path may be empty.
bool load_ca_source(std::string_view name, const std::string& cert_path, const std::string& crl_path,
                    CaSource* out, std::string* error);

struct TrustOptions {
  // Intermediates allowed between the leaf and the root (OpenSSL's verify
  // depth: neither the leaf nor the root counts). 2 fits a three-tier PKI
  // (root, policy CA, issuing CA); nginx defaults to 1, OpenSSL to 100.
  int max_intermediates = 2;
};

// Limits on what one TrustStore may hold, so an uploaded file cannot make the
// control thread or every worker hold an unbounded amount.
inline constexpr std::size_t kMaxCaCertificates = 256;
inline constexpr std::size_t kMaxCrls = 256;
inline constexpr std::size_t kMaxPemBytes = 8 * 1024 * 1024;

class WorkerTrust;

class TrustStore {
 public:
  // Parses and checks every source. On failure returns null and says why in
  // *error (which source, which certificate or CRL, what is wrong).
  static std::unique_ptr<const TrustStore> build(const std::vector<CaSource>& sources,
                                                 const TrustOptions& options, std::string* error);

  // A private copy for one worker. Control thread; null only when OpenSSL
  // runs out of memory.
  std::unique_ptr<WorkerTrust> instantiate(std::string* error) const;

  // The CA names for CertificateRequest's certificate_authorities (RFC 8446
  // 4.2.4): every CA subject, roots and intermediates, so a client can pick a
  // certificate issued at any level. The caller owns the stack
  // (SSL_CTX_set0_CA_list takes it).
  X509NameStackHandle make_ca_names() const;

  const TrustOptions& options() const noexcept { return options_; }
  // Unique per build in this process and never reused (a process-wide
  // counter, starting at 1): the verdict cache keys verdicts by it, so a new
  // CA set or CRL load, which is a new TrustStore, misses exactly the
  // verdicts reached under the old one (verdict_cache.h).
  uint64_t generation() const noexcept { return generation_; }
  std::size_t ca_count() const noexcept { return cas_.size(); }
  std::size_t crl_count() const noexcept { return crls_.size(); }
  // The earliest nextUpdate of all CRLs (epoch seconds), 0 if none: after it,
  // chains through that CA fail as revocation_unknown until a fresh CRL is
  // loaded. A verdict cache must not keep an ok verdict beyond it.
  int64_t earliest_crl_next_update() const noexcept { return earliest_crl_next_update_; }
  // Things an operator should know that do not stop the load (a source
  // without CRL, an intermediate whose issuer is not in the set, an expired
  // CA, a CRL past its nextUpdate).
  const std::vector<std::string>& warnings() const noexcept { return warnings_; }

 private:
  struct Ca {
    X509Handle cert;
    bool root = false;         // self-signed: a trust anchor
    bool crl_checked = false;  // its source has a CRL file
  };
  TrustStore() = default;

  TrustOptions options_;
  uint64_t generation_ = 0;
  std::vector<Ca> cas_;
  std::vector<X509CrlHandle> crls_;
  bool any_crl_ = false;
  int64_t earliest_crl_next_update_ = 0;
  std::vector<std::string> warnings_;
};

// One worker's X509_STORE and what its verify callback needs. Immutable after
// instantiate(); only its worker uses it.
class WorkerTrust {
 public:
  X509_STORE* store() const noexcept { return store_.get(); }
  int max_intermediates() const noexcept { return max_intermediates_; }
  // The TrustStore's, copied: what a verdict reached on this copy is keyed
  // by, and when it stops holding.
  uint64_t generation() const noexcept { return generation_; }
  int64_t earliest_crl_next_update() const noexcept { return earliest_crl_next_update_; }
  // Roots whose source has no CRL file: a chain ending in one of them is not
  // refused for a missing CRL. Pointers into this copy's own store.
  bool revocation_exempt(const X509* root) const noexcept;

 private:
  friend class TrustStore;
  WorkerTrust() = default;

  X509StoreHandle store_;
  int max_intermediates_ = 0;
  uint64_t generation_ = 0;
  int64_t earliest_crl_next_update_ = 0;
  std::vector<const X509*> revocation_exempt_roots_;
};

}  // namespace mtlsgw::tls
