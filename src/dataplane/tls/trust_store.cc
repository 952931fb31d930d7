#include "dataplane/tls/trust_store.h"

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include <algorithm>
#include <atomic>
#include <fstream>

#include "dataplane/tls/x509_text.h"

namespace mtlsgw::tls {
namespace {

std::string name_text(const X509_NAME* name) {
  std::string text;
  rfc2253_name(name, 512, &text);
  return text.empty() ? std::string("(empty name)") : text;
}

std::string openssl_reason() {
  const unsigned long code = ERR_peek_last_error();
  if (code == 0) return "no detail from OpenSSL";
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : fmt::format("OpenSSL error {:#x}", code);
}


// Reads every PEM block of type T (CERTIFICATE or X509 CRL) from text; blocks
// of other types are skipped, as OpenSSL's own file loaders do. The end of
// the text shows up as PEM_R_NO_START_LINE; anything else is a broken block.
template <typename T, typename Handle>
bool read_pem_objects(std::string_view text, T* (*read)(BIO*, T**, pem_password_cb*, void*),
                      std::size_t limit, std::vector<Handle>* out, std::string* why) {
  BioHandle bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (bio == nullptr) {
    *why = "out of memory";
    return false;
  }
  for (std::size_t index = 1;; ++index) {
    ERR_set_mark();
    T* object = read(bio.get(), nullptr, nullptr, nullptr);
    if (object == nullptr) {
      const unsigned long code = ERR_peek_last_error();
      const bool end = ERR_GET_LIB(code) == ERR_LIB_PEM && ERR_GET_REASON(code) == PEM_R_NO_START_LINE;
      if (!end) *why = fmt::format("PEM block {} does not decode ({})", index, openssl_reason());
      ERR_pop_to_mark();
      return end;
    }
    ERR_pop_to_mark();
    out->emplace_back(object);
    if (out->size() > limit) {
      *why = fmt::format("more than {} objects", limit);
      return false;
    }
  }
}

int64_t now_epoch() { return static_cast<int64_t>(time(nullptr)); }

// Written only by builds on the control thread(s); 64 bits never wrap.
std::atomic<uint64_t> g_next_generation{1};

}  // namespace

bool read_pem_file(const std::string& path, std::string* out, std::string* error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *error = fmt::format("cannot open {}", path);
    return false;
  }
  out->clear();
  char chunk[16384];
  while (in.read(chunk, sizeof chunk) || in.gcount() > 0) {
    out->append(chunk, static_cast<std::size_t>(in.gcount()));
    if (out->size() > kMaxPemBytes) {
      *error = fmt::format("{} is larger than {} bytes", path, kMaxPemBytes);
      return false;
    }
  }
  if (in.bad()) {
    *error = fmt::format("cannot read {}", path);
    return false;
  }
  return true;
}

bool load_ca_source(std::string_view name, const std::string& cert_path, const std::string& crl_path,
                    CaSource* out, std::string* error) {
  out->name.assign(name);
  if (!read_pem_file(cert_path, &out->cert_pem, error)) return false;
  out->crl_pem.clear();
  return crl_path.empty() || read_pem_file(crl_path, &out->crl_pem, error);
}

std::unique_ptr<const TrustStore> TrustStore::build(const std::vector<CaSource>& sources,
                                                    const TrustOptions& options, std::string* error) {
  std::string discard;
  if (error == nullptr) error = &discard;
  if (options.max_intermediates < 0 || options.max_intermediates > 16) {
    *error = fmt::format("max depth {} is outside 0..16", options.max_intermediates);
    return nullptr;
  }
  OpenSslErrorScope errors;
  std::unique_ptr<TrustStore> store(new TrustStore);
  store->options_ = options;
  store->generation_ = g_next_generation.fetch_add(1, std::memory_order_relaxed);
  const int64_t now = now_epoch();

  for (const CaSource& source : sources) {
    std::vector<X509Handle> certs;
    std::string why;
    if (!read_pem_objects(source.cert_pem, PEM_read_bio_X509, kMaxCaCertificates, &certs, &why)) {
      *error = fmt::format("CA {}: certificates: {}", source.name, why);
      return nullptr;
    }
    if (certs.empty()) {
      *error = fmt::format("CA {}: no PEM certificate in the CA file", source.name);
      return nullptr;
    }
    const bool has_crl_file = !source.crl_pem.empty();
    std::vector<X509CrlHandle> crls;
    if (has_crl_file && !read_pem_objects(source.crl_pem, PEM_read_bio_X509_CRL, kMaxCrls, &crls, &why)) {
      *error = fmt::format("CA {}: CRLs: {}", source.name, why);
      return nullptr;
    }
    if (has_crl_file && crls.empty()) {
      *error = fmt::format("CA {}: no PEM CRL in the CRL file", source.name);
      return nullptr;
    }

    for (X509Handle& cert : certs) {
      const std::string subject = name_text(X509_get_subject_name(cert.get()));
      // X509_check_ca 1 is basicConstraints CA:TRUE; the other non-zero
      // answers are legacy guesses (v1 roots, bare keyCertSign) that a CA
      // uploaded today has no reason to need (Cloudflare refuses them too).
      if (X509_check_ca(cert.get()) != 1) {
        *error = fmt::format("CA {}: {} is not a CA certificate (no basicConstraints CA:TRUE)",
                             source.name, subject);
        return nullptr;
      }
      const std::optional<int64_t> not_after = epoch_of(X509_get0_notAfter(cert.get()));
      if (!not_after.has_value()) {
        *error = fmt::format("CA {}: {} has an unreadable notAfter", source.name, subject);
        return nullptr;
      }
      if (*not_after < now) {
        store->warnings_.push_back(fmt::format("CA {}: {} has expired; chains through it fail as expired",
                                               source.name, subject));
      }
      auto same = std::find_if(store->cas_.begin(), store->cas_.end(),
                               [&](const Ca& ca) { return X509_cmp(ca.cert.get(), cert.get()) == 0; });
      if (same != store->cas_.end()) {
        // The same CA in two sources: revocation is checked if either asks.
        same->crl_checked = same->crl_checked || has_crl_file;
        continue;
      }
      Ca ca;
      ca.root = X509_self_signed(cert.get(), 1) == 1;
      ca.crl_checked = has_crl_file;
      ca.cert = std::move(cert);
      store->cas_.push_back(std::move(ca));
    }

    for (X509CrlHandle& crl : crls) store->crls_.push_back(std::move(crl));
    if (!has_crl_file) {
      store->warnings_.push_back(
          fmt::format("CA {}: no CRL file; its certificates are not checked for revocation", source.name));
    }
    store->any_crl_ = store->any_crl_ || has_crl_file;
  }

  if (store->cas_.empty()) {
    *error = "no CA certificate in any source";
    return nullptr;
  }

  // Every CRL must be signed by the CA whose name it carries, when that CA is
  // in the set; a CRL for a CA outside the set is kept for intermediates that
  // clients send themselves.
  for (const X509CrlHandle& crl : store->crls_) {
    const X509_NAME* issuer = X509_CRL_get_issuer(crl.get());
    bool found = false;
    bool signed_ok = false;
    for (const Ca& ca : store->cas_) {
      if (X509_NAME_cmp(X509_get_subject_name(ca.cert.get()), issuer) != 0) continue;
      found = true;
      if (X509_CRL_verify(crl.get(), X509_get0_pubkey(ca.cert.get())) == 1) signed_ok = true;
    }
    if (found && !signed_ok) {
      *error = fmt::format("the CRL of {} is not signed by that CA's key", name_text(issuer));
      return nullptr;
    }
    if (!found) {
      store->warnings_.push_back(fmt::format(
          "the CRL of {} matches no CA in the set; it serves intermediates clients send", name_text(issuer)));
    }
    const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl.get());
    const std::optional<int64_t> next_epoch = epoch_of(next);
    if (next != nullptr && next_epoch.has_value()) {
      if (store->earliest_crl_next_update_ == 0 || *next_epoch < store->earliest_crl_next_update_) {
        store->earliest_crl_next_update_ = *next_epoch;
      }
      if (*next_epoch < now) {
        store->warnings_.push_back(fmt::format(
            "the CRL of {} is past its nextUpdate; its chains fail as revocation_unknown", name_text(issuer)));
      }
    }
  }

  // A CRL file must cover every CA of its source, or every client below an
  // uncovered CA would fail as revocation_unknown: better refused now.
  for (const Ca& ca : store->cas_) {
    if (!ca.crl_checked) continue;
    const X509_NAME* subject = X509_get_subject_name(ca.cert.get());
    const bool covered = std::any_of(store->crls_.begin(), store->crls_.end(), [&](const X509CrlHandle& crl) {
      return X509_NAME_cmp(X509_CRL_get_issuer(crl.get()), subject) == 0;
    });
    if (!covered) {
      *error = fmt::format("no CRL issued by {}: a CRL file must hold one for every CA of its source",
                           name_text(subject));
      return nullptr;
    }
  }

  for (const Ca& ca : store->cas_) {
    if (ca.root) continue;
    const bool issuer_known = std::any_of(store->cas_.begin(), store->cas_.end(), [&](const Ca& other) {
      return X509_check_issued(other.cert.get(), ca.cert.get()) == X509_V_OK;
    });
    if (!issuer_known) {
      store->warnings_.push_back(fmt::format(
          "{} is an intermediate whose issuer is not in the set; chains through it end as unknown_ca",
          name_text(X509_get_subject_name(ca.cert.get()))));
    }
  }
  return store;
}

std::unique_ptr<WorkerTrust> TrustStore::instantiate(std::string* error) const {
  std::string discard;
  if (error == nullptr) error = &discard;
  OpenSslErrorScope errors;
  std::unique_ptr<WorkerTrust> trust(new WorkerTrust);
  trust->store_.reset(X509_STORE_new());
  if (trust->store_ == nullptr) {
    *error = "out of memory for an X509_STORE";
    return nullptr;
  }
  for (const Ca& ca : cas_) {
    X509Handle copy(X509_dup(ca.cert.get()));
    if (copy == nullptr || X509_STORE_add_cert(trust->store_.get(), copy.get()) != 1) {
      *error = fmt::format("cannot copy CA {}: {}", name_text(X509_get_subject_name(ca.cert.get())),
                           openssl_reason());
      return nullptr;
    }
    // The store holds its own reference; the pointer stays valid as long as
    // the store, which WorkerTrust owns.
    if (ca.root && !ca.crl_checked) trust->revocation_exempt_roots_.push_back(copy.get());
  }
  for (const X509CrlHandle& crl : crls_) {
    X509CrlHandle copy(X509_CRL_dup(crl.get()));
    if (copy == nullptr || X509_STORE_add_crl(trust->store_.get(), copy.get()) != 1) {
      *error = fmt::format("cannot copy a CRL: {}", openssl_reason());
      return nullptr;
    }
  }
  X509_VERIFY_PARAM* param = X509_STORE_get0_param(trust->store_.get());
  X509_VERIFY_PARAM_set_depth(param, options_.max_intermediates);
  // RFC 5280 4.2.1.12 extendedKeyUsage id-kp-clientAuth on the leaf (and not
  // excluded on the CAs), with OpenSSL's matching trust setting.
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
  X509_VERIFY_PARAM_set_trust(param, X509_TRUST_SSL_CLIENT);
  if (any_crl_) X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  trust->max_intermediates_ = options_.max_intermediates;
  trust->generation_ = generation_;
  trust->earliest_crl_next_update_ = earliest_crl_next_update_;
  return trust;
}

X509NameStackHandle TrustStore::make_ca_names() const {
  X509NameStackHandle names(sk_X509_NAME_new_null());
  if (names == nullptr) return nullptr;
  for (const Ca& ca : cas_) {
    X509NameHandle name(X509_NAME_dup(X509_get_subject_name(ca.cert.get())));
    if (name == nullptr || sk_X509_NAME_push(names.get(), name.get()) <= 0) return nullptr;
    name.release();
  }
  return names;
}

bool WorkerTrust::revocation_exempt(const X509* root) const noexcept {
  return std::find(revocation_exempt_roots_.begin(), revocation_exempt_roots_.end(), root) !=
         revocation_exempt_roots_.end();
}

}  // namespace mtlsgw::tls
