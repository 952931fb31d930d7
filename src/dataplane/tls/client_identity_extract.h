#pragma once
// Fills a ClientIdentity from OpenSSL objects, once per handshake: the
// certificate facts from the client's leaf, the verdict, and the session
// facts from the finished SSL. Every field respects ClientIdentity's caps.

#include "common/handles.h"
#include "dataplane/tls/client_identity.h"
#include "dataplane/tls/client_verify.h"

namespace mtlsgw::tls {

// The leaf's facts; sets presented. sha256 may be a per-worker fetched
// EVP_MD (EVP_MD_fetch) so that no implicit fetch runs per handshake; null
// uses EVP_sha256(). Returns false when the leaf cannot be encoded (the
// identity then holds what could be read).
bool extract_certificate_identity(X509* leaf, ClientIdentity* identity, const EVP_MD* sha256 = nullptr);

// verified and verify_reason from a verdict.
void apply_verdict(const ClientVerdict& verdict, ClientIdentity* identity);

// TLS version, cipher, SNI, ALPN, and the signature digest and key of the
// gateway's own certificate, from a completed handshake.
void extract_session_identity(const SSL* ssl, ClientIdentity* identity);

// Everything above for a finished server handshake: clears identity, then
// fills the session facts, the peer certificate's facts if one was presented,
// and the verdict.
bool extract_client_identity(const SSL* ssl, const ClientVerdict& verdict, ClientIdentity* identity,
                             const EVP_MD* sha256 = nullptr);

}  // namespace mtlsgw::tls
