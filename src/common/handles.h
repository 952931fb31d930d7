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

// ---- TLS engine (branch wt-tlsengine) ----------------------------------
// OpenSSL owners used by src/dataplane/tls/tls_context.* and tls_session.*.
// Kept in this block so that the OpenSSL wrappers of the trust-store branch
// can replace it when both are merged (same names, same deleters).
}  // namespace mtlsgw

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace mtlsgw {

inline void free_x509_name_stack(STACK_OF(X509_NAME) * stack) noexcept {
  sk_X509_NAME_pop_free(stack, X509_NAME_free);
}
using SslCtxHandle = CHandle<SSL_CTX, SSL_CTX_free>;
using SslHandle = CHandle<SSL, SSL_free>;
using BioHandle = CHandle<BIO, BIO_free_all>;
using X509Handle = CHandle<X509, X509_free>;
using X509CrlHandle = CHandle<X509_CRL, X509_CRL_free>;
using X509StoreHandle = CHandle<X509_STORE, X509_STORE_free>;
using X509NameStackHandle = CHandle<STACK_OF(X509_NAME), free_x509_name_stack>;
using EvpPkeyHandle = CHandle<EVP_PKEY, EVP_PKEY_free>;
// ---- end TLS engine -----------------------------------------------------

}  // namespace mtlsgw
