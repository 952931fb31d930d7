#pragma once
// Drives an HTTP parser (RequestParser or ResponseParser) the way the relay
// will: feed a chunk, act on each event, feed the rest; records what would
// be forwarded, so that tests can compare feeding in one piece with feeding
// in any number of pieces.

#include <gtest/gtest.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/forward/http_request_parser.h"

namespace mtlsgw::forward::http::testing {

struct Transcript {
  std::vector<std::string> heads;  // one description per head
  std::vector<std::string> bodies;  // body bytes per message, framing included
  std::string forwarded;            // raw heads and body bytes, in order
  int messages = 0;
  bool closed = false;
  Error error = Error::kNone;

  bool operator==(const Transcript&) const = default;
};

inline std::span<const uint8_t> bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// describe(parser) turns the current head into a string for Transcript::heads.
template <class Parser, class Describe>
void feed_chunk(Parser& p, std::string_view chunk, Transcript& t, Describe describe) {
  std::span<const uint8_t> d = bytes(chunk);
  for (int guard = 0; guard < 100000; ++guard) {
    if (t.closed || t.error != Error::kNone) return;
    const Step s = p.feed(d);
    const std::string taken(reinterpret_cast<const char*>(d.data()), s.consumed);
    d = d.subspan(s.consumed);
    switch (s.event) {
      case Event::kNeedMore:
        EXPECT_TRUE(d.empty()) << "kNeedMore left bytes";
        return;
      case Event::kHead:
        t.heads.push_back(describe(p));
        t.forwarded += p.head().raw;
        t.bodies.emplace_back();
        break;
      case Event::kBody:
      case Event::kMessageEnd:
        if (t.bodies.empty()) t.bodies.emplace_back();
        t.bodies.back() += taken;
        t.forwarded += taken;
        if (s.event == Event::kMessageEnd) ++t.messages;
        break;
      case Event::kClosed:
        t.closed = true;
        return;
      case Event::kError:
        t.error = p.error();
        return;
    }
  }
  ADD_FAILURE() << "parser did not make progress";
}

}  // namespace mtlsgw::forward::http::testing
