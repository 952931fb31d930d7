#include "rules/rule_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <new>

namespace mtlsgw::rules {

RegexScratch::RegexScratch() {
  // One ovector pair is enough to learn whether a pattern matched: a pattern
  // with captures then returns 0 ("ovector too small"), which is a match.
  data_ = pcre2_match_data_create(1, nullptr);
  context_ = pcre2_match_context_create(nullptr);
  jit_stack_ = pcre2_jit_stack_create(kJitStackStart, kJitStackMax, nullptr);
  if (data_ == nullptr || context_ == nullptr || jit_stack_ == nullptr) {
    release();
    throw std::bad_alloc();
  }
  pcre2_set_match_limit(context_, kMatchLimit);
  pcre2_set_depth_limit(context_, kDepthLimit);
  pcre2_set_heap_limit(context_, kHeapLimitKib);
  pcre2_jit_stack_assign(context_, nullptr, jit_stack_);
}

RegexScratch::~RegexScratch() { release(); }

void RegexScratch::release() noexcept {
  pcre2_jit_stack_free(jit_stack_);
  pcre2_match_context_free(context_);
  pcre2_match_data_free(data_);
  jit_stack_ = nullptr;
  context_ = nullptr;
  data_ = nullptr;
}

std::optional<Regex> Regex::compile(std::string_view pattern, CompileError& error) {
  std::string kept(pattern);  // before pcre2_compile, so that nothing throws holding its result
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* compiled = pcre2_compile(
      reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
      PCRE2_NEVER_UTF | PCRE2_DOLLAR_ENDONLY | PCRE2_NEVER_BACKSLASH_C, &code, &offset, nullptr);
  if (compiled == nullptr) {
    PCRE2_UCHAR message[256];
    if (pcre2_get_error_message(code, message, sizeof message) < 0) {
      error.message = "error " + std::to_string(code);
    } else {
      error.message = reinterpret_cast<const char*>(message);
    }
    error.pattern_offset = offset;
    return std::nullopt;
  }
  // Without a JIT (an unsupported CPU, or SELinux denying executable
  // memory) the interpreter runs the same pattern under the same limits.
  const bool jit = pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE) == 0;
  return Regex(compiled, jit, std::move(kept));
}

Regex& Regex::operator=(Regex&& other) noexcept {
  if (this != &other) {
    pcre2_code_free(code_);
    code_ = other.code_;
    jit_ = other.jit_;
    pattern_ = std::move(other.pattern_);
    other.code_ = nullptr;
  }
  return *this;
}

Regex::~Regex() { pcre2_code_free(code_); }

bool Regex::search(std::string_view subject, RegexScratch& scratch) const noexcept {
  // An empty view may have no data pointer; PCRE2 refuses a null subject.
  const auto* text = reinterpret_cast<PCRE2_SPTR>(subject.empty() ? "" : subject.data());
  const int rc =
      jit_ ? pcre2_jit_match(code_, text, subject.size(), 0, 0, scratch.data_, scratch.context_)
           : pcre2_match(code_, text, subject.size(), 0, 0, scratch.data_, scratch.context_);
  if (rc >= 0) return true;
  if (rc != PCRE2_ERROR_NOMATCH) ++scratch.aborted_;
  return false;
}

}  // namespace mtlsgw::rules
