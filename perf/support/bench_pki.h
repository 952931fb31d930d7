#pragma once
// Where the benchmarks find the test PKI of scripts/make-test-pki: the
// directory in MTLSGW_TEST_PKI (meson's benchmark() entries set it), else the
// build directory's tests/pki, compiled in by perf/meson.build.

#include <string>

namespace mtlsgw::perf {

// The directory, or "" with `error` saying what is missing and how to make it.
std::string find_test_pki(std::string& error);

}  // namespace mtlsgw::perf
