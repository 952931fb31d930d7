// Evaluation allocates nothing: this binary counts allocations while a
// table is evaluated, through malloc (where PCRE2 and libstdc++'s operator
// new allocate), or, in AddressSanitizer builds, which own malloc, through
// operator new.

#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <new>

#include "rules/rule_table.h"

// GCC says __SANITIZE_ADDRESS__, clang 14 only __has_feature.
#if defined(__SANITIZE_ADDRESS__)
#define RULES_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RULES_TEST_ASAN 1
#endif
#endif

namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
}  // namespace

#if !defined(RULES_TEST_ASAN)
extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* p, std::size_t size);
void* malloc(std::size_t size) {
  if (counting) ++allocations;
  return __libc_malloc(size);
}
void* calloc(std::size_t count, std::size_t size) {
  if (counting) ++allocations;
  return __libc_calloc(count, size);
}
void* realloc(void* p, std::size_t size) {
  if (counting) ++allocations;
  return __libc_realloc(p, size);
}
}
#else
// GCC sees free() on what this operator new returned and warns, although
// both sides of the pair are replaced together.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t size) {
  if (counting) ++allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace mtlsgw::rules {
namespace {

TEST(RuleAllocation, EvaluationAllocatesNothing) {
  RuleTableBuilder builder;
  RuleError error;
  const std::array<std::pair<const char*, const char*>, 8> rules{{
      {"a", "client.cert.subject_dn matches r\"(^|,)O=Devices(,|$)\""},
      {"b", "client.cert.san.dns in {\"x\" \"api.example.test\"} and ip.src in {198.18.0.0/15}"},
      {"c", "client.cert.not_after < 1800000000 or tls.sni contains \"example\""},
      {"d", "http.request.uri ~ r\"^/v1/(items|orders)\" xor http.host == \"other\""},
      {"e", "not http.request.method in {\"GET\" \"HEAD\"}"},
      {"f", "http.request.uri.path ends_with \"/x\" and client.cert.san.uri != \"u\""},
      {"g", "tls.sni matches r\"^(a|aa)+$\""},  // aborts at the match limit
      {"h", "client.cert.verified"},
  }};
  for (const auto& [name, expression] : rules) {
    ASSERT_TRUE(builder.add(name, Action::log, expression, error)) << error.to_string();
  }
  const RuleTable table = std::move(builder).build();
  EvalScratch scratch;

  constexpr std::array<std::string_view, 2> san = {"api.example.test", "b"};
  RuleInput in;
  in.tls_sni = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!";
  in.ip_src = 0xC6120107;
  in.cert_presented = in.cert_verified = true;
  in.cert_subject_dn = "CN=dev-1,O=Devices";
  in.cert_san_dns = san;
  in.cert_san_uri = san;
  in.cert_not_after = 1;
  in.http_present = true;
  in.http_host = "api";
  in.http_method = "POST";
  in.http_uri_path = "/v1/x";
  in.http_uri = "/v1/items?x";

  counting = true;
  std::size_t hits = 0;
  for (int i = 0; i < 100; ++i) {
    const Verdict connected = table.evaluate_connection(in, scratch);
    const Verdict request = table.evaluate_request(in, scratch, connected.resume_index);
    hits += connected.logged.count() + request.logged.count();
  }
  counting = false;
  EXPECT_EQ(allocations, 0u);
  EXPECT_EQ(hits, 100u * 7);  // all but "g"
  EXPECT_EQ(scratch.regex_aborted(), 100u);
}

}  // namespace
}  // namespace mtlsgw::rules
