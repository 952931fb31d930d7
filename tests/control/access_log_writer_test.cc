#include "control/access_log_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace mtlsgw::control {
namespace {

using gateway::AccessLogQueue;
using gateway::AccessRecord;
using gateway::ConnectionEnd;
using nlohmann::json;

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/mtlsgw-alog-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) throw std::system_error(errno, std::generic_category());
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<json> read_json_lines(const std::string& path) {
  std::vector<json> parsed;
  for (const std::string& line : read_lines(path)) parsed.push_back(json::parse(line));
  return parsed;
}

AccessRecord numbered(uint32_t n) {
  AccessRecord record;
  record.requests = n;
  record.set_end(ConnectionEnd::closed);
  return record;
}

// A TLS 1.3 connection with a verified client certificate, forwarded to an
// HTTP upstream: every field set.
AccessRecord full_record() {
  AccessRecord record;
  record.start_unix_us = 1'795'870'800'123'456;  // 2026-11-28T13:00:00.123456Z
  record.duration_us = 1'234'567;
  record.client_ip = 0xc6120001;  // 198.18.0.1
  record.client_port = 40000;
  record.listener_port = 443;
  record.upstream_ip = 0xc6130002;  // 198.19.0.2
  record.upstream_port = 8080;
  record.bytes_from_client = 1000;
  record.bytes_to_client = 2000;
  record.bytes_to_upstream = 1100;
  record.bytes_from_upstream = 1900;
  record.cert_presented = true;
  record.verified = true;
  record.resumed = true;
  record.set_verify_reason(tls::VerifyReason::ok);
  record.alert_sent = 0;  // close_notify
  record.alert_received = 0;
  record.set_end(ConnectionEnd::closed);
  record.http_status = 503;
  record.requests = 7;
  record.set_text(record.sni, "api.example");
  record.set_text(record.host, "api.example");
  record.set_text(record.tls_version, "TLSv1.3");
  record.set_text(record.cipher, "TLS_AES_128_GCM_SHA256");
  record.set_text(record.alpn, "http/1.1");
  record.set_text(record.subject_dn, "CN=dev-1,O=Devices");
  record.set_text(record.issuer_dn, "CN=Device CA,O=Example");
  record.set_text(record.serial_hex, "1A2B3C");
  record.set_text(record.fingerprint_sha256, std::string(64, 'f'));
  return record;
}

json format(const AccessRecord& record) { return json::parse(format_access_record(record)); }

TEST(AccessLogFormat, EveryKeyInOrderWithItsValue) {
  const std::string line = format_access_record(full_record());
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const json parsed = json::parse(line);

  const nlohmann::ordered_json in_order = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (auto it = in_order.begin(); it != in_order.end(); ++it) keys.push_back(it.key());
  EXPECT_EQ(keys, (std::vector<std::string>{
                      "time", "client", "client_port", "listener_port", "sni", "host",
                      "tls_version", "cipher", "alpn", "resumed", "cert_presented", "verified",
                      "verify_reason", "subject", "issuer", "serial", "fingerprint_sha256",
                      "alert_sent", "alert_received", "upstream", "bytes_from_client",
                      "bytes_to_client", "bytes_to_upstream", "bytes_from_upstream", "requests",
                      "http_status", "duration_ms", "end", "truncated"}));

  EXPECT_EQ(parsed["time"], "2026-11-28T13:00:00.123Z");
  EXPECT_EQ(parsed["client"], "198.18.0.1");
  EXPECT_EQ(parsed["client_port"], 40000);
  EXPECT_EQ(parsed["listener_port"], 443);
  EXPECT_EQ(parsed["sni"], "api.example");
  EXPECT_EQ(parsed["host"], "api.example");
  EXPECT_EQ(parsed["tls_version"], "TLSv1.3");
  EXPECT_EQ(parsed["cipher"], "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(parsed["alpn"], "http/1.1");
  EXPECT_EQ(parsed["resumed"], true);
  EXPECT_EQ(parsed["cert_presented"], true);
  EXPECT_EQ(parsed["verified"], true);
  EXPECT_EQ(parsed["verify_reason"], "ok");
  EXPECT_EQ(parsed["subject"], "CN=dev-1,O=Devices");
  EXPECT_EQ(parsed["issuer"], "CN=Device CA,O=Example");
  EXPECT_EQ(parsed["serial"], "1A2B3C");
  EXPECT_EQ(parsed["fingerprint_sha256"], std::string(64, 'f'));
  EXPECT_EQ(parsed["alert_sent"], "close_notify");
  EXPECT_EQ(parsed["alert_received"], "close_notify");
  EXPECT_EQ(parsed["upstream"], "198.19.0.2:8080");
  EXPECT_EQ(parsed["bytes_from_client"], 1000);
  EXPECT_EQ(parsed["bytes_to_client"], 2000);
  EXPECT_EQ(parsed["bytes_to_upstream"], 1100);
  EXPECT_EQ(parsed["bytes_from_upstream"], 1900);
  EXPECT_EQ(parsed["requests"], 7);
  EXPECT_EQ(parsed["http_status"], 503);
  ASSERT_TRUE(parsed["duration_ms"].is_number_float());
  EXPECT_NE(line.find("\"duration_ms\":1234.567,"), std::string::npos) << line;
  EXPECT_EQ(parsed["end"], "closed");
  EXPECT_EQ(parsed["truncated"], false);
}

// A connection refused before its handshake got anywhere: every fact it
// never had is null, not an empty string or a made-up value.
TEST(AccessLogFormat, FactsNeverLearnedAreNull) {
  AccessRecord record;
  record.client_ip = 0xc6120005;
  record.client_port = 50000;
  record.listener_port = 443;
  record.set_end(ConnectionEnd::overload);
  const json parsed = format(record);
  for (const char* key : {"sni", "host", "tls_version", "cipher", "alpn", "verify_reason",
                          "subject", "issuer", "serial", "fingerprint_sha256", "alert_sent",
                          "alert_received", "upstream", "http_status"}) {
    EXPECT_TRUE(parsed.at(key).is_null()) << key << ": " << parsed.at(key);
  }
  EXPECT_EQ(parsed["client"], "198.18.0.5");
  EXPECT_EQ(parsed["cert_presented"], false);
  EXPECT_EQ(parsed["verified"], false);
  EXPECT_EQ(parsed["bytes_from_client"], 0);
  EXPECT_EQ(parsed["requests"], 0);
  EXPECT_EQ(parsed["duration_ms"], 0.0);
  EXPECT_EQ(parsed["end"], "overload");
  EXPECT_EQ(parsed["time"], "1970-01-01T00:00:00.000Z");
}

TEST(AccessLogFormat, RefusedCertificateShowsReasonAndAlertNames) {
  AccessRecord record = full_record();
  record.verified = false;
  record.set_verify_reason(tls::VerifyReason::no_certificate);
  record.cert_presented = false;
  record.set_alert_sent(tls::TlsAlert::certificate_required);
  record.alert_received = gateway::kNoAlert;
  record.set_end(ConnectionEnd::handshake_failed);
  json parsed = format(record);
  EXPECT_EQ(parsed["verify_reason"], "no_certificate");
  EXPECT_EQ(parsed["alert_sent"], "certificate_required");
  EXPECT_TRUE(parsed["alert_received"].is_null());
  EXPECT_EQ(parsed["end"], "handshake_failed");

  record.set_verify_reason(tls::VerifyReason::unknown_ca);
  record.alert_sent = 48;
  record.alert_received = 112;
  parsed = format(record);
  EXPECT_EQ(parsed["verify_reason"], "unknown_ca");
  EXPECT_EQ(parsed["alert_sent"], "unknown_ca");
  EXPECT_EQ(parsed["alert_received"], "unrecognized_name");

  // Numbers no registry names, and enum values outside the enums, still
  // give valid, recognisable output.
  record.alert_received = 200;
  record.verify_reason = 99;
  record.end = 99;
  parsed = format(record);
  EXPECT_EQ(parsed["alert_received"], "alert_200");
  EXPECT_EQ(parsed["verify_reason"], "unknown");
  EXPECT_EQ(parsed["end"], "unknown");
}

TEST(AccessLogFormat, TimeKeepsMillisecondsAndFloorsBefore1970) {
  AccessRecord record;
  record.start_unix_us = 999;
  EXPECT_EQ(format(record)["time"], "1970-01-01T00:00:00.000Z");
  record.start_unix_us = 1'000;
  EXPECT_EQ(format(record)["time"], "1970-01-01T00:00:00.001Z");
  record.start_unix_us = -1;
  EXPECT_EQ(format(record)["time"], "1969-12-31T23:59:59.999Z");
}

TEST(AccessLogFormat, DurationHasAtMostThreeDecimals) {
  AccessRecord record;
  record.duration_us = 1;
  EXPECT_NE(format_access_record(record).find("\"duration_ms\":0.001,"), std::string::npos);
  record.duration_us = 2'000;
  EXPECT_NE(format_access_record(record).find("\"duration_ms\":2.0,"), std::string::npos);
  record.duration_us = 86'400'000'123;  // a day and a bit
  EXPECT_NE(format_access_record(record).find("\"duration_ms\":86400000.123,"), std::string::npos);
}

TEST(AccessLogFormat, CutTextIsMarkedTruncated) {
  AccessRecord record;
  const std::string long_dn = "CN=" + std::string(600, 'x');
  record.set_text(record.subject_dn, long_dn);
  const json parsed = format(record);
  EXPECT_EQ(parsed["subject"], long_dn.substr(0, sizeof record.subject_dn - 1));
  EXPECT_EQ(parsed["truncated"], true);
}

TEST(AccessLogFormat, InvalidUtf8BecomesReplacementCharacters) {
  AccessRecord record;
  record.set_text(record.sni, "a\xff" "b");
  const json parsed = format(record);
  EXPECT_EQ(parsed["sni"], "a\xef\xbf\xbd" "b");
}

class AccessLogWriterTest : public ::testing::Test {
 protected:
  TempDir dir_;
  std::string log_ = dir_.file("access.log");
};

TEST_F(AccessLogWriterTest, WritesOneLinePerRecordWorkerByWorker) {
  AccessLogQueue worker0(8);
  AccessLogQueue worker1(8);
  AccessLogWriter writer(log_, {&worker0, &worker1});
  ASSERT_TRUE(worker0.try_push(numbered(1)));
  ASSERT_TRUE(worker1.try_push(numbered(2)));
  ASSERT_TRUE(worker0.try_push(numbered(3)));
  EXPECT_EQ(writer.drain_now(), 3u);
  EXPECT_EQ(writer.written(), 3u);

  const std::vector<json> lines = read_json_lines(log_);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["requests"], 1);
  EXPECT_EQ(lines[1]["requests"], 3);
  EXPECT_EQ(lines[2]["requests"], 2);
}

TEST_F(AccessLogWriterTest, AppendsToAnExistingFileCreatedMode0640) {
  {
    std::ofstream(log_) << "{\"earlier\":true}\n";
  }
  AccessLogQueue queue(4);
  AccessLogWriter writer(log_, {&queue});
  ASSERT_TRUE(queue.try_push(numbered(5)));
  writer.drain_now();
  const std::vector<std::string> lines = read_lines(log_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "{\"earlier\":true}");
  EXPECT_EQ(json::parse(lines[1])["requests"], 5);

  const mode_t old_umask = umask(022);
  const std::string fresh = dir_.file("fresh.log");
  {
    AccessLogWriter creator(fresh, {});
  }
  umask(old_umask);
  struct stat st {};
  ASSERT_EQ(stat(fresh.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);
}

TEST_F(AccessLogWriterTest, UnopenablePathThrows) {
  EXPECT_THROW(AccessLogWriter(dir_.file("missing/access.log"), {}), std::system_error);
}

// logrotate's way: rename the file, then ask for a reopen. What was pushed
// before the reopen ends in the renamed file, what comes after in a new one.
TEST_F(AccessLogWriterTest, ReopenAfterRenameStartsANewFile) {
  AccessLogQueue queue(8);
  AccessLogWriter writer(log_, {&queue});
  ASSERT_TRUE(queue.try_push(numbered(1)));
  writer.drain_now();
  const std::string rotated = dir_.file("access.log.1");
  ASSERT_EQ(std::rename(log_.c_str(), rotated.c_str()), 0);
  ASSERT_TRUE(queue.try_push(numbered(2)));  // pushed before the reopen
  ASSERT_TRUE(writer.reopen());
  ASSERT_TRUE(queue.try_push(numbered(3)));
  writer.drain_now();

  const std::vector<json> old_lines = read_json_lines(rotated);
  ASSERT_EQ(old_lines.size(), 2u);
  EXPECT_EQ(old_lines[0]["requests"], 1);
  EXPECT_EQ(old_lines[1]["requests"], 2);
  const std::vector<json> new_lines = read_json_lines(log_);
  ASSERT_EQ(new_lines.size(), 1u);
  EXPECT_EQ(new_lines[0]["requests"], 3);
}

// The signal-handler path: the flag alone, acted on by the next drain just
// as reopen() would be.
TEST_F(AccessLogWriterTest, RequestedReopenHappensAtTheNextDrain) {
  AccessLogQueue queue(8);
  AccessLogWriter writer(log_, {&queue});
  ASSERT_TRUE(queue.try_push(numbered(1)));
  writer.drain_now();
  const std::string rotated = dir_.file("access.log.1");
  ASSERT_EQ(std::rename(log_.c_str(), rotated.c_str()), 0);
  writer.request_reopen();
  ASSERT_TRUE(queue.try_push(numbered(2)));
  writer.drain_now();
  ASSERT_TRUE(queue.try_push(numbered(3)));
  writer.drain_now();

  const std::vector<json> old_lines = read_json_lines(rotated);
  ASSERT_EQ(old_lines.size(), 2u);
  EXPECT_EQ(old_lines[1]["requests"], 2);
  const std::vector<json> new_lines = read_json_lines(log_);
  ASSERT_EQ(new_lines.size(), 1u);
  EXPECT_EQ(new_lines[0]["requests"], 3);
}

TEST_F(AccessLogWriterTest, FailedReopenKeepsWritingToTheOldFile) {
  const std::string subdir = dir_.file("gone");
  ASSERT_EQ(mkdir(subdir.c_str(), 0700), 0);
  const std::string path = subdir + "/access.log";
  AccessLogQueue queue(4);
  AccessLogWriter writer(path, {&queue});
  const std::string moved = dir_.file("moved.log");
  ASSERT_EQ(std::rename(path.c_str(), moved.c_str()), 0);
  ASSERT_EQ(rmdir(subdir.c_str()), 0);
  EXPECT_FALSE(writer.reopen());
  EXPECT_EQ(writer.reopen_failures(), 1u);
  ASSERT_TRUE(queue.try_push(numbered(9)));
  writer.drain_now();
  const std::vector<json> lines = read_json_lines(moved);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["requests"], 9);
}

// /dev/full fails every write with ENOSPC: the lines are counted as lost,
// none as written, and the writer carries on.
TEST_F(AccessLogWriterTest, FailedWritesAreCounted) {
  AccessLogQueue queue(4);
  AccessLogWriter writer("/dev/full", {&queue});
  ASSERT_TRUE(queue.try_push(numbered(1)));
  ASSERT_TRUE(queue.try_push(numbered(2)));
  EXPECT_EQ(writer.drain_now(), 2u);
  EXPECT_EQ(writer.write_errors(), 2u);
  EXPECT_EQ(writer.written(), 0u);
  ASSERT_TRUE(queue.try_push(numbered(3)));
  writer.drain_now();
  EXPECT_EQ(writer.write_errors(), 3u);
}

TEST_F(AccessLogWriterTest, DroppedSumsEveryQueue) {
  AccessLogQueue worker0(2);
  AccessLogQueue worker1(2);
  AccessLogWriter writer(log_, {&worker0, &worker1});
  for (uint32_t n = 0; n < 5; ++n) worker0.try_push(numbered(n));
  for (uint32_t n = 0; n < 3; ++n) worker1.try_push(numbered(n));
  EXPECT_EQ(writer.dropped(), 4u);
  writer.drain_now();
  EXPECT_EQ(writer.written(), 4u);
}

// The thread at work: a producer pushes while it drains; stop() must leave
// every record in the file exactly once and in order. The producer retries
// when its queue is full, so none may be missing whatever the scheduling.
TEST_F(AccessLogWriterTest, ThreadWritesEverythingByStop) {
  constexpr uint32_t kRecords = 5'000;
  AccessLogQueue queue(256);
  AccessLogWriter writer(log_, {&queue});
  writer.start();
  for (uint32_t n = 0; n < kRecords; ++n) {
    while (!queue.try_push(numbered(n))) std::this_thread::yield();
  }
  writer.stop();
  EXPECT_EQ(writer.written(), kRecords);

  const std::vector<json> lines = read_json_lines(log_);
  ASSERT_EQ(lines.size(), kRecords);
  uint32_t out_of_place = 0;
  for (uint32_t n = 0; n < kRecords; ++n) {
    if (lines[n]["requests"] != n) ++out_of_place;
  }
  EXPECT_EQ(out_of_place, 0u);
  writer.stop();  // a second stop is harmless
  EXPECT_EQ(read_lines(log_).size(), kRecords);
}

// A reopen requested while the thread runs: however the drains fall, the
// old and the new file together hold every record once, in order.
TEST_F(AccessLogWriterTest, RotationUnderTheThreadLosesNothing) {
  constexpr uint32_t kRecords = 2'000;
  AccessLogQueue queue(256);
  AccessLogWriter writer(log_, {&queue});
  writer.start();
  const std::string rotated = dir_.file("access.log.1");
  for (uint32_t n = 0; n < kRecords; ++n) {
    if (n == kRecords / 2) {
      ASSERT_EQ(std::rename(log_.c_str(), rotated.c_str()), 0);
      writer.request_reopen();
    }
    while (!queue.try_push(numbered(n))) std::this_thread::yield();
  }
  writer.stop();

  std::vector<json> lines = read_json_lines(rotated);
  const std::vector<json> after = read_json_lines(log_);
  EXPECT_GE(lines.size(), kRecords / 2);
  lines.insert(lines.end(), after.begin(), after.end());
  ASSERT_EQ(lines.size(), kRecords);
  uint32_t out_of_place = 0;
  for (uint32_t n = 0; n < kRecords; ++n) {
    if (lines[n]["requests"] != n) ++out_of_place;
  }
  EXPECT_EQ(out_of_place, 0u);
}

}  // namespace
}  // namespace mtlsgw::control
