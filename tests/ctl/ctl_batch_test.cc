#include "ctl/ctl_batch.h"

#include <gtest/gtest.h>

namespace mtlsgw::ctl {
namespace {

using Words = std::vector<std::string>;

std::vector<BatchCommand> commands_of(std::string_view text) {
  auto parsed = parse_batch(text);
  if (auto* error = std::get_if<BatchError>(&parsed)) {
    ADD_FAILURE() << "line " << error->line << ": " << error->message;
    return {};
  }
  return std::get<std::vector<BatchCommand>>(parsed);
}

Words words_of(std::string_view line) {
  auto commands = commands_of(line);
  EXPECT_EQ(commands.size(), 1u) << line;
  return commands.empty() ? Words{} : commands[0].words;
}

TEST(CtlBatch, SplitsOnBlanks) {
  EXPECT_EQ(words_of("host   list"), (Words{"host", "list"}));
  EXPECT_EQ(words_of("\thost\tdel a.test  \r"), (Words{"host", "del", "a.test"}));
}

TEST(CtlBatch, QuotesKeepBlanksAndSpecialCharacters) {
  EXPECT_EQ(words_of(R"(rule add r1 --expression 'sni == "a.test" && !verified' --action block)"),
            (Words{"rule", "add", "r1", "--expression", "sni == \"a.test\" && !verified", "--action",
                   "block"}));
  EXPECT_EQ(words_of(R"(x "a \"b\" \\ \n $HOME" 'it''s' '')"),
            (Words{"x", "a \"b\" \\ \\n $HOME", "its", ""}));
  EXPECT_EQ(words_of(R"(x a\ b \'c\" d#e)"), (Words{"x", "a b", "'c\"", "d#e"}));
  EXPECT_EQ(words_of(R"(x pre"mid dle"'post')"), (Words{"x", "premid dlepost"}));
}

TEST(CtlBatch, CommentsAndEmptyLinesAreSkipped) {
  const auto commands = commands_of(
      "# a comment\n"
      "\n"
      "begin   # trailing comment\n"
      "   \n"
      "host del '#not-a-comment'\n"
      "commit\n");
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_EQ(commands[0].words, (Words{"begin"}));
  EXPECT_EQ(commands[0].line, 3u);
  EXPECT_EQ(commands[1].words, (Words{"host", "del", "#not-a-comment"}));
  EXPECT_EQ(commands[1].line, 5u);
  EXPECT_EQ(commands[2].line, 6u);
}

TEST(CtlBatch, BackslashNewlineContinuesAndQuotesMaySpanLines) {
  const auto commands = commands_of(
      "host add a.test \\\n"
      "   --cert a.pem \\\r\n"
      "   --key a.key\n"
      "rule add r --expression 'a\n"
      "b' --action log\n"
      "ping");
  ASSERT_EQ(commands.size(), 3u);
  EXPECT_EQ(commands[0].words,
            (Words{"host", "add", "a.test", "--cert", "a.pem", "--key", "a.key"}));
  EXPECT_EQ(commands[0].line, 1u);
  EXPECT_EQ(commands[1].words[4], "a\nb");
  EXPECT_EQ(commands[1].line, 4u);
  EXPECT_EQ(commands[2].words, (Words{"ping"}));
  EXPECT_EQ(commands[2].line, 6u);
}

TEST(CtlBatch, AnUnterminatedQuoteNamesItsLine) {
  auto parsed = parse_batch("ping\nrule add r --expression 'oops\nping\n");
  ASSERT_TRUE(std::holds_alternative<BatchError>(parsed));
  EXPECT_EQ(std::get<BatchError>(parsed).line, 2u);
  EXPECT_EQ(std::get<BatchError>(parsed).message, "unterminated ' quote");
  parsed = parse_batch("x \"a");
  ASSERT_TRUE(std::holds_alternative<BatchError>(parsed));
  EXPECT_EQ(std::get<BatchError>(parsed).message, "unterminated \" quote");
}

TEST(CtlBatch, AnEmptyFileHasNoCommands) {
  EXPECT_TRUE(commands_of("").empty());
  EXPECT_TRUE(commands_of("# only\n\n  # comments\n").empty());
}

}  // namespace
}  // namespace mtlsgw::ctl
