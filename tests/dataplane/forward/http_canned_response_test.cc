#include "dataplane/forward/http_canned_response.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "dataplane/forward/http_response_parser.h"
#include "http_transcript.h"

namespace mtlsgw::forward::http {
namespace {

// Each response is a complete, well-framed HTTP/1.1 message by our own
// response parser's rules, and ends the connection.
TEST(HttpCannedResponse, EveryStatusIsAWellFramedClosingResponse) {
  for (uint16_t status : {400, 414, 421, 431, 501, 502, 504, 505}) {
    char out[kMaxCannedResponseLen];
    const size_t n = write_canned_response(status, 784111777, out, sizeof out);
    ASSERT_GT(n, 0u) << status;
    const std::string text(out, n);
    EXPECT_EQ(text.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0), 0u) << text;
    EXPECT_NE(text.find("\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"), std::string::npos) << text;

    std::vector<char> buffer(1024);
    ResponseLimits limits;
    ResponseParser p{std::span<char>(buffer), limits};
    ASSERT_TRUE(p.push_request(false));
    testing::Transcript t;
    testing::feed_chunk(p, text, t, [](const ResponseParser& rp) { return std::to_string(rp.head().status); });
    EXPECT_EQ(t.error, Error::kNone) << text;
    EXPECT_EQ(t.messages, 1) << text;
    EXPECT_TRUE(t.closed) << text;  // Connection: close
    EXPECT_EQ(t.heads, std::vector<std::string>{std::to_string(status)});
    EXPECT_EQ(t.bodies[0], std::to_string(status) + " " + std::string(canned_reason(status)) + "\n");
  }
}

TEST(HttpCannedResponse, ExactBytesOf421) {
  char out[kMaxCannedResponseLen];
  const size_t n = write_canned_response(421, -1, out, sizeof out);
  EXPECT_EQ(std::string(out, n),
            "HTTP/1.1 421 Misdirected Request\r\nContent-Type: text/plain\r\n"
            "Content-Length: 24\r\nConnection: close\r\n\r\n421 Misdirected Request\n");
}

TEST(HttpCannedResponse, RefusesUnknownStatusAndSmallBuffers) {
  char out[kMaxCannedResponseLen];
  EXPECT_EQ(write_canned_response(200, 0, out, sizeof out), 0u);
  EXPECT_EQ(write_canned_response(418, 0, out, sizeof out), 0u);
  const size_t n = write_canned_response(502, 0, out, sizeof out);
  ASSERT_GT(n, 0u);
  EXPECT_EQ(write_canned_response(502, 0, out, n - 1), 0u);
  EXPECT_EQ(write_canned_response(502, 0, out, n), n);
}

}  // namespace
}  // namespace mtlsgw::forward::http
