#include "bench_pki.h"

#include <cstdlib>
#include <filesystem>

namespace mtlsgw::perf {

std::string find_test_pki(std::string& error) {
  const char* from_env = std::getenv("MTLSGW_TEST_PKI");
  const std::string dir = from_env != nullptr && *from_env != '\0' ? from_env : MTLSGW_PERF_TEST_PKI;
  if (dir.empty()) {
    error = "no test PKI: set MTLSGW_TEST_PKI to a directory made by scripts/make-test-pki";
    return "";
  }
  // The last file the script makes for what the benchmarks read.
  std::error_code ignored;
  if (!std::filesystem::exists(dir + "/client-devices.chain.pem", ignored)) {
    error = "no test PKI in " + dir + " (client-devices.chain.pem missing): run `ninja -C BUILD tests/test-pki.stamp` or "
            "`scripts/make-test-pki " + dir + "`, or set MTLSGW_TEST_PKI";
    return "";
  }
  return dir;
}

}  // namespace mtlsgw::perf
