#include "dataplane/forward/http_body.h"

#include <gtest/gtest.h>

#include <string>

namespace mtlsgw::forward::http {
namespace {

const uint8_t* u8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Feeds s in pieces cut at cut; returns the bytes taken as body before done
// (or error), and whether it ended.
struct Outcome {
  size_t body = 0;
  bool done = false;
  Error error = Error::kNone;
};

Outcome run(BodyFramer& f, const std::string& s, size_t cut) {
  Outcome o;
  for (const auto& [from, to] : {std::pair{size_t{0}, cut}, std::pair{cut, s.size()}}) {
    if (o.done || o.error != Error::kNone) break;
    const BodyFramer::Result r = f.feed(u8(s) + from, to - from);
    o.body += r.consumed;
    o.done = r.done;
    o.error = r.error;
  }
  return o;
}

TEST(HttpBodyFramer, ChunkedStopsExactlyAtItsEndWhereverTheInputIsCut) {
  const std::string body =
      "1a; ext=\"v\\\\\"\r\nabcdefghijklmnopqrstuvwxyz\r\n"
      "3\r\n\r\n\r\r\n"  // chunk data may hold CR and LF
      "0\r\nTrailer: t\r\n\r\n";
  const std::string next = "GET / HTTP/1.1\r\n";
  const std::string input = body + next;
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    BodyFramer f;
    f.start(Framing::kChunked);
    const Outcome o = run(f, input, cut);
    ASSERT_EQ(o.error, Error::kNone) << cut;
    ASSERT_TRUE(o.done) << cut;
    ASSERT_EQ(o.body, body.size()) << cut;
  }
}

TEST(HttpBodyFramer, ContentLengthCountsDownAcrossFeeds) {
  BodyFramer f;
  f.start(Framing::kContentLength, 10);
  const std::string a = "01234";
  BodyFramer::Result r = f.feed(u8(a), a.size());
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_FALSE(r.done);
  const std::string b = "56789NEXT";
  r = f.feed(u8(b), b.size());
  EXPECT_EQ(r.consumed, 5u);
  EXPECT_TRUE(r.done);
  EXPECT_TRUE(f.done());

  f.start(Framing::kContentLength, 0);
  EXPECT_TRUE(f.done());
  f.start(Framing::kNone);
  EXPECT_TRUE(f.done());
}

TEST(HttpBodyFramer, LargestChunkSizeIsAccepted) {
  BodyFramer f;
  f.start(Framing::kChunked);
  const std::string line = "ffffffffffffffff\r\nxyz";
  const BodyFramer::Result r = f.feed(u8(line), line.size());
  EXPECT_EQ(r.error, Error::kNone);
  EXPECT_EQ(r.consumed, line.size());
  EXPECT_FALSE(r.done);
}

TEST(HttpBodyFramer, CloseEndsOnlyACloseDelimitedBody) {
  BodyFramer f;
  f.start(Framing::kUntilClose);
  const std::string data(5000, 'd');
  const BodyFramer::Result r = f.feed(u8(data), data.size());
  EXPECT_EQ(r.consumed, data.size());
  EXPECT_FALSE(r.done);
  EXPECT_TRUE(f.at_close());
  EXPECT_TRUE(f.done());

  f.start(Framing::kContentLength, 10);
  f.feed(u8(data), 3);
  EXPECT_FALSE(f.at_close());  // truncated

  f.start(Framing::kChunked);
  const std::string partial = "5\r\nhel";
  f.feed(u8(partial), partial.size());
  EXPECT_FALSE(f.at_close());
}

TEST(HttpBodyFramer, ChunkExtensionGrammar) {
  const char* accepted[] = {"5;a\r\nhello\r\n0\r\n\r\n", "5 ;a\r\nhello\r\n0\r\n\r\n",
                            "5; a = b\r\nhello\r\n0\r\n\r\n", "5;a=\"\"\r\nhello\r\n0\r\n\r\n",
                            "5;a=b;c=\"d;e\"\r\nhello\r\n0\r\n\r\n"};
  for (const char* s : accepted) {
    BodyFramer f;
    f.start(Framing::kChunked);
    const std::string in = s;
    const BodyFramer::Result r = f.feed(u8(in), in.size());
    EXPECT_EQ(r.error, Error::kNone) << s;
    EXPECT_TRUE(r.done) << s;
  }
  const char* refused[] = {"5;\r\n", "5;a=\r\n", "5;a b\r\n", "5;a=b \r\n", "5;a=\"x\r\n",
                           "5;a=\"\x01\"\r\n", "5;a=b=c\r\n"};
  for (const char* s : refused) {
    BodyFramer f;
    f.start(Framing::kChunked);
    const std::string in = s;
    EXPECT_EQ(f.feed(u8(in), in.size()).error, Error::kBadChunkExtension) << s;
  }
}

}  // namespace
}  // namespace mtlsgw::forward::http
