#pragma once
// The batch file of `mtlsgwctl batch`: one command per line, written as on
// the command line (NOUN VERB [args]), with a subset of the shell's quoting
// so that expressions and names with spaces survive (docs/control.md).

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mtlsgw::ctl {

struct BatchCommand {
  std::size_t line = 0;  // where the command starts, from 1
  std::vector<std::string> words;
};

struct BatchError {
  std::size_t line = 0;
  std::string message;
};

// Words are separated by blanks; '...' keeps everything literally; "..."
// keeps everything but \" and \\, which stand for " and \; outside quotes \X
// stands for X, and a backslash at the end of a line joins the next line; #
// at the start of a word starts a comment to the end of the line. Quotes may
// span lines. Lines without words are skipped.
std::variant<std::vector<BatchCommand>, BatchError> parse_batch(std::string_view text);

}  // namespace mtlsgw::ctl
