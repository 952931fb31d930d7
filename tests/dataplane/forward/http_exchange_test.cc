#include "dataplane/forward/http_exchange.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "http_transcript.h"

namespace mtlsgw::forward::http {
namespace {

using testing::bytes;

constexpr int64_t kNow = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT
constexpr size_t kUnlimited = std::numeric_limits<size_t>::max();

// A sink that appends to a string. room: what it takes before the test makes
// more room (space() reports it); per_write: what one write takes at most,
// so that a sink can take less than it said it would.
struct FakeSink {
  std::string data;
  size_t room = kUnlimited;
  size_t per_write = kUnlimited;
  size_t writes = 0;

  static uint32_t write_fn(void* ctx, const uint8_t* d, uint32_t len) noexcept {
    auto* self = static_cast<FakeSink*>(ctx);
    const size_t n = std::min({static_cast<size_t>(len), self->room, self->per_write});
    self->data.append(reinterpret_cast<const char*>(d), n);
    if (self->room != kUnlimited) self->room -= n;
    ++self->writes;
    return static_cast<uint32_t>(n);
  }
  static uint32_t space_fn(void* ctx) noexcept {
    const size_t room = static_cast<FakeSink*>(ctx)->room;
    return static_cast<uint32_t>(std::min<size_t>(room, UINT32_MAX));
  }
  ByteSink sink{write_fn, space_fn, this};
};

std::string canned(uint16_t status) {
  char out[kMaxCannedResponseLen];
  return {out, write_canned_response(status, kNow, out, sizeof out)};
}

tls::ClientIdentity verified_identity() {
  tls::ClientIdentity id;
  id.presented = true;
  id.verified = true;
  id.verify_reason = "ok";
  id.subject_dn = "CN=dev-1,O=Devices";
  id.issuer_dn = "CN=Devices CA,O=Example";
  id.serial_hex = "0A1B";
  id.fingerprint_sha256_hex = std::string(64, 'c');
  id.not_before_epoch = 1735689600;
  id.not_after_epoch = 1767225599;
  id.der = std::string("\x30\x03\x02\x01\x05", 5);
  return id;
}

// One client connection with its two sinks. Bytes a side offered but the
// exchange did not take wait in *_pending and are offered again first, as
// the gateway will.
struct Harness {
  std::vector<char> request_head = std::vector<char>(8192);
  std::vector<char> response_head = std::vector<char>(8192);
  std::vector<char> rewritten = std::vector<char>(32768);
  tls::ClientIdentity identity = verified_identity();
  HttpExchange ex{ExchangeBuffers{request_head, response_head, rewritten}};
  FakeSink origin;
  FakeSink client;
  std::string client_pending;
  std::string origin_pending;

  explicit Harness(std::string_view sni = "api.example.test") { ex.start(&identity, sni); }

  void client_sends(std::string_view s) {
    client_pending += s;
    pump_client();
  }
  void pump_client() {
    const size_t taken = ex.from_client(bytes(client_pending), origin.sink, client.sink, kNow);
    ASSERT_LE(taken, client_pending.size());
    client_pending.erase(0, taken);
  }
  void origin_sends(std::string_view s) {
    origin_pending += s;
    pump_origin();
  }
  void pump_origin() {
    const size_t taken = ex.from_origin(bytes(origin_pending), client.sink, kNow);
    ASSERT_LE(taken, origin_pending.size());
    origin_pending.erase(0, taken);
  }
  // Both directions until neither moves (for sinks that take little per write).
  void settle() {
    for (int i = 0; i < 100000; ++i) {
      const auto before = std::make_tuple(client_pending.size(), origin_pending.size(),
                                          origin.data.size(), client.data.size());
      if (ex.has_owed_origin_output()) ex.on_origin_writable(origin.sink, client.sink, kNow);
      if (ex.has_owed_output()) ex.on_client_writable(client.sink, kNow);
      if (!client_pending.empty()) pump_client();
      if (!origin_pending.empty()) pump_origin();
      const auto after = std::make_tuple(client_pending.size(), origin_pending.size(),
                                         origin.data.size(), client.data.size());
      if (after == before && !ex.has_owed_output() && !ex.has_owed_origin_output()) return;
    }
    ADD_FAILURE() << "exchange did not settle";
  }
};

// The head the origin must receive for a client head: the same rewriter the
// exchange uses (tested on its own in http_identity_test.cc).
std::string rewritten(std::string_view head, const tls::ClientIdentity& id) {
  std::vector<char> buffer(8192);
  RequestParser p{std::span<char>(buffer)};
  const Step s = p.feed(bytes(head));
  EXPECT_EQ(s.event, Event::kHead) << error_name(p.error());
  std::string out(32768, '\0');
  const RewriteResult r = rewrite_request_head(p.head(), id, {}, out.data(), out.size());
  EXPECT_EQ(r.error, RewriteError::kNone);
  out.resize(r.length);
  return out;
}

const std::string kGetA = "GET /a HTTP/1.1\r\nHost: api.example.test\r\n\r\n";
const std::string kGetB = "GET /b HTTP/1.1\r\nHost: api.example.test\r\n\r\n";
const std::string kGetC = "GET /c HTTP/1.1\r\nHost: API.example.test:443\r\n\r\n";
const std::string kOkA = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na";
const std::string kOkB = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nbb";
const std::string kOkC = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nccc\r\n0\r\n\r\n";

void expect_open(const HttpExchange& ex) {
  EXPECT_FALSE(ex.wants_origin_shutdown());
  EXPECT_FALSE(ex.wants_client_close());
  EXPECT_FALSE(ex.must_reset_client());
  EXPECT_FALSE(ex.must_reset_origin());
  EXPECT_FALSE(ex.client_paused());
}

TEST(HttpExchange, KeepAliveSeveralRequestsInTurn) {
  Harness h;
  const std::string requests[] = {kGetA, kGetB, kGetC};
  const std::string responses[] = {kOkA, kOkB, kOkC};
  std::string want_origin;
  std::string want_client;
  for (int i = 0; i < 3; ++i) {
    h.client_sends(requests[i]);
    want_origin += rewritten(requests[i], h.identity);
    EXPECT_EQ(h.origin.data, want_origin) << i;
    EXPECT_EQ(h.client.data, want_client) << i;
    h.origin_sends(responses[i]);
    want_client += responses[i];
    EXPECT_EQ(h.client.data, want_client) << i;
    EXPECT_TRUE(h.client_pending.empty() && h.origin_pending.empty());
    expect_open(h.ex);
  }
  EXPECT_EQ(h.ex.requests(), 3u);
  EXPECT_EQ(h.ex.responses(), 3u);
  EXPECT_EQ(h.ex.local_status(), 0);

  // The client ends between requests: the origin is half-closed, the client
  // closed once nothing is owed.
  h.ex.client_ended();
  EXPECT_TRUE(h.ex.wants_origin_shutdown());
  EXPECT_TRUE(h.ex.wants_client_close());
}

TEST(HttpExchange, PipelinedRequestsInOneCallAnsweredInOrder) {
  Harness h;
  h.client_sends(kGetA + kGetB + kGetC);
  EXPECT_TRUE(h.client_pending.empty());
  EXPECT_EQ(h.origin.data, rewritten(kGetA, h.identity) + rewritten(kGetB, h.identity) +
                               rewritten(kGetC, h.identity));
  // Responses in one piece and then split mid-head: passed in order, unchanged.
  h.origin_sends(kOkA + kOkB.substr(0, 10));
  h.origin_sends(kOkB.substr(10) + kOkC);
  EXPECT_EQ(h.client.data, kOkA + kOkB + kOkC);
  EXPECT_EQ(h.ex.requests(), 3u);
  EXPECT_EQ(h.ex.responses(), 3u);
  expect_open(h.ex);
}

TEST(HttpExchange, PipeliningLimitPausesReadingUntilAResponseCompletes) {
  Harness h;
  std::string all;
  for (unsigned i = 0; i <= ResponseParser::kMaxPending; ++i) all += kGetA;
  h.client_sends(all);
  EXPECT_EQ(h.ex.requests(), ResponseParser::kMaxPending);
  EXPECT_EQ(h.client_pending, kGetA);  // the request past the limit is not taken
  EXPECT_TRUE(h.ex.client_paused());

  h.origin_sends(kOkA);
  EXPECT_FALSE(h.ex.client_paused());
  h.pump_client();
  EXPECT_TRUE(h.client_pending.empty());
  EXPECT_EQ(h.ex.requests(), ResponseParser::kMaxPending + 1);
  std::string want;
  for (unsigned i = 0; i <= ResponseParser::kMaxPending; ++i) want += rewritten(kGetA, h.identity);
  EXPECT_EQ(h.origin.data, want);
  EXPECT_TRUE(h.ex.client_paused());  // at the limit again
}

// A whole conversation fed in pieces: what reaches each side must not depend
// on where the pieces are cut.
struct Conversation {
  const char* name;
  std::string client;  // everything the client sends
  std::string origin;  // everything the origin sends
};

const std::string kPostCl =
    "POST /up HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 11\r\n\r\nhello world";
const std::string kPostChunked =
    "POST /up HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
const std::string kHeadReq = "HEAD /h HTTP/1.1\r\nHost: api.example.test\r\n\r\n";
const std::string kRespCl = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nabcde";
const std::string kRespChunked =
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwxyz\r\n0\r\nT: 1\r\n\r\n";
const std::string kRespHead = "HTTP/1.1 200 OK\r\nContent-Length: 999\r\n\r\n";

const Conversation kConversations[] = {
    {"content_length_both_ways", kPostCl + kGetA, kRespCl + kOkA},
    {"chunked_both_ways", kPostChunked + kPostChunked, kRespChunked + kRespChunked},
    {"mixed_with_head", kPostCl + kHeadReq + kPostChunked + kGetB,
     kRespChunked + kRespHead + kRespCl + kOkB},
    {"expect_continue",
     "PUT /x HTTP/1.1\r\nHost: api.example.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
     "xyz",
     "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"},
};

struct Outcome {
  std::string origin;
  std::string client;
  uint32_t requests;
  uint32_t responses;
};

// Client bytes first (all requests pipelined), then origin bytes, each cut
// into pieces of `piece` bytes (0: whole).
Outcome run(const Conversation& c, size_t piece) {
  Harness h;
  const size_t step = piece == 0 ? c.client.size() : piece;
  for (size_t i = 0; i < c.client.size(); i += step) h.client_sends(c.client.substr(i, step));
  const size_t ostep = piece == 0 ? c.origin.size() : piece;
  for (size_t i = 0; i < c.origin.size(); i += ostep) h.origin_sends(c.origin.substr(i, ostep));
  EXPECT_TRUE(h.client_pending.empty()) << c.name;
  EXPECT_TRUE(h.origin_pending.empty()) << c.name;
  expect_open(h.ex);
  return {h.origin.data, h.client.data, h.ex.requests(), h.ex.responses()};
}

// Splits each side's bytes in two at every boundary.
Outcome run_split(const Conversation& c, size_t cut) {
  Harness h;
  h.client_sends(c.client.substr(0, std::min(cut, c.client.size())));
  h.client_sends(c.client.substr(std::min(cut, c.client.size())));
  h.origin_sends(c.origin.substr(0, std::min(cut, c.origin.size())));
  h.origin_sends(c.origin.substr(std::min(cut, c.origin.size())));
  EXPECT_TRUE(h.client_pending.empty() && h.origin_pending.empty()) << c.name << " cut " << cut;
  return {h.origin.data, h.client.data, h.ex.requests(), h.ex.responses()};
}

TEST(HttpExchange, BodiesBothWaysSameBytesWhereverCut) {
  for (const Conversation& c : kConversations) {
    const Outcome whole = run(c, 0);
    EXPECT_EQ(whole.client, c.origin) << c.name;  // responses pass unchanged
    EXPECT_GT(whole.requests, 0u);
    EXPECT_EQ(whole.requests, whole.responses) << c.name;
    // The origin gets the rewritten heads with the bodies as the client framed them.
    EXPECT_NE(whole.origin.find("X-Client-Verified: true\r\n"), std::string::npos);

    const Outcome bytewise = run(c, 1);
    EXPECT_EQ(bytewise.origin, whole.origin) << c.name;
    EXPECT_EQ(bytewise.client, whole.client) << c.name;
    EXPECT_EQ(bytewise.requests, whole.requests) << c.name;
    EXPECT_EQ(bytewise.responses, whole.responses) << c.name;

    for (size_t cut = 1; cut < std::max(c.client.size(), c.origin.size()); ++cut) {
      const Outcome split = run_split(c, cut);
      EXPECT_EQ(split.origin, whole.origin) << c.name << " cut " << cut;
      EXPECT_EQ(split.client, whole.client) << c.name << " cut " << cut;
    }
  }
}

TEST(HttpExchange, BodyBytesPassUnchangedAfterTheRewrittenHead) {
  Harness h;
  h.client_sends(kPostChunked);
  const std::string head = kPostChunked.substr(0, kPostChunked.find("\r\n\r\n") + 4);
  EXPECT_EQ(h.origin.data, rewritten(head, h.identity) + kPostChunked.substr(head.size()));
}

TEST(HttpExchange, ExpectContinueInterimPassesThenFinal) {
  Harness h;
  const std::string head =
      "POST /x HTTP/1.1\r\nHost: api.example.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n";
  h.client_sends(head);
  EXPECT_EQ(h.origin.data, rewritten(head, h.identity));
  h.origin_sends("HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(h.client.data, "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_EQ(h.ex.responses(), 0u);  // interim: the request still waits
  h.client_sends("data");
  EXPECT_EQ(h.origin.data, rewritten(head, h.identity) + "data");
  h.origin_sends(kOkA);
  EXPECT_EQ(h.client.data, "HTTP/1.1 100 Continue\r\n\r\n" + kOkA);
  EXPECT_EQ(h.ex.responses(), 1u);
  expect_open(h.ex);
}

TEST(HttpExchange, HeadResponseHasNoBodyWhateverItsLength) {
  Harness h;
  h.client_sends(kHeadReq + kGetA);
  h.origin_sends(kRespHead + kOkA);
  EXPECT_EQ(h.client.data, kRespHead + kOkA);
  EXPECT_EQ(h.ex.responses(), 2u);
  expect_open(h.ex);
}

TEST(HttpExchange, SwitchingProtocolsTunnelsBothWays) {
  Harness h;
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  // Bytes after the upgrade request are not HTTP if the origin agrees: not
  // read until its answer.
  const std::string early = "GET /not-a-request\r\n\x01\x02";
  h.client_sends(upgrade + early);
  EXPECT_EQ(h.origin.data, rewritten(upgrade, h.identity));
  EXPECT_EQ(h.client_pending, early);
  EXPECT_TRUE(h.ex.client_paused());

  const std::string switching = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  h.origin_sends(switching + "\x81\x05hello");
  EXPECT_TRUE(h.ex.tunnel());
  EXPECT_EQ(h.client.data, switching + "\x81\x05hello");
  EXPECT_FALSE(h.ex.client_paused());
  h.pump_client();
  EXPECT_EQ(h.origin.data, rewritten(upgrade, h.identity) + early);
  h.client_sends("HTTP/1.1 200 OK\r\n\r\nnot parsed");
  EXPECT_EQ(h.origin.data, rewritten(upgrade, h.identity) + early + "HTTP/1.1 200 OK\r\n\r\nnot parsed");
  h.origin_sends("garbage that is no response");
  EXPECT_EQ(h.client.data, switching + "\x81\x05hello" + "garbage that is no response");

  // Half-closes pass through: each side's end is forwarded on its own.
  EXPECT_FALSE(h.ex.wants_origin_shutdown());
  EXPECT_FALSE(h.ex.wants_client_close());
  h.ex.origin_ended(h.client.sink, kNow);
  EXPECT_TRUE(h.ex.wants_client_close());
  EXPECT_FALSE(h.ex.wants_origin_shutdown());
  h.client_sends("still going");
  EXPECT_NE(h.origin.data.find("still going"), std::string::npos);
  h.ex.client_ended();
  EXPECT_TRUE(h.ex.wants_origin_shutdown());
  EXPECT_FALSE(h.ex.must_reset_client());
}

TEST(HttpExchange, UpgradeRefusedStaysHttp) {
  Harness h;
  const std::string upgrade =
      "GET /ws HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  h.client_sends(upgrade + kGetB);
  EXPECT_EQ(h.client_pending, kGetB);
  h.origin_sends(kOkA);
  EXPECT_FALSE(h.ex.tunnel());
  h.pump_client();
  EXPECT_EQ(h.origin.data, rewritten(upgrade, h.identity) + rewritten(kGetB, h.identity));
}

TEST(HttpExchange, ClientConnectionCloseHalfClosesOriginThenClosesClient) {
  Harness h;
  const std::string last = "GET /bye HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n";
  h.client_sends(kGetA + last + kGetB);  // nothing after a "close" request is read
  EXPECT_TRUE(h.client_pending.empty());
  EXPECT_EQ(h.origin.data, rewritten(kGetA, h.identity) + rewritten(last, h.identity));
  EXPECT_TRUE(h.ex.wants_origin_shutdown());
  EXPECT_FALSE(h.ex.wants_client_close());
  h.origin_sends(kOkA);
  EXPECT_FALSE(h.ex.wants_client_close());
  h.origin_sends(kOkB);
  EXPECT_TRUE(h.ex.wants_client_close());
  EXPECT_EQ(h.client.data, kOkA + kOkB);
  EXPECT_EQ(h.ex.requests(), 2u);
}

TEST(HttpExchange, OriginClosingResponseClosesClientAfterIt) {
  struct Case {
    const char* name;
    std::string response;
    bool needs_fin;  // the body runs until the origin closes
  };
  const Case cases[] = {
      {"connection_close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", false},
      {"http10", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", false},
      {"close_delimited", "HTTP/1.1 200 OK\r\n\r\nbody until the end", true},
  };
  for (const Case& c : cases) {
    Harness h;
    h.client_sends(kGetA + kGetB);
    h.origin_sends(c.response);
    EXPECT_EQ(h.client.data, c.response) << c.name;
    EXPECT_EQ(h.ex.wants_client_close(), !c.needs_fin) << c.name;
    if (c.needs_fin) {
      h.ex.origin_ended(h.client.sink, kNow);
      EXPECT_TRUE(h.ex.wants_client_close()) << c.name;
    }
    EXPECT_TRUE(h.ex.wants_origin_shutdown()) << c.name;
    EXPECT_FALSE(h.ex.must_reset_client()) << c.name;
    EXPECT_EQ(h.ex.local_status(), 0) << c.name;  // the unanswered /b is retried by the client
    EXPECT_EQ(h.ex.responses(), 1u) << c.name;
    h.client_sends(kGetC);
    EXPECT_EQ(h.origin.data, rewritten(kGetA, h.identity) + rewritten(kGetB, h.identity)) << c.name;
  }
}

TEST(HttpExchange, OriginEndMidResponseResetsClient) {
  for (const bool fin : {true, false}) {
    Harness h;
    h.client_sends(kGetA);
    h.origin_sends("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    if (fin) {
      h.ex.origin_ended(h.client.sink, kNow);
    } else {
      h.ex.origin_failed(OriginFailure::reset, h.client.sink, kNow);
    }
    EXPECT_TRUE(h.ex.must_reset_client()) << fin;
    EXPECT_FALSE(h.ex.wants_client_close()) << fin;
    EXPECT_EQ(h.ex.local_status(), 0) << fin;
  }
}

TEST(HttpExchange, OriginEndBeforeResponseAnswers502) {
  Harness h;
  h.client_sends(kGetA + kGetB);
  h.origin_sends(kOkA + "HTTP/1.1 200 OK\r\nContent-");  // part of a head never reaches the client
  EXPECT_EQ(h.client.data, kOkA);
  h.ex.origin_ended(h.client.sink, kNow);
  EXPECT_FALSE(h.ex.must_reset_client());
  EXPECT_EQ(h.client.data, kOkA + canned(502));
  EXPECT_EQ(h.ex.local_status(), 502);
  EXPECT_TRUE(h.ex.wants_client_close());
}

TEST(HttpExchange, OriginFailureWithRequestOutstandingAnswersAtOnce) {
  const std::pair<OriginFailure, uint16_t> cases[] = {
      {OriginFailure::refused, 502},
      {OriginFailure::unreachable, 502},
      {OriginFailure::reset, 502},
      {OriginFailure::timed_out, 504},
  };
  for (const auto& [why, status] : cases) {
    Harness h;
    h.client_sends(kGetA);
    // An interim response is a whole message: a final one may still follow.
    h.origin_sends("HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n");
    h.ex.origin_failed(why, h.client.sink, kNow);
    EXPECT_EQ(h.client.data, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n" + canned(status));
    EXPECT_EQ(h.ex.local_status(), status);
    EXPECT_TRUE(h.ex.wants_client_close());
    EXPECT_FALSE(h.ex.must_reset_client());
    EXPECT_FALSE(h.ex.wants_origin_shutdown());  // nothing left to half-close
  }
}

TEST(HttpExchange, OriginFailureBeforeFirstRequestAnswersThatRequest) {
  const std::pair<OriginFailure, uint16_t> cases[] = {
      {OriginFailure::refused, 502},
      {OriginFailure::timed_out, 504},
  };
  for (const auto& [why, status] : cases) {
    Harness h;
    h.ex.origin_failed(why, h.client.sink, kNow);
    // Nothing unsolicited: the client has not asked yet.
    EXPECT_EQ(h.client.data, "");
    EXPECT_FALSE(h.ex.wants_client_close());
    EXPECT_FALSE(h.ex.client_paused());
    h.client_sends(kGetA.substr(0, 10));
    EXPECT_EQ(h.client.data, "");
    h.client_sends(kGetA.substr(10) + kGetB);
    EXPECT_EQ(h.client.data, canned(status));
    EXPECT_EQ(h.origin.data, "");
    EXPECT_TRUE(h.ex.wants_client_close());
    EXPECT_EQ(h.ex.requests(), 1u);
    EXPECT_EQ(h.ex.responses(), 1u);
  }
  // The origin's FIN before any request is the same: 502 for the request.
  Harness h;
  h.ex.origin_ended(h.client.sink, kNow);
  EXPECT_FALSE(h.ex.wants_client_close());
  h.client_sends(kGetA);
  EXPECT_EQ(h.client.data, canned(502));
  // A client that ends without asking is closed without an answer.
  Harness quiet;
  quiet.ex.origin_failed(OriginFailure::refused, quiet.client.sink, kNow);
  quiet.ex.client_ended();
  EXPECT_TRUE(quiet.ex.wants_client_close());
  EXPECT_EQ(quiet.client.data, "");
}

TEST(HttpExchange, OriginClosingIdleKeptAliveConnectionClosesClient) {
  Harness h;
  h.client_sends(kGetA);
  h.origin_sends(kOkA);
  h.ex.origin_ended(h.client.sink, kNow);
  EXPECT_TRUE(h.ex.wants_client_close());
  EXPECT_TRUE(h.ex.wants_origin_shutdown());
  EXPECT_EQ(h.client.data, kOkA);
}

TEST(HttpExchange, MalformedOriginResponseAnswers502) {
  Harness h;
  h.client_sends(kGetA);
  h.origin_sends("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
  EXPECT_EQ(h.client.data, canned(502));
  EXPECT_TRUE(h.ex.must_reset_origin());
  EXPECT_TRUE(h.ex.wants_client_close());
}

TEST(HttpExchange, SpoofedIdentityFieldsStrippedAndRealOneAdded) {
  const std::string spoofed =
      "GET /x HTTP/1.1\r\nHost: api.example.test\r\nX-Client-Verified: true\r\n"
      "x-client-subject: CN=admin\r\nClient-Cert: :AAAA:\r\nClient-Cert-Chain: :BBBB:\r\n"
      "X-Client-Fingerprint: 00\r\nAccept: */*\r\n\r\n";
  struct Case {
    const char* name;
    bool presented;
    bool verified;
    const char* verified_line;
    bool client_cert;
  };
  const Case cases[] = {
      {"verified", true, true, "X-Client-Verified: true\r\n", true},
      {"presented_unverified", true, false, "X-Client-Verified: false\r\n", false},
      {"no_certificate", false, false, "X-Client-Verified: false\r\n", false},
  };
  for (const Case& c : cases) {
    Harness h;
    h.identity.presented = c.presented;
    h.identity.verified = c.verified;
    h.identity.verify_reason = c.verified ? "ok" : c.presented ? "unknown_ca" : "no_certificate";
    if (!c.presented) h.identity = tls::ClientIdentity{};
    if (!c.presented) h.identity.verify_reason = "no_certificate";
    h.client_sends(spoofed);
    const std::string& out = h.origin.data;
    EXPECT_EQ(out, rewritten(spoofed, h.identity)) << c.name;
    EXPECT_EQ(out.find("CN=admin"), std::string::npos) << c.name;
    EXPECT_EQ(out.find(":AAAA:"), std::string::npos) << c.name;
    EXPECT_EQ(out.find("Client-Cert-Chain"), std::string::npos) << c.name;
    EXPECT_EQ(out.find("X-Client-Fingerprint: 00\r\n"), std::string::npos) << c.name;
    EXPECT_NE(out.find(c.verified_line), std::string::npos) << c.name;
    EXPECT_EQ(out.find("\r\nX-Client-Verified: true\r\n") != std::string::npos, c.verified) << c.name;
    EXPECT_EQ(out.find("\r\nClient-Cert: :") != std::string::npos, c.client_cert) << c.name;
    EXPECT_EQ(out.find("X-Client-Subject: CN=dev-1,O=Devices\r\n") != std::string::npos, c.presented)
        << c.name;
    EXPECT_NE(out.find("Accept: */*\r\n"), std::string::npos) << c.name;
  }
}

TEST(HttpExchange, NoIdentityGivenCountsAsNoCertificate) {
  Harness h;
  h.ex.start(nullptr, "api.example.test");
  h.client_sends("GET / HTTP/1.1\r\nHost: api.example.test\r\nX-Client-Verified: true\r\n\r\n");
  EXPECT_NE(h.origin.data.find("X-Client-Verified: false\r\n"), std::string::npos);
  EXPECT_EQ(h.origin.data.find("X-Client-Verified: true"), std::string::npos);
}

TEST(HttpExchange, ChunkedTrailerCannotSmuggleIdentity) {
  Harness h;
  h.client_sends(kGetA);
  h.client_sends(
      "POST /x HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
      "0\r\nX-Client-Verified: true\r\n\r\n");
  // The head went up before the trailer: the origin is reset and the client,
  // with /a's response still to come, cannot be answered in order.
  EXPECT_TRUE(h.ex.must_reset_origin());
  EXPECT_TRUE(h.ex.must_reset_client());
}

TEST(HttpExchange, BodyErrorAfterHeadWentUpAnswers400WhenNothingElseOwed) {
  Harness h;
  h.client_sends("POST /x HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhelloXX0\r\n\r\n");
  EXPECT_TRUE(h.ex.must_reset_origin());
  EXPECT_FALSE(h.ex.wants_origin_shutdown());
  EXPECT_FALSE(h.ex.must_reset_client());
  EXPECT_EQ(h.client.data, canned(400));
  EXPECT_TRUE(h.ex.wants_client_close());
  // The origin's bytes, if any still arrive, are not the client's.
  h.origin_sends(kOkA);
  EXPECT_EQ(h.client.data, canned(400));
}

// A request answered by the gateway waits for every earlier response, then
// closes; nothing after it reaches the origin.
TEST(HttpExchange, LocalAnswersComeAfterEarlierResponses) {
  struct Case {
    const char* name;
    std::string request;
    uint16_t status;
  };
  const Case cases[] = {
      {"host_mismatch", "GET /x HTTP/1.1\r\nHost: other.example.test\r\n\r\n", 421},
      {"absolute_form_mismatch", "GET http://other.example.test/x HTTP/1.1\r\nHost: api.example.test\r\n\r\n",
       421},
      {"whitespace_before_colon", "POST /x HTTP/1.1\r\nHost: api.example.test\r\nContent-Length : 5\r\n\r\nhello",
       400},
      {"bare_lf", "GET /x HTTP/1.1\nHost: api.example.test\r\n\r\n", 400},
      {"connection_names_identity",
       "GET /x HTTP/1.1\r\nHost: api.example.test\r\nConnection: X-Client-Verified\r\n\r\n", 400},
      {"http2_version", "GET /x HTTP/2.0\r\nHost: api.example.test\r\n\r\n", 505},
      {"connect", "CONNECT api.example.test:443 HTTP/1.1\r\nHost: api.example.test:443\r\n\r\n", 501},
  };
  for (const Case& c : cases) {
    Harness h;
    h.client_sends(kGetA + kGetB + c.request + kGetC);
    EXPECT_TRUE(h.client_pending.empty()) << c.name;
    EXPECT_EQ(h.origin.data, rewritten(kGetA, h.identity) + rewritten(kGetB, h.identity)) << c.name;
    EXPECT_TRUE(h.ex.wants_origin_shutdown()) << c.name;
    EXPECT_TRUE(h.ex.client_paused()) << c.name;
    EXPECT_EQ(h.client.data, "") << c.name;
    h.origin_sends(kOkA);
    EXPECT_EQ(h.client.data, kOkA) << c.name;
    EXPECT_FALSE(h.ex.wants_client_close()) << c.name;
    h.origin_sends(kOkB);
    EXPECT_EQ(h.client.data, kOkA + kOkB + canned(c.status)) << c.name;
    EXPECT_EQ(h.ex.local_status(), c.status) << c.name;
    EXPECT_TRUE(h.ex.wants_client_close()) << c.name;
    EXPECT_EQ(h.ex.requests(), 3u) << c.name;
    EXPECT_EQ(h.ex.responses(), 3u) << c.name;
  }
}

TEST(HttpExchange, LocalAnswerAtOnceWhenNothingIsOutstanding) {
  Harness h;
  h.client_sends("GET /x HTTP/1.1\r\nHost: other.example.test\r\n\r\n");
  EXPECT_EQ(h.client.data, canned(421));
  EXPECT_EQ(h.origin.data, "");
  EXPECT_TRUE(h.ex.wants_client_close());
  EXPECT_TRUE(h.ex.wants_origin_shutdown());
}

TEST(HttpExchange, RewrittenHeadTooLargeAnswers431) {
  Harness h;
  h.rewritten.resize(64);
  h.ex = HttpExchange{ExchangeBuffers{h.request_head, h.response_head, h.rewritten}};
  h.ex.start(&h.identity, "api.example.test");
  h.client_sends(kGetA);
  EXPECT_EQ(h.client.data, canned(431));
  EXPECT_EQ(h.origin.data, "");
}

TEST(HttpExchange, OriginSinkTakingOneByteAtATime) {
  for (const Conversation& c : kConversations) {
    const Outcome whole = run(c, 0);
    Harness h;
    h.origin.per_write = 1;
    h.client.per_write = 1;
    h.client_pending = c.client;
    h.settle();
    h.origin_pending = c.origin;
    h.settle();
    EXPECT_EQ(h.origin.data, whole.origin) << c.name;
    EXPECT_EQ(h.client.data, whole.client) << c.name;
    EXPECT_GT(h.origin.writes, whole.origin.size() / 2) << c.name;  // it really took little at a time
    expect_open(h.ex);
  }
}

TEST(HttpExchange, HeadWaitsForOriginRoomForAllOfIt) {
  Harness h;
  const std::string head = rewritten(kGetA, h.identity);
  h.origin.room = head.size() - 1;
  h.client_sends(kGetA + kGetB);
  EXPECT_EQ(h.origin.data, "");  // never half a head
  EXPECT_TRUE(h.ex.has_owed_origin_output());
  EXPECT_TRUE(h.ex.client_paused());
  h.origin.room = kUnlimited;
  h.ex.on_origin_writable(h.origin.sink, h.client.sink, kNow);
  EXPECT_EQ(h.origin.data, head);
  h.pump_client();
  EXPECT_EQ(h.origin.data, head + rewritten(kGetB, h.identity));
  EXPECT_FALSE(h.ex.has_owed_origin_output());
}

TEST(HttpExchange, OwedCannedResponseFinishedWhenClientHasRoom) {
  Harness h;
  h.client.room = 0;
  h.client_sends("GET /x HTTP/1.1\r\nHost: other.example.test\r\n\r\n");
  EXPECT_EQ(h.client.data, "");
  EXPECT_TRUE(h.ex.has_owed_output());
  EXPECT_FALSE(h.ex.wants_client_close());
  EXPECT_TRUE(h.ex.client_paused());
  h.client.room = 10;
  h.ex.on_client_writable(h.client.sink, kNow);
  EXPECT_EQ(h.client.data, canned(421).substr(0, 10));
  EXPECT_FALSE(h.ex.wants_client_close());
  h.client.room = kUnlimited;
  h.ex.on_client_writable(h.client.sink, kNow);
  EXPECT_EQ(h.client.data, canned(421));
  EXPECT_FALSE(h.ex.has_owed_output());
  EXPECT_TRUE(h.ex.wants_client_close());
}

TEST(HttpExchange, ResponseHeadOwedUntilClientHasRoom) {
  Harness h;
  h.client_sends(kHeadReq);
  h.client.room = 0;
  h.origin_sends(kRespHead);
  EXPECT_TRUE(h.origin_pending.empty());  // the head is held by the exchange
  EXPECT_TRUE(h.ex.has_owed_output());
  EXPECT_EQ(h.ex.responses(), 0u);
  h.client.room = kUnlimited;
  h.ex.on_client_writable(h.client.sink, kNow);
  EXPECT_EQ(h.client.data, kRespHead);
  EXPECT_EQ(h.ex.responses(), 1u);  // a bodiless response ends with its head
  EXPECT_FALSE(h.ex.has_owed_output());
}

TEST(HttpExchange, StartResetsForTheNextConnection) {
  Harness h;
  h.client_sends("GET /x HTTP/1.1\r\nHost: other.example.test\r\n\r\n");
  ASSERT_TRUE(h.ex.wants_client_close());
  h.ex.start(&h.identity, "other.example.test");
  h.client.data.clear();
  expect_open(h.ex);
  EXPECT_EQ(h.ex.requests(), 0u);
  EXPECT_EQ(h.ex.local_status(), 0);
  h.client_sends("GET /x HTTP/1.1\r\nHost: other.example.test\r\n\r\n");
  EXPECT_EQ(h.client.data, "");
  EXPECT_EQ(h.ex.requests(), 1u);
  EXPECT_NE(h.origin.data.find("Host: other.example.test"), std::string::npos);
}

// at_rest() lets the gateway lend an idle connection's exchange to another
// one: it must be false whenever start() + resume() would lose something.
TEST(HttpExchange, AtRestOnlyBetweenMessagesWithNothingOwedOrAwaited) {
  Harness h;
  EXPECT_TRUE(h.ex.at_rest());
  h.client_sends(kGetA.substr(0, 12));
  EXPECT_FALSE(h.ex.at_rest()) << "half a request head";
  h.client_sends(kGetA.substr(12));
  EXPECT_FALSE(h.ex.at_rest()) << "a response awaited";
  h.origin_sends(kOkA.substr(0, kOkA.size() - 1));
  EXPECT_FALSE(h.ex.at_rest()) << "mid-response";
  h.origin_sends(kOkA.substr(kOkA.size() - 1));
  EXPECT_TRUE(h.ex.at_rest());

  h.client_sends(kGetB + kGetC);
  h.origin_sends(kOkB);
  EXPECT_FALSE(h.ex.at_rest()) << "a pipelined request still unanswered";
  h.origin_sends(kOkC);
  EXPECT_TRUE(h.ex.at_rest());

  Harness closing;
  closing.client_sends("GET /bye HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n");
  closing.origin_sends(kOkA);
  EXPECT_FALSE(closing.ex.at_rest()) << "the connection is ending";

  Harness deferred;
  deferred.ex.origin_failed(OriginFailure::refused, deferred.client.sink, kNow);
  EXPECT_FALSE(deferred.ex.at_rest()) << "a 502 is owed to the next request";

  Harness tunnel;
  tunnel.client_sends("GET /ws HTTP/1.1\r\nHost: api.example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  tunnel.origin_sends("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  ASSERT_TRUE(tunnel.ex.tunnel());
  EXPECT_FALSE(tunnel.ex.at_rest()) << "a tunnel is no longer HTTP";
}

TEST(HttpExchange, ResumedFromTallyCarriesOnAsTheOriginal) {
  Harness original;
  original.client_sends(kGetA);
  original.origin_sends(kOkA);
  ASSERT_TRUE(original.ex.at_rest());
  // Other buffers, as a slot taken from the gateway's pool would be.
  Harness resumed;
  resumed.ex.resume(original.ex.tally());
  EXPECT_EQ(resumed.ex.requests(), 1u);
  EXPECT_EQ(resumed.ex.responses(), 1u);
  for (Harness* h : {&original, &resumed}) {
    h->origin.data.clear();
    h->client.data.clear();
    h->client_sends(kGetB);
    EXPECT_EQ(h->origin.data, rewritten(kGetB, h->identity));
    h->origin_sends(kOkB);
    EXPECT_EQ(h->client.data, kOkB);
    EXPECT_EQ(h->ex.requests(), 2u);
    EXPECT_EQ(h->ex.responses(), 2u);
    EXPECT_TRUE(h->ex.at_rest());
    // The origin failing between responses after a request was forwarded is
    // a clean close (a fresh exchange would wait to answer 502 instead).
    h->ex.origin_failed(OriginFailure::refused, h->client.sink, kNow);
    EXPECT_TRUE(h->ex.wants_client_close());
    EXPECT_EQ(h->client.data, kOkB);
  }
}

}  // namespace
}  // namespace mtlsgw::forward::http
