#pragma once
// Regular expressions for `matches` / `~`: PCRE2 (8-bit, byte semantics),
// compiled once with the rule, JIT-compiled when the platform has a JIT, and
// matched through a RegexScratch that holds everything a match writes, so
// that matching allocates nothing and one compiled Regex serves all workers.
//
// Compile options (why, docs/rules.md "Regular expressions"):
//   PCRE2_NEVER_UTF        bytes, never UTF-8 mode: a subject is not
//                          validated and an invalid UTF-8 SNI cannot make a
//                          match fail with an error
//   PCRE2_DOLLAR_ENDONLY   "$" is the end of the subject, not also before a
//                          final newline
//   PCRE2_NEVER_BACKSLASH_C  \C is meaningless without UTF and is refused
//
// Bounds: every match runs under kMatchLimit (PCRE2's match limit, which
// the JIT and the interpreter both count), kDepthLimit and kHeapLimitKib
// (the interpreter's). A match that hits one is "aborted": the comparison is
// false and RegexScratch counts it. What the match limit does and does not
// bound is in docs/rules.md, "Regular expressions": it stops exponential
// backtracking (^(a|aa)+$) but not the quadratic retries of adjacent
// repeats (.*foo.*bar on a long URI). A hard bound would need another
// matcher: pcre2_dfa_match (no backtracking, its work is subject length
// times pattern states; no back references) or a step budget counted in a
// callout (PCRE2_AUTO_CALLOUT, which costs every match a call per item).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

struct pcre2_real_code_8;
struct pcre2_real_match_data_8;
struct pcre2_real_match_context_8;
struct pcre2_real_jit_stack_8;

namespace mtlsgw::rules {

// 10,000: the patterns of docs/rules.md's examples need under 10 on
// subjects of 8 KiB, and an exponential one stops after 25 to 30 us with
// the JIT (perf/rules_bench BM_RegexExponential; the time grows with the
// limit: 200 us at 100,000, about 20 ms at PCRE2's default of 10,000,000).
constexpr uint32_t kMatchLimit = 10'000;
// The interpreter's (no JIT) recursion depth and backtracking memory.
constexpr uint32_t kDepthLimit = 1'000;
constexpr uint32_t kHeapLimitKib = 1'024;
// The JIT's own stack, per scratch: 32 KiB to start, 256 KiB at most.
constexpr std::size_t kJitStackStart = 32 * 1024;
constexpr std::size_t kJitStackMax = 256 * 1024;

class RegexScratch {
 public:
  RegexScratch();  // throws std::bad_alloc
  ~RegexScratch();
  RegexScratch(const RegexScratch&) = delete;
  RegexScratch& operator=(const RegexScratch&) = delete;

  uint64_t aborted() const noexcept { return aborted_; }

 private:
  friend class Regex;
  void release() noexcept;

  pcre2_real_match_data_8* data_ = nullptr;
  pcre2_real_match_context_8* context_ = nullptr;
  pcre2_real_jit_stack_8* jit_stack_ = nullptr;
  uint64_t aborted_ = 0;
};

class Regex {
 public:
  struct CompileError {
    std::string message;  // PCRE2's
    std::size_t pattern_offset = 0;
  };

  static std::optional<Regex> compile(std::string_view pattern, CompileError& error);

  Regex(Regex&& other) noexcept
      : code_(other.code_), jit_(other.jit_), pattern_(std::move(other.pattern_)) {
    other.code_ = nullptr;
  }
  Regex& operator=(Regex&& other) noexcept;
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  ~Regex();

  // Whether pattern matches somewhere in subject (unanchored, as PCRE2
  // searches). False when the match was aborted by a limit, counted in
  // scratch.
  bool search(std::string_view subject, RegexScratch& scratch) const noexcept;

  bool jit() const noexcept { return jit_; }
  const std::string& pattern() const noexcept { return pattern_; }

 private:
  Regex(pcre2_real_code_8* code, bool jit, std::string&& pattern) noexcept
      : code_(code), jit_(jit), pattern_(std::move(pattern)) {}
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
  std::string pattern_;
};

}  // namespace mtlsgw::rules
