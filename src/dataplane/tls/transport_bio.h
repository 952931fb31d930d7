#pragma once
// The BIO between OpenSSL's record layer and a worker's TCP connection.
//
// Input: OpenSSL reads straight out of the TCP receive buffer's spans
// (TcpStack::peek) into its own record buffer, where it decrypts in place.
// What it read is "taken": OpenSSL holds those bytes now, and the caller
// consumes that many from TCP. One copy; a memory BIO would add a second
// (TCP ring -> BIO_s_mem -> record buffer) and an allocation per chunk.
//
// Output: every record OpenSSL writes goes straight to the sink
// (TcpStack::send), one copy from OpenSSL's write buffer into the TCP send
// buffer. A full sink takes part or nothing; the BIO then reports "retry" and
// OpenSSL keeps the rest of the record in its write buffer until it is asked
// again, so no byte is lost and none is held twice.

#include <cstdint>

#include <openssl/bio.h>

#include "dataplane/net/tcp_buffers.h"

namespace mtlsgw::tls {

// Where ciphertext goes: a TCP connection's send side.
struct CiphertextSink {
  // Takes up to len bytes and says how many (0 when full).
  uint32_t (*send)(void* context, const uint8_t* data, uint32_t len) noexcept = nullptr;
  // What send would take now, so that records can be cut to fit; 0 must
  // arrange a later on_sink_writable (TcpStack::send_space arms on_writable).
  // It may promise more than send then takes (TcpStack has no send buffer
  // yet while its pool is empty); that costs a retry, never bytes. Null: no
  // sizing, records of up to 16 KiB.
  uint32_t (*space)(void* context) noexcept = nullptr;
  void* context = nullptr;
};

// One connection's side of the BIO, owned by its TlsSession.
struct TransportIo {
  net::tcp::ByteSpans input{};  // ciphertext offered for this call
  uint32_t taken = 0;           // how much of it OpenSSL read
  bool input_ends = false;      // the stream ends after the input (TCP FIN)
  bool end_reached = false;     // OpenSSL read up to that end and wanted more
  CiphertextSink sink;

  void offer(const net::tcp::ByteSpans& spans, bool ends) noexcept {
    input = spans;
    taken = 0;
    input_ends = ends;
  }
  void withdraw() noexcept {
    input = {};
    taken = 0;
  }
};

// A BIO reading and writing through the TransportIo bound to it; one per SSL
// for its whole life (SslPool), rebound for each connection.
BIO* new_transport_bio() noexcept;
void bind_transport(BIO* bio, TransportIo* io) noexcept;

}  // namespace mtlsgw::tls
