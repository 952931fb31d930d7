#include "dataplane/forward/http_request_parser.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "http_transcript.h"

namespace mtlsgw::forward::http {
namespace {

using testing::bytes;
using testing::Transcript;

std::string describe(const RequestParser& p) {
  const RequestHead& h = p.head();
  std::string s = std::string(h.method) + " " + std::string(h.target);
  switch (h.framing) {
    case Framing::kNone: s += " none"; break;
    case Framing::kContentLength: s += " cl=" + std::to_string(h.content_length); break;
    case Framing::kChunked: s += " chunked"; break;
    case Framing::kUntilClose: s += " close-delimited"; break;
  }
  if (!h.keep_alive) s += " close";
  if (h.expect_continue) s += " expect-100";
  if (h.upgrade) s += " upgrade";
  return s;
}

struct Harness {
  std::vector<char> buffer;
  RequestParser parser;
  Transcript t;
  explicit Harness(size_t head_bytes = 16384, RequestLimits limits = {})
      : buffer(head_bytes), parser(std::span<char>(buffer), limits) {}
  void feed(std::string_view chunk) { testing::feed_chunk(parser, chunk, t, describe); }
};

Transcript whole(std::string_view input, RequestLimits limits = {}) {
  Harness h(16384, limits);
  h.feed(input);
  return h.t;
}

// Every way of cutting input in two, and one byte at a time, gives the same
// transcript as the input in one piece.
void expect_split_invariant(std::string_view input, RequestLimits limits = {}) {
  const Transcript expected = whole(input, limits);
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Harness h(16384, limits);
    h.feed(input.substr(0, cut));
    h.feed(input.substr(cut));
    ASSERT_EQ(h.t, expected) << "cut at " << cut;
  }
  Harness h(16384, limits);
  for (size_t i = 0; i < input.size(); ++i) h.feed(input.substr(i, 1));
  ASSERT_EQ(h.t, expected) << "byte by byte";
}

const std::string kPipeline =
    "GET /a HTTP/1.1\r\nHost: api.example.test\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: api.example.test\r\nContent-Length: 5\r\n\r\nhello"
    "PUT /c HTTP/1.1\r\nHost: api.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5;name=value;quoted=\"a \\\"b\\\" c\" ; flag\r\nhello\r\n"
    "A\r\n0123456789\r\n"
    "0;last\r\nChecksum: abc\r\nX-Trailer: 1\r\n\r\n"
    "HEAD /d HTTP/1.1\r\nHost: api.example.test\r\nConnection: close\r\n\r\n";

TEST(HttpRequestParser, PipelinedRequestsSplitAtEveryByte) {
  const Transcript t = whole(kPipeline);
  EXPECT_EQ(t.error, Error::kNone) << error_name(t.error);
  EXPECT_EQ(t.messages, 4);
  EXPECT_EQ(t.forwarded, kPipeline);  // nothing added, nothing lost
  const std::vector<std::string> heads = {"GET /a none", "POST /b cl=5", "PUT /c chunked",
                                          "HEAD /d none close"};
  EXPECT_EQ(t.heads, heads);
  ASSERT_EQ(t.bodies.size(), 4u);
  EXPECT_EQ(t.bodies[1], "hello");
  EXPECT_EQ(t.bodies[2],
            "5;name=value;quoted=\"a \\\"b\\\" c\" ; flag\r\nhello\r\nA\r\n0123456789\r\n"
            "0;last\r\nChecksum: abc\r\nX-Trailer: 1\r\n\r\n");
  EXPECT_TRUE(t.closed);  // HEAD /d said close
  expect_split_invariant(kPipeline);
}

TEST(HttpRequestParser, ConnectionCloseStopsReadingRequests) {
  Harness h;
  h.feed(kPipeline + "GET /after-close HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(h.t.messages, 4);
  EXPECT_TRUE(h.t.closed);
  EXPECT_EQ(h.t.heads.size(), 4u);
}

TEST(HttpRequestParser, HeadExposesFieldsTrimmedAndInOrder) {
  Harness h;
  h.feed("GET /x?q=1 HTTP/1.1\r\nHost:  api.example.test \r\nAccept:\t*/*\r\nX-Empty:\r\n\r\n");
  const RequestHead& head = h.parser.head();
  ASSERT_EQ(head.fields.size(), 3u);
  EXPECT_EQ(head.field_name(0), "Host");
  EXPECT_EQ(head.field_value(0), "api.example.test");
  EXPECT_EQ(head.field_line(0), "Host:  api.example.test \r\n");
  EXPECT_EQ(head.field_value(1), "*/*");
  EXPECT_EQ(head.field_value(2), "");
  EXPECT_EQ(head.request_line, "GET /x?q=1 HTTP/1.1");
  EXPECT_EQ(head.summary.host, "api.example.test");
  EXPECT_EQ(head.form, TargetForm::kOrigin);
  EXPECT_FALSE(head.is_head);
}

TEST(HttpRequestParser, ExpectContinueAndUpgrade) {
  const Transcript t = whole(
      "POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\nabc"
      "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(t.error, Error::kNone);
  const std::vector<std::string> heads = {"POST /up cl=3 expect-100", "GET /ws none upgrade"};
  EXPECT_EQ(t.heads, heads);
  // HTTP/1.0 ignores 100-continue (RFC 9110 10.1.1).
  const Transcript old = whole("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(old.heads.size(), 1u);
  EXPECT_EQ(old.heads[0], "POST / cl=0 close");
}

TEST(HttpRequestParser, TunnelAfterSwitchingProtocols) {
  Harness h;
  h.feed("GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
  EXPECT_EQ(h.t.messages, 1);
  h.parser.enter_tunnel();
  const std::string frames = std::string("\x81\x05") + "hello\r\n\r\nGET / HTTP/1.1\r\n";
  h.feed(frames);
  EXPECT_EQ(h.t.error, Error::kNone);
  EXPECT_EQ(h.t.bodies.back(), frames);
}

TEST(HttpRequestParser, Http10DefaultsAndKeepAlive) {
  EXPECT_EQ(whole("GET / HTTP/1.0\r\n\r\n").heads, std::vector<std::string>{"GET / none close"});
  const Transcript t = whole(
      "GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /3 HTTP/1.0\r\n\r\n");
  const std::vector<std::string> heads = {"GET /1 none", "GET /2 none close"};
  EXPECT_EQ(t.heads, heads);
  EXPECT_TRUE(t.closed);
  // A higher minor version is served as 1.1 (RFC 9110 2.5).
  EXPECT_EQ(whole("GET / HTTP/1.7\r\nHost: h\r\n\r\n").heads, std::vector<std::string>{"GET / none"});
}

TEST(HttpRequestParser, LeadingEmptyLinesAreSkippedNotForwarded) {
  const Transcript t = whole("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(t.error, Error::kNone);
  EXPECT_EQ(t.forwarded, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(whole("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").error,
            Error::kBadStartLine);
  expect_split_invariant("\r\nPOST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok\r\n"
                         "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
}

TEST(HttpRequestParser, IdenticalContentLengthsAreOneValue) {
  for (const char* fields : {"Content-Length: 5\r\nContent-Length: 5\r\n", "Content-Length: 5, 5\r\n"}) {
    const Transcript t = whole(std::string("POST / HTTP/1.1\r\nHost: h\r\n") + fields + "\r\nhello");
    EXPECT_EQ(t.error, Error::kNone) << fields;
    EXPECT_EQ(t.heads, std::vector<std::string>{"POST / cl=5"});
    EXPECT_EQ(t.messages, 1);
  }
}

TEST(HttpRequestParser, TargetForms) {
  Harness h;
  h.feed("GET http://API.example.test:8443/p?q HTTP/1.1\r\nHost: api.example.test\r\n\r\n");
  ASSERT_EQ(h.t.error, Error::kNone);
  EXPECT_EQ(h.parser.head().form, TargetForm::kAbsolute);
  EXPECT_EQ(h.parser.head().target_authority, "API.example.test:8443");
  Harness star;
  star.feed("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
  ASSERT_EQ(star.t.error, Error::kNone);
  EXPECT_EQ(star.parser.head().form, TargetForm::kAsterisk);
}

struct Refusal {
  const char* name;
  std::string input;
  Error error;
  uint16_t status;
};

// RFC 9112 11.2 request smuggling and the other framing errors: each is
// refused before any byte of the request would reach the origin.
TEST(HttpRequestParser, RefusesAmbiguousFramingAndBadSyntax) {
  const std::string h = "POST / HTTP/1.1\r\nHost: h\r\n";
  const std::vector<Refusal> cases = {
      {"CL and TE", h + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       Error::kContentLengthWithTransferEncoding, 400},
      {"TE and CL", h + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
       Error::kContentLengthWithTransferEncoding, 400},
      {"differing CL", h + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
       Error::kConflictingContentLength, 400},
      {"differing CL list", h + "Content-Length: 5, 6\r\n\r\n", Error::kConflictingContentLength, 400},
      {"CL not digits", h + "Content-Length: +5\r\n\r\n", Error::kBadContentLength, 400},
      {"CL hex", h + "Content-Length: 0x5\r\n\r\n", Error::kBadContentLength, 400},
      {"CL empty", h + "Content-Length:\r\n\r\n", Error::kBadContentLength, 400},
      {"CL overflow", h + "Content-Length: 18446744073709551616\r\n\r\n", Error::kBadContentLength, 400},
      {"space before colon", h + "Content-Length : 5\r\n\r\nhello", Error::kWhitespaceBeforeColon, 400},
      {"tab before colon", h + "Transfer-Encoding\t: chunked\r\n\r\n", Error::kWhitespaceBeforeColon, 400},
      {"obs-fold", h + "X-A: 1\r\n  folded\r\n\r\n", Error::kObsFold, 400},
      {"bare LF in head", "GET / HTTP/1.1\nHost: h\n\n", Error::kBareLf, 400},
      {"bare LF ending head", "GET / HTTP/1.1\r\nHost: h\r\n\n", Error::kBareLf, 400},
      {"bare CR", "GET / HTTP/1.1\r\nHost: h\rX: 1\r\n\r\n", Error::kBareCr, 400},
      {"NUL in value", h + std::string("X: a\0b\r\n\r\n", 10), Error::kBadFieldValue, 400},
      {"DEL in value", h + "X: a\x7f\r\n\r\n", Error::kBadFieldValue, 400},
      {"bad field name", h + "X(1): a\r\n\r\n", Error::kBadFieldName, 400},
      {"no colon", h + "Just-a-name\r\n\r\n", Error::kBadFieldName, 400},
      {"chunked not final", h + "Transfer-Encoding: chunked, gzip\r\n\r\n", Error::kChunkedNotFinal, 400},
      {"gzip alone", h + "Transfer-Encoding: gzip\r\n\r\n", Error::kChunkedNotFinal, 400},
      {"chunked twice", h + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       Error::kChunkedTwice, 400},
      {"unknown coding", h + "Transfer-Encoding: zstd-x, chunked\r\n\r\n0\r\n\r\n",
       Error::kUnknownTransferCoding, 501},
      {"coding with parameter", h + "Transfer-Encoding: gzip;q=1, chunked\r\n\r\n",
       Error::kUnknownTransferCoding, 501},
      {"xchunked", h + "Transfer-Encoding: xchunked\r\n\r\n", Error::kChunkedNotFinal, 400},
      {"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
       Error::kTransferEncodingInHttp10, 400},
      {"chunk data without CRLF", h + "Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n",
       Error::kMissingChunkCrlf, 400},
      {"chunk size LF only", h + "Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
       Error::kBadChunkSize, 400},
      {"chunk size overflow", h + "Transfer-Encoding: chunked\r\n\r\n10000000000000005\r\nhello\r\n",
       Error::kBadChunkSize, 400},
      {"chunk size with trailing space", h + "Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n",
       Error::kBadChunkSize, 400},
      {"chunk size not hex", h + "Transfer-Encoding: chunked\r\n\r\n-5\r\n", Error::kBadChunkSize, 400},
      {"bad chunk extension", h + "Transfer-Encoding: chunked\r\n\r\n5;=x\r\nhello\r\n",
       Error::kBadChunkExtension, 400},
      {"obs-fold in trailer", h + "Transfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\n b\r\n\r\n",
       Error::kBadTrailer, 400},
      {"missing Host", "GET / HTTP/1.1\r\n\r\n", Error::kMissingHost, 400},
      {"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", Error::kDuplicateHost, 400},
      {"bad Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", Error::kBadHost, 400},
      {"Host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", Error::kBadHost, 400},
      {"double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadStartLine, 400},
      {"no version", "GET /\r\nHost: h\r\n\r\n", Error::kBadStartLine, 400},
      {"lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n", Error::kBadStartLine, 400},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", Error::kUnsupportedVersion, 505},
      {"bad method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadMethod, 400},
      {"CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", Error::kConnectNotSupported, 501},
      {"asterisk with GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadTarget, 400},
      {"userinfo in target", "GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadTarget, 400},
      {"ftp scheme", "GET ftp://h/ HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadTarget, 400},
      {"UTF-8 in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", Error::kBadTarget, 400},
  };
  for (const Refusal& c : cases) {
    const Transcript t = whole(c.input);
    EXPECT_EQ(t.error, c.error) << c.name << ": got " << error_name(t.error);
    EXPECT_EQ(request_error_status(t.error), c.status) << c.name;
    EXPECT_EQ(t.messages, 0) << c.name;
  }
}

TEST(HttpRequestParser, ErrorsStickAndReportOnce) {
  Harness h;
  h.feed("GET / HTTP/1.1\nHost: h\n\n");
  EXPECT_EQ(h.t.error, Error::kBareLf);
  const Step again = h.parser.feed(bytes("GET / HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_EQ(again.event, Event::kError);
  EXPECT_EQ(again.consumed, 0u);
}

TEST(HttpRequestParser, RequestLineAndHeadLimits) {
  RequestLimits limits;
  limits.max_request_line = 64;
  limits.max_fields = 3;
  {
    Harness h(1024, limits);
    h.feed("GET /" + std::string(59, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n");  // 64 + 9
    EXPECT_EQ(h.t.error, Error::kStartLineTooLong);
    EXPECT_EQ(request_error_status(h.t.error), 414);
  }
  {
    Harness h(1024, limits);  // exactly 64
    h.feed("GET /" + std::string(50, 'a') + " HTTP/1.1\r\nHost: h\r\n\r\n");
    EXPECT_EQ(h.t.error, Error::kNone);
    EXPECT_EQ(h.t.messages, 1);
  }
  {
    Harness h(1024, limits);
    h.feed("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    EXPECT_EQ(h.t.error, Error::kTooManyFields);
    EXPECT_EQ(request_error_status(h.t.error), 431);
  }
  {
    Harness h(128, limits);  // the head buffer is the head's bound
    h.feed("GET / HTTP/1.1\r\nHost: h\r\nCookie: " + std::string(100, 'c') + "\r\n\r\n");
    EXPECT_EQ(h.t.error, Error::kHeadTooLarge);
    EXPECT_EQ(request_error_status(h.t.error), 431);
  }
  {
    const std::string head = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(96, 'c') + "\r\n\r\n";
    ASSERT_EQ(head.size(), 128u);
    Harness h(128, limits);  // a head of exactly the buffer's size fits
    h.feed(head);
    EXPECT_EQ(h.t.error, Error::kNone);
    EXPECT_EQ(h.t.messages, 1);
  }
}

TEST(HttpRequestParser, ChunkAndTrailerLimits) {
  RequestLimits limits;
  limits.body.max_chunk_line = 16;
  limits.body.max_trailer_bytes = 32;
  limits.body.max_trailer_fields = 2;
  const std::string h = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(whole(h + "5;aaaaaaaaaaaaaaaaaaaa\r\nhello\r\n", limits).error, Error::kChunkLineTooLong);
  EXPECT_EQ(whole(h + "5;aaaaaaaaa\r\nhello\r\n0\r\n\r\n", limits).error, Error::kNone);
  EXPECT_EQ(whole(h + "0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits).error, Error::kTrailerTooLarge);
  EXPECT_EQ(whole(h + "0\r\nA: " + std::string(40, 'x') + "\r\n\r\n", limits).error,
            Error::kTrailerTooLarge);
}

TEST(HttpRequestParser, ForbiddenTrailerNames) {
  std::vector<char> buffer(4096);
  RequestParser p{std::span<char>(buffer)};
  static constexpr std::string_view kNames[] = {"X-Client-Verified", "Client-Cert"};
  p.body_framer().set_forbidden_trailer_names(kNames);
  Transcript t;
  testing::feed_chunk(p,
                      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "0\r\nclient-CERT: :AAAA:\r\n\r\n",
                      t, describe);
  EXPECT_EQ(t.error, Error::kForbiddenTrailer);
}

TEST(HttpRequestParser, LargeBodiesStreamWithoutBuffering) {
  const std::string body(1 << 20, 'b');
  Harness h(256);
  h.feed("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(h.t.messages, 0);
  for (size_t i = 0; i < body.size(); i += 4096) h.feed(std::string_view(body).substr(i, 4096));
  EXPECT_EQ(h.t.messages, 1);
  EXPECT_EQ(h.t.bodies[0].size(), body.size());
  EXPECT_TRUE(h.parser.idle());
}

// One corrupted byte anywhere in a pipeline, fed in random pieces: the parser
// either refuses or forwards exactly a prefix of what it was given, and
// never reads or reports past its input.
TEST(HttpRequestParser, CorruptedPipelinesNeverForwardWhatWasNotSent) {
  std::mt19937 rng(20261128);
  int refused = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string input = kPipeline;
    input[rng() % input.size()] = static_cast<char>(rng() % 256);
    Harness h;
    size_t at = 0;
    while (at < input.size()) {
      const size_t n = 1 + rng() % 40;
      h.feed(std::string_view(input).substr(at, n));
      at += n;
    }
    ASSERT_EQ(input.compare(0, h.t.forwarded.size(), h.t.forwarded), 0) << input;
    ASSERT_LE(h.t.messages, 4);
    if (h.t.error != Error::kNone) ++refused;
  }
  EXPECT_GT(refused, 1000);  // most single-byte corruptions break the grammar
}

}  // namespace
}  // namespace mtlsgw::forward::http
