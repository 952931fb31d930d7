#pragma once
// One worker's TLS server configuration, built on the control path and then
// only read by that worker: a front SSL_CTX that every connection starts on,
// and one SSL_CTX per host that the ClientHello callback switches to by SNI.
//
// Why one set per worker: OpenSSL 3.0 takes locks inside an SSL_CTX (session
// cache, refcounts, method stores) on every handshake; contexts shared by
// workers make those locks contended (research/performance-anchors.md).
// Why a front context: a connection has to exist before its ClientHello says
// which host it wants; the callback then moves it with SSL_set_SSL_CTX, which
// swaps the certificate, the client CA list, the verification store and the
// ALPN and verification callbacks. What SSL_set_SSL_CTX does not carry (the
// verify mode, depth and minimum version, copied into the SSL by SSL_new) the
// callback sets on the connection itself.
//
// Handshake cost choices, from research/openssl-3.0-levers.md (measured on
// OpenSSL 3.0 here): stateful TLS 1.3 tickets (SSL_OP_NO_TICKET with one
// ticket: -39% server CPU per full handshake, resumption without any
// certificate decode); the server chain built once without the root and
// without auto-chaining (-26% client CPU); X25519 before P-256 (+3..13% for
// P-256 first).

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/handles.h"
#include "dataplane/tls/record_keys.h"

namespace mtlsgw::tls {

enum class MtlsMode : uint8_t {
  off,       // no CertificateRequest
  optional,  // ask; a missing or failing certificate passes, marked unverified
  required,  // ask; a missing or failing certificate ends the handshake
};
const char* name_of(MtlsMode mode) noexcept;

enum class MinTlsVersion : uint8_t { tls1_2, tls1_3 };

// Replaces X509_verify_cert for a host's client certificates: the seam where
// the trust-store verifier (client_verify.h) plugs in. Contract of
// SSL_CTX_set_cert_verify_callback: return 1 to accept, 0 to refuse with the
// reason left in X509_STORE_CTX_get_error, which picks the alert (OpenSSL's
// ssl_x509err2alert: expired -> certificate_expired, revoked ->
// certificate_revoked, unknown issuer -> unknown_ca, RFC 8446 6.2). In
// optional mode a refusal is recorded and the handshake goes on.
struct ClientCertVerifier {
  int (*verify)(X509_STORE_CTX* store_ctx, void* arg) = nullptr;
  void* arg = nullptr;
};

// A host as the TLS layer needs it (the config layer fills this).
struct TlsHostSpec {
  std::string name;            // SNI name, exact ("api.example.test") or "*.example.test"
  std::string cert_chain_pem;  // PEM text: leaf first, then intermediates; a root in it is not sent
  std::string key_pem;         // PEM text of one unencrypted private key
  MtlsMode mtls = MtlsMode::off;
  // Client trust: either files (CA certificates, root and intermediates, and
  // CRLs) or a store prepared by the caller (a reference is taken; the paths
  // are then used for the CertificateRequest names only, or the store's
  // certificates when no path is given).
  std::vector<std::string> client_ca_pems;
  std::vector<std::string> client_crl_pems;
  X509_STORE* client_store = nullptr;
  int verify_depth = 4;  // intermediates allowed below the trusted CA
  ClientCertVerifier verifier;  // empty: X509_verify_cert against the host's store
  std::vector<std::string> alpn;  // server preference order, e.g. {"h2", "http/1.1"}
  MinTlsVersion min_version = MinTlsVersion::tls1_2;
  bool early_data = false;  // 0-RTT: refused at build time (see build())
  bool default_host = false;  // gets ClientHellos without SNI or with an unknown one
};

struct TlsContextOptions {
  // Sessions kept per worker for resumption (TLS 1.2 session ids and TLS 1.3
  // stateful tickets). One entry holds the client certificate: ~2-3 KiB.
  uint32_t session_cache_entries = 8192;
  // Session lifetime, also the TLS 1.3 ticket_lifetime (at most 7 days,
  // RFC 8446 4.6.1).
  uint32_t session_timeout_s = 300;
  // A resumed TLS 1.3 connection gets no new ticket by default: the
  // client's ticket stays valid (stateful, in the cache) and issuing costs a
  // cache entry (research/openssl-3.0-levers.md). Clients that use a ticket
  // only once (RFC 8446 C.4; OpenSSL's client does) then resume every other
  // connection only; true gives them a fresh ticket each time.
  bool ticket_on_resumption = false;
};

// What OpenSSL's callbacks learn about one connection during its handshake,
// for the TlsSession that owns the connection to report afterwards. Found
// from the SSL through SSL_get_app_data (TlsContexts::attach).
struct HandshakeNotes {
  static constexpr uint32_t kNoHost = UINT32_MAX;
  static constexpr int kNoAlert = -1;

  uint32_t host = kNoHost;       // index into TlsContexts::host()
  int verify_error = X509_V_OK;  // why the client certificate failed, this handshake
  int verify_error_depth = -1;   // which certificate of the chain (0: the leaf)
  bool verify_ran = false;       // a client certificate was checked this handshake
  int alert_sent = kNoAlert;     // last alert we sent other than close_notify
  int alert_received = kNoAlert;  // last alert the client sent other than close_notify
  bool alert_sent_fatal = false;
  bool alert_received_fatal = false;
  bool ticket_on_resumption = false;  // TlsContextOptions::ticket_on_resumption
  uint8_t sni_len = 0;
  char sni[255];  // lower-cased host_name (RFC 6066 3: at most 255 bytes here)
  // The protocol select_alpn chose: a view into the host's alpn_wire, which
  // outlives the connection (unlike OpenSSL's copy inside the SSL).
  const char* alpn = nullptr;
  uint8_t alpn_len = 0;
  // For a session that takes the record layer over after the handshake
  // (TlsSession with a RecordOffload): the TLS 1.3 application traffic
  // secrets, as the keylog callback sees them, and how many
  // NewSessionTicket messages the server wrote (one record each under the
  // server secret before the switch: record_protection.h).
  bool capture_secrets = false;
  uint8_t tickets_sent = 0;
  TrafficSecret client_application;  // CLIENT_TRAFFIC_SECRET_0
  TrafficSecret server_application;  // SERVER_TRAFFIC_SECRET_0

  std::string_view server_name() const noexcept { return {sni, sni_len}; }
  std::string_view alpn_selected() const noexcept { return alpn != nullptr ? std::string_view(alpn, alpn_len) : std::string_view(); }
  void clear() noexcept;
  void wipe_secrets() noexcept;
};

// Must outlive every SSL made from it (the SslPool and its sessions): the
// callbacks hold pointers to it and to its hosts.
class TlsContexts {
 public:
  static constexpr uint32_t kNoHost = HandshakeNotes::kNoHost;

  struct Host {
    std::string name;       // as configured, lower-cased
    MtlsMode mtls = MtlsMode::off;
    int verify_depth = 4;
    int min_version = TLS1_2_VERSION;
    ClientCertVerifier verifier;
    std::string alpn_wire;  // RFC 7301 3.1 ProtocolNameList body, server order
    // The host's own certificate as PROXY v2 (2.2.5) describes it: signature
    // digest ("SHA256") and key ("EC256", "RSA2048").
    std::string cert_sig_alg;
    std::string cert_key_alg;
    SslCtxHandle ctx;
  };

  // Builds the contexts. Refuses (nullptr, `error` says why): no hosts, a
  // name twice, two defaults, an unreadable or mismatched certificate or key,
  // a chain that does not verify, mtls without client CAs, an ALPN name that
  // is empty or longer than 255 bytes, and early_data (0-RTT needs the
  // session to read early data and replay protection, RFC 8446 8: not built).
  static std::unique_ptr<TlsContexts> build(const std::vector<TlsHostSpec>& hosts,
                                            const TlsContextOptions& options, std::string& error);

  TlsContexts(const TlsContexts&) = delete;
  TlsContexts& operator=(const TlsContexts&) = delete;
  ~TlsContexts();

  // Every connection's SSL is made from this one (SslPool).
  SSL_CTX* front() const noexcept { return front_.get(); }
  uint32_t host_count() const noexcept { return static_cast<uint32_t>(hosts_.size()); }
  const Host& host(uint32_t index) const noexcept { return *hosts_[index]; }
  uint32_t default_host() const noexcept { return default_host_; }

  // Host for a lower-cased SNI name: exact match, then a wildcard one label
  // deep ("*.example.test" takes "a.example.test", not "a.b.example.test" nor
  // "example.test": RFC 6125 6.4.3), then the default host; kNoHost if none.
  // An empty name (no SNI) goes to the default host.
  uint32_t find_host(std::string_view lower_name) const noexcept;

  // The notes OpenSSL's callbacks write for this connection (nullptr: none).
  static void attach(SSL* ssl, HandshakeNotes* notes) noexcept;
  static HandshakeNotes* notes_of(const SSL* ssl) noexcept;
  // Counts the NewSessionTicket messages an SSL writes into its notes
  // (SSL_set_msg_callback; its argument is unused).
  static void count_tickets(int write_p, int version, int content_type, const void* buf, size_t len, SSL* ssl,
                            void* arg);

 private:
  TlsContexts() = default;

  // Heterogeneous lookup: find by string_view without building a string.
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  using NameIndex = std::unordered_map<std::string, uint32_t, NameHash, std::equal_to<>>;

  static int on_client_hello(SSL* ssl, int* alert, void* arg) noexcept;

  SslCtxHandle front_;
  std::vector<std::unique_ptr<Host>> hosts_;  // stable addresses: callbacks keep Host*
  NameIndex exact_;
  NameIndex wildcard_;  // keyed by the part after "*."
  uint32_t default_host_ = kNoHost;
  bool ticket_on_resumption_ = false;
};

}  // namespace mtlsgw::tls
