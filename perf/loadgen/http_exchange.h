#pragma once
// HTTP/1.1 over one connection, one request at a time: the request heads
// loadgen sends (prepared once per run) and the end of each response, found
// by the gateway's own response parser (Content-Length, chunked, or the
// close; RFC 9112 6.3).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dataplane/forward/http_response_parser.h"
#include "options.h"

namespace mtlsgw::loadgen {

// One request as sent: its head and how many body bytes follow it.
struct RequestSpec {
  std::string head;
  uint64_t body_bytes = 0;
};

// The requests of a run, built from the options: [keep-alive, close].
struct RequestSet {
  RequestSpec get[2];        // GET path
  RequestSpec bulk_down[2];  // GET of bulk_bytes
  RequestSpec bulk_up[2];    // POST of bulk_bytes to path
};
RequestSet build_requests(const Options& options);

class ResponseReader {
 public:
  enum class Progress : uint8_t {
    kMore,   // the response is not complete yet
    kDone,   // a final response is complete: status(), keep_alive()
    kError,  // the response is malformed: error_name()
  };

  // Before each request (a new connection starts a new parser).
  void start_connection();
  void expect_response();

  Progress feed(std::span<const uint8_t> plaintext);
  // The server ended the stream (close_notify or FIN): true when that is a
  // clean end of the response (close-delimited body), false when it was cut.
  bool at_close();

  bool started() const { return started_; }
  uint16_t status() const { return status_; }
  bool keep_alive() const { return keep_alive_; }
  uint64_t body_bytes() const { return body_bytes_; }
  const char* error_name() const;

 private:
  std::vector<char> head_buffer_ = std::vector<char>(16384);
  std::optional<forward::http::ResponseParser> parser_;
  bool started_ = false;  // a byte of the response has arrived
  bool in_body_ = false;
  uint16_t status_ = 0;
  bool keep_alive_ = true;
  uint64_t body_bytes_ = 0;
  bool trailing_bytes_ = false;
};

}  // namespace mtlsgw::loadgen
