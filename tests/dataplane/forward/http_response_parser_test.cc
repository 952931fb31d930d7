#include "dataplane/forward/http_response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "http_transcript.h"

namespace mtlsgw::forward::http {
namespace {

using testing::Transcript;

std::string describe(const ResponseParser& p) {
  const ResponseHead& h = p.head();
  std::string s = std::to_string(h.status);
  switch (h.framing) {
    case Framing::kNone: s += " none"; break;
    case Framing::kContentLength: s += " cl=" + std::to_string(h.content_length); break;
    case Framing::kChunked: s += " chunked"; break;
    case Framing::kUntilClose: s += " until-close"; break;
  }
  if (h.interim) s += " interim";
  if (!h.keep_alive) s += " close";
  return s;
}

struct Harness {
  std::vector<char> buffer = std::vector<char>(16384);
  ResponseLimits limits;
  ResponseParser parser{std::span<char>(buffer), limits};
  Transcript t;
  // requests: one char per forwarded request, 'H' for HEAD, anything else not.
  explicit Harness(std::string_view requests) {
    for (char c : requests) EXPECT_TRUE(parser.push_request(c == 'H'));
  }
  void feed(std::string_view chunk) { testing::feed_chunk(parser, chunk, t, describe); }
};

const std::string kResponses =
    "HTTP/1.1 100 Continue\r\n\r\n"
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"  // answer to HEAD: no body
    "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"
    "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"
    "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n0\r\nT: 1\r\n\r\n"
    "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok";  // no reason phrase

TEST(HttpResponseParser, PipelinedResponsesSplitAtEveryByte) {
  Harness whole("GHGGGG");
  whole.feed(kResponses);
  EXPECT_EQ(whole.t.error, Error::kNone) << error_name(whole.t.error);
  const std::vector<std::string> heads = {"100 none interim", "200 cl=5", "200 none", "204 none",
                                          "304 none", "201 chunked", "200 cl=2"};
  EXPECT_EQ(whole.t.heads, heads);
  EXPECT_EQ(whole.t.messages, 7);
  EXPECT_EQ(whole.t.forwarded, kResponses);
  EXPECT_EQ(whole.parser.pending(), 0u);
  EXPECT_TRUE(whole.parser.idle());
  EXPECT_TRUE(whole.parser.at_close());

  for (size_t cut = 0; cut <= kResponses.size(); ++cut) {
    Harness h("GHGGGG");
    h.feed(std::string_view(kResponses).substr(0, cut));
    h.feed(std::string_view(kResponses).substr(cut));
    ASSERT_EQ(h.t, whole.t) << "cut at " << cut;
  }
  Harness h("GHGGGG");
  for (size_t i = 0; i < kResponses.size(); ++i) h.feed(std::string_view(kResponses).substr(i, 1));
  EXPECT_EQ(h.t, whole.t);
}

TEST(HttpResponseParser, InterimResponsesKeepTheRequestPending) {
  Harness h("G");
  h.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n");
  EXPECT_EQ(h.t.messages, 2);
  EXPECT_EQ(h.parser.pending(), 1u);
  h.feed("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_EQ(h.parser.pending(), 0u);
}

TEST(HttpResponseParser, CloseDelimitedBodyEndsAtTheOriginsClose) {
  Harness h("G");
  h.feed("HTTP/1.1 200 OK\r\n\r\nsome bytes");
  h.feed(" and more");
  EXPECT_EQ(h.t.heads, std::vector<std::string>{"200 until-close close"});
  EXPECT_EQ(h.t.messages, 0);
  EXPECT_TRUE(h.parser.at_close());
  EXPECT_EQ(h.parser.pending(), 0u);

  Harness te("G");  // RFC 9112 6.3 rule 4: TE without chunked last
  te.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzz");
  EXPECT_EQ(te.t.heads, std::vector<std::string>{"200 until-close close"});
}

TEST(HttpResponseParser, TruncatedResponsesAreNotCleanCloses) {
  for (const char* partial : {"HTTP/1.1 200 OK\r\nContent-Len", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
                              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"}) {
    Harness h("G");
    h.feed(partial);
    EXPECT_EQ(h.t.error, Error::kNone) << partial;
    EXPECT_FALSE(h.parser.at_close()) << partial;
  }
  Harness nothing("G");
  EXPECT_TRUE(nothing.parser.at_close());  // no byte of a response: the relay answers 502
  EXPECT_TRUE(nothing.parser.idle());
  EXPECT_EQ(nothing.parser.pending(), 1u);
}

TEST(HttpResponseParser, ConnectionCloseAndHttp10) {
  Harness h("GG");
  h.feed("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nxHTTP/1.1 200 OK\r\n");
  EXPECT_EQ(h.t.heads, std::vector<std::string>{"200 cl=1 close"});
  EXPECT_TRUE(h.t.closed);

  Harness old("GG");
  old.feed("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx"
           "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\ny");
  const std::vector<std::string> heads = {"200 cl=1", "200 cl=1 close"};
  EXPECT_EQ(old.t.heads, heads);
}

TEST(HttpResponseParser, SwitchingProtocolsBecomesATunnel) {
  Harness h("G");
  h.feed("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
         "\x81\x02hi HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(h.t.error, Error::kNone);
  EXPECT_TRUE(h.parser.tunnel());
  EXPECT_EQ(h.t.bodies.back(), "\x81\x02hi HTTP/1.1 200 OK\r\n");
  EXPECT_EQ(h.parser.pending(), 0u);
}

TEST(HttpResponseParser, PendingRequestsAreBounded) {
  std::vector<char> buffer(1024);
  ResponseParser p{std::span<char>(buffer)};
  for (unsigned i = 0; i < ResponseParser::kMaxPending; ++i) ASSERT_TRUE(p.push_request(i == 31));
  EXPECT_FALSE(p.push_request(false));
  EXPECT_EQ(p.pending(), ResponseParser::kMaxPending);
  // The 32nd request was HEAD: its response, after 31 others, has no body.
  Transcript t;
  std::string responses;
  for (int i = 0; i < 31; ++i) responses += "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";
  responses += "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n";
  testing::feed_chunk(p, responses, t, describe);
  EXPECT_EQ(t.messages, 32);
  EXPECT_EQ(t.heads.back(), "200 none");
  EXPECT_EQ(p.pending(), 0u);
}

TEST(HttpResponseParser, RefusesWhatItCannotFrame) {
  struct Case {
    const char* name;
    std::string input;
    Error error;
  };
  const std::vector<Case> cases = {
      {"unsolicited", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", Error::kUnsolicitedResponse},
      {"CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       Error::kContentLengthWithTransferEncoding},
      {"bad CL", "HTTP/1.1 200 OK\r\nContent-Length: 3x\r\n\r\n", Error::kBadContentLength},
      {"conflicting CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
       Error::kConflictingContentLength},
      {"status 99", "HTTP/1.1 099 Odd\r\n\r\n", Error::kBadStatus},
      {"status 600", "HTTP/1.1 600 Odd\r\n\r\n", Error::kBadStatus},
      {"status letters", "HTTP/1.1 2x0 OK\r\n\r\n", Error::kBadStatus},
      {"HTTP/2", "HTTP/2.0 200 OK\r\n\r\n", Error::kUnsupportedVersion},
      {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", Error::kBadStartLine},
      {"bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", Error::kBareLf},
      {"space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
       Error::kWhitespaceBeforeColon},
  };
  for (const Case& c : cases) {
    Harness h(c.error == Error::kUnsolicitedResponse ? "" : "G");
    h.feed(c.input);
    EXPECT_EQ(h.t.error, c.error) << c.name << ": got " << error_name(h.t.error);
  }
}

}  // namespace
}  // namespace mtlsgw::forward::http
