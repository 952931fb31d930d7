#include "ctl/ctl_batch.h"

namespace mtlsgw::ctl {

std::variant<std::vector<BatchCommand>, BatchError> parse_batch(std::string_view text) {
  std::vector<BatchCommand> commands;
  BatchCommand current;
  std::string word;
  bool in_word = false;  // a word has started (also an empty quoted one)
  std::size_t line = 1;

  auto end_word = [&] {
    if (in_word) current.words.push_back(std::move(word));
    word.clear();
    in_word = false;
  };
  auto end_command = [&] {
    end_word();
    if (!current.words.empty()) commands.push_back(std::move(current));
    current = BatchCommand{};
  };

  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (current.words.empty() && !in_word) current.line = line;
    if (c == '\n') {
      end_command();
      ++line;
      ++i;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      end_word();
      ++i;
    } else if (c == '#' && !in_word) {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        ++i;  // a lone backslash at the very end stands for nothing
      } else if (text[i + 1] == '\n') {
        ++line;
        i += 2;
      } else if (text[i + 1] == '\r' && i + 2 < text.size() && text[i + 2] == '\n') {
        ++line;
        i += 3;
      } else {
        word += text[i + 1];
        in_word = true;
        i += 2;
      }
    } else if (c == '\'' || c == '"') {
      const std::size_t opened_on = line;
      in_word = true;
      ++i;
      for (;;) {
        if (i >= text.size()) {
          return BatchError{opened_on, c == '\'' ? "unterminated ' quote"
                                                  : "unterminated \" quote"};
        }
        const char q = text[i];
        if (q == c) {
          ++i;
          break;
        }
        if (q == '\n') ++line;
        if (c == '"' && q == '\\' && i + 1 < text.size() &&
            (text[i + 1] == '"' || text[i + 1] == '\\')) {
          word += text[i + 1];
          i += 2;
          continue;
        }
        word += q;
        ++i;
      }
    } else {
      word += c;
      in_word = true;
      ++i;
    }
  }
  end_command();
  return commands;
}

}  // namespace mtlsgw::ctl
