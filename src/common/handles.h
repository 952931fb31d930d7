#pragma once
// RAII owners for the C handles the project uses, one line each, so that no
// error path leaks one.

// IPsec-MB's pre-0.53 names (SHA1, GCM, ENCRYPT...) are macros that break
// OpenSSL's headers; only the IMB_ names are used.
#ifndef NO_COMPAT_IMB_API_053
#define NO_COMPAT_IMB_API_053
#endif
#include <intel-ipsec-mb.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
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

// OpenSSL. Stacks own their elements: freeing one frees what it holds.
inline void free_x509_stack(STACK_OF(X509) * stack) noexcept { sk_X509_pop_free(stack, X509_free); }
inline void free_x509_crl_stack(STACK_OF(X509_CRL) * stack) noexcept {
  sk_X509_CRL_pop_free(stack, X509_CRL_free);
}
inline void free_x509_name_stack(STACK_OF(X509_NAME) * stack) noexcept {
  sk_X509_NAME_pop_free(stack, X509_NAME_free);
}

using SslCtxHandle = CHandle<SSL_CTX, SSL_CTX_free>;
using SslHandle = CHandle<SSL, SSL_free>;
using BioHandle = CHandle<BIO, BIO_free_all>;
using X509Handle = CHandle<X509, X509_free>;
using X509CrlHandle = CHandle<X509_CRL, X509_CRL_free>;
using X509NameHandle = CHandle<X509_NAME, X509_NAME_free>;
using X509StoreHandle = CHandle<X509_STORE, X509_STORE_free>;
using X509StoreCtxHandle = CHandle<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509StackHandle = CHandle<STACK_OF(X509), free_x509_stack>;
using X509CrlStackHandle = CHandle<STACK_OF(X509_CRL), free_x509_crl_stack>;
using X509NameStackHandle = CHandle<STACK_OF(X509_NAME), free_x509_name_stack>;
using GeneralNamesHandle = CHandle<GENERAL_NAMES, GENERAL_NAMES_free>;
using EvpPkeyHandle = CHandle<EVP_PKEY, EVP_PKEY_free>;
using EvpMdHandle = CHandle<EVP_MD, EVP_MD_free>;
using EvpMdCtxHandle = CHandle<EVP_MD_CTX, EVP_MD_CTX_free>;
using EvpPkeyCtxHandle = CHandle<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using EvpCipherHandle = CHandle<EVP_CIPHER, EVP_CIPHER_free>;
using EvpCipherCtxHandle = CHandle<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using SslSessionHandle = CHandle<SSL_SESSION, SSL_SESSION_free>;

// Intel IPsec-MB: one manager per worker thread, never shared (its job
// queue and function table are not thread-safe). make_imb_mgr picks
// the widest instruction set the CPU has (init_mb_mgr_auto); nullptr when
// allocation or initialisation fails.
using ImbMgrHandle = CHandle<IMB_MGR, free_mb_mgr>;
inline ImbMgrHandle make_imb_mgr() noexcept {
  ImbMgrHandle mgr(alloc_mb_mgr(0));
  if (!mgr) return nullptr;
  init_mb_mgr_auto(mgr.get(), nullptr);
  if (imb_get_errno(mgr.get()) != 0) return nullptr;
  return mgr;
}

// Leaves the thread's OpenSSL error queue as the scope found it: what OpenSSL
// pushes inside is dropped at the end. libssl reads that queue in
// SSL_get_error, so a stale entry would turn a later SSL_ERROR_WANT_READ into
// SSL_ERROR_SSL on an unrelated connection of the same worker.
class OpenSslErrorScope {
 public:
  OpenSslErrorScope() noexcept { ERR_set_mark(); }
  ~OpenSslErrorScope() { ERR_pop_to_mark(); }
  OpenSslErrorScope(const OpenSslErrorScope&) = delete;
  OpenSslErrorScope& operator=(const OpenSslErrorScope&) = delete;
};

}  // namespace mtlsgw
