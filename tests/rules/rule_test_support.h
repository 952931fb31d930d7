#pragma once
// Helpers shared by the rules tests: compile or fail with the error in the
// assertion message, and the error of an expression that must not compile.

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "rules/rule_eval.h"
#include "rules/rule_parser.h"

namespace mtlsgw::rules::testing {

inline Program compile_ok(std::string_view text) {
  RuleError error;
  std::optional<Program> program = compile(text, error);
  if (!program) {
    ADD_FAILURE() << "\"" << text << "\" did not compile: " << error.to_string();
    program = compile("false", error);
  }
  return std::move(*program);
}

inline RuleError compile_error(std::string_view text) {
  RuleError error;
  if (compile(text, error)) ADD_FAILURE() << "\"" << text << "\" compiled";
  return error;
}

inline std::string canonical(std::string_view text) { return compile_ok(text).canonical_text(); }

}  // namespace mtlsgw::rules::testing
