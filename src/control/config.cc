#include "control/config.h"

#include "dataplane/tls/revocation_set.h"

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <tuple>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace mtlsgw::control {
namespace {

using nlohmann::json;

// Each worker reserves buffer_pool x buffer_size bytes at start, in one
// allocation (TcpStack). Past this a pool is a typo, or a per-worker size
// taken for a gateway-wide one (docs/config.md), and the allocation would
// likely fail at start: refuse it while the file is checked.
constexpr uint64_t kMaxBufferPoolBytes = uint64_t{4} << 30;

std::string type_name(const json& value) { return value.type_name(); }

std::string byte_size_text(uint64_t bytes) {
  if (bytes % (uint64_t{1} << 30) == 0) return fmt::format("{} GiB", bytes >> 30);
  if (bytes % (uint64_t{1} << 20) == 0) return fmt::format("{} MiB", bytes >> 20);
  if (bytes % (uint64_t{1} << 10) == 0) return fmt::format("{} KiB", bytes >> 10);
  return fmt::format("{} bytes", bytes);
}

void check_fields(const json& object, const std::string& path,
                  std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : object.items()) {
    bool found = false;
    for (auto k : known) found = found || k == key;
    if (!found) {
      std::string names;
      for (auto k : known) names += fmt::format("{}{}", names.empty() ? "" : ", ", k);
      throw ConfigError(path.empty() ? key : path + "." + key,
                        fmt::format("unknown field (known here: {})", names));
    }
  }
}

const json& require(const json& object, const std::string& path, const char* key) {
  auto it = object.find(key);
  if (it == object.end()) throw ConfigError(path.empty() ? std::string(key) : path + "." + key, "is required");
  return *it;
}

uint64_t as_uint(const json& value, const std::string& path, uint64_t min, uint64_t max) {
  if (!value.is_number_integer()) {
    throw ConfigError(path, fmt::format("expected an integer, got {}", type_name(value)));
  }
  const bool negative = !value.is_number_unsigned() && value.get<int64_t>() < 0;
  const uint64_t v = negative ? 0 : value.get<uint64_t>();
  if (negative || v < min || v > max) {
    throw ConfigError(path, fmt::format("{} is out of range [{}, {}]", value.dump(), min, max));
  }
  return v;
}

std::string as_string(const json& value, const std::string& path) {
  if (!value.is_string()) {
    throw ConfigError(path, fmt::format("expected a string, got {}", type_name(value)));
  }
  return value.get<std::string>();
}

PortConfig parse_port(const json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path,
               {"port_id", "address", "gateway", "mtu", "rx_descriptors", "tx_descriptors"});
  PortConfig port;
  port.port_id =
      static_cast<uint16_t>(as_uint(require(value, path, "port_id"), path + ".port_id", 0, 1023));

  const std::string address_path = path + ".address";
  const std::string address_text = as_string(require(value, path, "address"), address_path);
  auto prefix = net::parse_ipv4_prefix(address_text);
  if (!prefix) {
    throw ConfigError(address_path,
                      fmt::format("expected an IPv4 address with prefix length like "
                                  "\"198.18.0.2/24\", got \"{}\"",
                                  address_text));
  }
  if (prefix->length == 0 || prefix->length > 30) {
    throw ConfigError(address_path,
                      fmt::format("prefix length /{} leaves no room for a neighbour (use /1 to /30)",
                                  prefix->length));
  }
  if (prefix->address == (prefix->address & prefix->mask()) ||
      prefix->address == prefix->directed_broadcast()) {
    throw ConfigError(address_path, fmt::format("{} is the network or broadcast address of {}",
                                                net::format_ipv4(prefix->address), address_text));
  }
  if (net::is_martian_source(prefix->address)) {
    throw ConfigError(address_path, fmt::format("{} cannot be a host address",
                                                net::format_ipv4(prefix->address)));
  }
  port.address = *prefix;

  if (auto it = value.find("gateway"); it != value.end()) {
    const std::string gateway_path = path + ".gateway";
    const std::string text = as_string(*it, gateway_path);
    auto gateway = net::parse_ipv4(text);
    if (!gateway) {
      throw ConfigError(gateway_path,
                        fmt::format("expected an IPv4 address like \"198.18.0.1\", got \"{}\"", text));
    }
    if (!port.address.contains(*gateway) || *gateway == port.address.directed_broadcast() ||
        *gateway == (port.address.address & port.address.mask())) {
      throw ConfigError(gateway_path,
                        fmt::format("{} is not a host on {}", text, address_text));
    }
    if (*gateway == port.address.address) {
      throw ConfigError(gateway_path, "is the port's own address");
    }
    port.gateway = *gateway;
  }
  if (auto it = value.find("mtu"); it != value.end()) {
    // RFC 791: every host must accept 68. Above 1500 a frame no longer fits
    // one mbuf and the stack parses single-segment frames only, so jumbo
    // frames wait for multi-segment support.
    port.mtu = static_cast<uint16_t>(as_uint(*it, path + ".mtu", 68, 1500));
  }
  if (auto it = value.find("rx_descriptors"); it != value.end()) {
    port.rx_descriptors = static_cast<uint16_t>(as_uint(*it, path + ".rx_descriptors", 64, 16384));
  }
  if (auto it = value.find("tx_descriptors"); it != value.end()) {
    port.tx_descriptors = static_cast<uint16_t>(as_uint(*it, path + ".tx_descriptors", 64, 16384));
  }
  return port;
}

std::pair<net::Ipv4Address, uint16_t> parse_endpoint(const json& value, const std::string& path) {
  const std::string text = as_string(value, path);
  const auto colon = text.rfind(':');
  std::optional<net::Ipv4Address> address;
  unsigned port = 0;
  if (colon != std::string::npos) {
    address = net::parse_ipv4(std::string_view(text).substr(0, colon));
    const char* begin = text.data() + colon + 1;
    const char* end = text.data() + text.size();
    auto [next, ec] = std::from_chars(begin, end, port);
    if (ec != std::errc{} || next != end || begin == end) port = 0;
  }
  if (!address || port == 0 || port > 65535) {
    throw ConfigError(path, fmt::format("expected \"A.B.C.D:PORT\" like \"198.18.0.1:9000\", got \"{}\"", text));
  }
  return {*address, static_cast<uint16_t>(port)};
}

ListenerConfig parse_listener(const json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"port", "service", "upstream"});
  ListenerConfig listener;
  listener.port = static_cast<uint16_t>(as_uint(require(value, path, "port"), path + ".port", 1, 65535));
  listener.service = as_string(require(value, path, "service"), path + ".service");
  static constexpr std::string_view kServices[] = {"echo", "discard", "chargen", "relay", "tls"};
  if (std::find(std::begin(kServices), std::end(kServices), listener.service) == std::end(kServices)) {
    throw ConfigError(path + ".service",
                      fmt::format("unknown service \"{}\" (echo, discard, chargen, relay, tls)", listener.service));
  }
  const auto upstream = value.find("upstream");
  if (listener.service == "relay") {
    if (upstream == value.end()) throw ConfigError(path + ".upstream", "is required for a relay");
    std::tie(listener.upstream_ip, listener.upstream_port) = parse_endpoint(*upstream, path + ".upstream");
  } else if (upstream != value.end()) {
    throw ConfigError(path + ".upstream", fmt::format("only a relay has an upstream, not {}", listener.service));
  }
  return listener;
}

TcpSettings parse_tcp(const json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"max_connections", "max_half_open", "syn_cookies", "buffer_size",
                             "buffer_pool", "congestion", "time_wait_ms", "max_time_wait",
                             "keepalive_idle_s"});
  TcpSettings tcp;
  if (auto it = value.find("max_connections"); it != value.end()) {
    tcp.max_connections = static_cast<uint32_t>(as_uint(*it, path + ".max_connections", 2, 1u << 20));
  }
  if (auto it = value.find("max_half_open"); it != value.end()) {
    tcp.max_half_open = static_cast<uint32_t>(as_uint(*it, path + ".max_half_open", 0, 1u << 20));
  }
  if (auto it = value.find("syn_cookies"); it != value.end()) {
    if (!it->is_boolean()) throw ConfigError(path + ".syn_cookies", fmt::format("expected true or false, got {}", type_name(*it)));
    tcp.syn_cookies = it->get<bool>();
  }
  if (auto it = value.find("buffer_size"); it != value.end()) {
    tcp.buffer_size = static_cast<uint32_t>(as_uint(*it, path + ".buffer_size", 4096, 1u << 24));
    if ((tcp.buffer_size & (tcp.buffer_size - 1)) != 0) {
      throw ConfigError(path + ".buffer_size", fmt::format("{} is not a power of two", tcp.buffer_size));
    }
  }
  if (auto it = value.find("buffer_pool"); it != value.end()) {
    tcp.buffer_pool = static_cast<uint32_t>(as_uint(*it, path + ".buffer_pool", 2, 1u << 20));
  }
  if (auto it = value.find("congestion"); it != value.end()) {
    tcp.congestion = as_string(*it, path + ".congestion");
    if (tcp.congestion != "cubic" && tcp.congestion != "newreno") {
      throw ConfigError(path + ".congestion", fmt::format("\"{}\" is not cubic or newreno", tcp.congestion));
    }
  }
  if (auto it = value.find("time_wait_ms"); it != value.end()) {
    tcp.time_wait_ms = static_cast<uint32_t>(as_uint(*it, path + ".time_wait_ms", 0, 240'000));
  }
  if (auto it = value.find("max_time_wait"); it != value.end()) {
    tcp.max_time_wait = static_cast<uint32_t>(as_uint(*it, path + ".max_time_wait", 0, 1'048'576));
  }
  if (auto it = value.find("keepalive_idle_s"); it != value.end()) {
    tcp.keepalive_idle_s = static_cast<uint32_t>(as_uint(*it, path + ".keepalive_idle_s", 0, 86'400));
  }
  // Two 32-bit factors: the product cannot overflow 64 bits.
  const uint64_t pool_bytes = uint64_t{tcp.buffer_pool} * tcp.buffer_size;
  if (pool_bytes > kMaxBufferPoolBytes) {
    // Name the field the file sets (buffer_pool when it sets both): the
    // other one may be a default the user never wrote.
    const char* field = value.contains("buffer_pool") ? "buffer_pool" : "buffer_size";
    throw ConfigError(path + "." + field,
                      fmt::format("{} buffers of {} are {} per worker, more than the {} a worker "
                                  "may reserve (buffer_pool x buffer_size)",
                                  tcp.buffer_pool, byte_size_text(tcp.buffer_size),
                                  byte_size_text(pool_bytes), byte_size_text(kMaxBufferPoolBytes)));
  }
  return tcp;
}

// ---- Files named by the configuration -------------------------------------

// A certificate, key or CRL file is PEM text of a few kilobytes; a CRL of a
// large CA may reach megabytes. Past this the path names the wrong file.
constexpr long long kMaxPemFileBytes = 64ll << 20;

// Relative names resolve against the config file's directory, so that a
// file and its certificates move together whatever the current directory.
std::string resolve_file_name(const json& value, const std::string& path,
                              const std::string& base_dir) {
  const std::string name = as_string(value, path);
  if (name.empty()) throw ConfigError(path, "is empty");
  if (name.find('\0') != std::string::npos) throw ConfigError(path, "contains a NUL character");
  std::filesystem::path file(name);
  if (file.is_relative() && !base_dir.empty()) file = std::filesystem::path(base_dir) / file;
  return std::filesystem::absolute(file).lexically_normal().string();
}

struct FileContent {
  std::string text;
  mode_t mode = 0;
};

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

FileContent read_named_file(const std::string& file, const std::string& path) {
  // stat before open: opening a FIFO named by mistake would block the check.
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    throw ConfigError(path, fmt::format("cannot read {}: {}", file, std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) throw ConfigError(path, fmt::format("{} is not a regular file", file));
  if (st.st_size > kMaxPemFileBytes) {
    throw ConfigError(path, fmt::format("{} has {} bytes, more than the {} a PEM file may have",
                                        file, st.st_size, byte_size_text(kMaxPemFileBytes)));
  }
  std::unique_ptr<std::FILE, FileCloser> in(std::fopen(file.c_str(), "rb"));
  if (!in) throw ConfigError(path, fmt::format("cannot read {}: {}", file, std::strerror(errno)));
  FileContent content;
  content.mode = st.st_mode;
  content.text.resize(static_cast<size_t>(st.st_size));
  if (std::fread(content.text.data(), 1, content.text.size(), in.get()) != content.text.size()) {
    throw ConfigError(path, fmt::format("cannot read {}: {}", file, std::strerror(errno)));
  }
  return content;
}

// ---- PEM framing (RFC 7468) -----------------------------------------------
// Only the framing is checked: BEGIN and END lines that pair up, and a body
// of base64 characters. The DER inside is parsed by the TLS engine, which
// loads these files with OpenSSL; what is caught here is the wrong file, a
// DER file, a truncated copy and an encrypted key.

struct PemBlock {
  std::string label;
  size_t line = 0;         // of the BEGIN line, from 1
  bool encrypted = false;  // RFC 1421 "Proc-Type: 4,ENCRYPTED" header (legacy OpenSSL keys)
};

bool is_base64_line(std::string_view line) {
  return std::all_of(line.begin(), line.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/' || c == '=' || c == ' ' || c == '\t';
  });
}

std::vector<PemBlock> scan_pem(const std::string& text, const std::string& file,
                               const std::string& path) {
  std::vector<PemBlock> blocks;
  std::optional<PemBlock> open;
  bool body_started = false;
  size_t line_number = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    const bool dashes = line.size() >= 10 && line.starts_with("-----") && line.ends_with("-----");
    if (!open) {
      // RFC 7468 section 2: text outside the blocks is allowed (openssl x509
      // -text output, for example) and ignored.
      if (dashes && line.starts_with("-----BEGIN ")) {
        open = PemBlock{std::string(line.substr(11, line.size() - 16)), line_number, false};
        body_started = false;
      }
      continue;
    }
    if (dashes) {
      if (line != fmt::format("-----END {}-----", open->label)) {
        throw ConfigError(path, fmt::format("{} line {}: the {} block begun on line {} ends with "
                                            "\"{}\"",
                                            file, line_number, open->label, open->line, line));
      }
      if (!body_started) {
        throw ConfigError(path, fmt::format("{} line {}: the {} block is empty", file, open->line,
                                            open->label));
      }
      blocks.push_back(*open);
      open.reset();
      continue;
    }
    if (!body_started && line.find(':') != std::string_view::npos) {
      // RFC 1421 encapsulated headers, which only legacy encrypted keys use.
      if (line.starts_with("Proc-Type:") && line.find("ENCRYPTED") != std::string_view::npos) {
        open->encrypted = true;
      }
      continue;
    }
    if (!is_base64_line(line)) {
      throw ConfigError(path, fmt::format("{} line {}: the {} block begun on line {} holds "
                                          "something other than base64",
                                          file, line_number, open->label, open->line));
    }
    body_started = body_started || !line.empty();
  }
  if (open) {
    throw ConfigError(path, fmt::format("{}: the {} block begun on line {} has no END line "
                                        "(a truncated file?)",
                                        file, open->label, open->line));
  }
  return blocks;
}

uint32_t count_label(const std::vector<PemBlock>& blocks, std::string_view label) {
  return static_cast<uint32_t>(std::count_if(
      blocks.begin(), blocks.end(), [&](const PemBlock& b) { return b.label == label; }));
}

bool is_private_key_label(std::string_view label) {
  // PKCS#8 (RFC 7468 section 10) and the legacy OpenSSL PKCS#1 and SEC 1
  // forms that openssl genrsa and openssl ecparam -genkey still write.
  return label == "PRIVATE KEY" || label == "RSA PRIVATE KEY" || label == "EC PRIVATE KEY" ||
         label == "ENCRYPTED PRIVATE KEY";
}

// Counts the CERTIFICATE blocks of a CA or host file and refuses a file
// without any; blocks_out, when given, receives every block for more checks.
// `source` names the text in messages: a file name, or "the text" for PEM
// given inline (cert_pem and friends).
uint32_t check_certificate_text(const std::string& text, const std::string& source,
                                const std::string& path, std::vector<PemBlock>* blocks_out = nullptr) {
  std::vector<PemBlock> blocks = scan_pem(text, source, path);
  const uint32_t count = count_label(blocks, "CERTIFICATE");
  if (count == 0) {
    throw ConfigError(path, fmt::format("{} holds no \"-----BEGIN CERTIFICATE-----\" block (PEM "
                                        "is required: openssl x509 -inform der converts DER)",
                                        source));
  }
  if (blocks_out) *blocks_out = std::move(blocks);
  return count;
}

uint32_t check_crl_text(const std::string& text, const std::string& source, const std::string& path) {
  const auto blocks = scan_pem(text, source, path);
  const uint32_t count = count_label(blocks, "X509 CRL");
  if (count == 0) {
    throw ConfigError(path, fmt::format("{} holds no \"-----BEGIN X509 CRL-----\" block (PEM is "
                                        "required: openssl crl -inform der converts DER)",
                                        source));
  }
  return count;
}

void check_key_text(const std::string& text, const std::string& file, const std::string& path) {
  const auto blocks = scan_pem(text, file, path);
  std::vector<const PemBlock*> keys;
  for (const PemBlock& b : blocks) {
    if (is_private_key_label(b.label)) keys.push_back(&b);
  }
  if (keys.empty()) {
    throw ConfigError(path, fmt::format("{} holds no private key (a PRIVATE KEY, RSA PRIVATE KEY "
                                        "or EC PRIVATE KEY block)",
                                        file));
  }
  if (keys.size() > 1) {
    throw ConfigError(path, fmt::format("{} holds {} private keys (blocks on lines {} and {}); it "
                                        "must hold one",
                                        file, keys.size(), keys[0]->line, keys[1]->line));
  }
  if (keys[0]->encrypted || keys[0]->label == "ENCRYPTED PRIVATE KEY") {
    throw ConfigError(path, fmt::format("{} holds an encrypted key, and the gateway has no "
                                        "passphrase (openssl pkey -in KEY -out PLAIN decrypts it)",
                                        file));
  }
}

// A PEM item of a CA or host: a file named by `file_key` (read now) or the
// text itself under `text_key`, exactly one of them. The text is kept: the
// gateway loads what was checked, and the control socket's state and
// `config dump` carry it inline. Returns the text; *file_out gets the file's
// absolute name, or stays empty for inline text.
struct PemItem {
  std::string text;
  std::string file;  // empty: given inline
  mode_t mode = 0;
  std::string source() const { return file.empty() ? std::string("the text") : file; }
};

std::optional<PemItem> read_pem_item(const json& object, const std::string& path,
                                     const std::string& base_dir, const char* file_key,
                                     const char* text_key, bool required) {
  auto file_it = object.find(file_key);
  auto text_it = object.find(text_key);
  if (file_it != object.end() && text_it != object.end()) {
    throw ConfigError(path + "." + text_key,
                      fmt::format("give either {} (a file) or {} (its text), not both", file_key, text_key));
  }
  PemItem item;
  if (file_it != object.end()) {
    const std::string item_path = path + "." + file_key;
    item.file = resolve_file_name(*file_it, item_path, base_dir);
    FileContent content = read_named_file(item.file, item_path);
    item.text = std::move(content.text);
    item.mode = content.mode;
    return item;
  }
  if (text_it != object.end()) {
    const std::string item_path = path + "." + text_key;
    item.text = as_string(*text_it, item_path);
    if (item.text.size() > static_cast<size_t>(kMaxPemFileBytes)) {
      throw ConfigError(item_path, fmt::format("has {} bytes, more than the {} a PEM item may have",
                                               item.text.size(), byte_size_text(kMaxPemFileBytes)));
    }
    return item;
  }
  if (required) {
    throw ConfigError(path + "." + file_key, fmt::format("is required (or \"{}\" with the PEM text)", text_key));
  }
  return std::nullopt;
}

// ---- Names ------------------------------------------------------------------

std::string lower_case(std::string text) {
  for (char& c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return text;
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += fmt::format("{}\"{}\"", out.empty() ? "" : ", ", n);
  return out;
}

std::string parse_ca_name(const json& value, const std::string& path) {
  const std::string name = as_string(value, path);
  if (name.empty()) throw ConfigError(path, "is empty");
  // Names end up in counters, logs and control commands: keep them to
  // characters none of those need to quote.
  if (name.size() > 64) {
    throw ConfigError(path, fmt::format("\"{}\" is {} characters long, more than 64", name,
                                        name.size()));
  }
  for (char c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) {
      throw ConfigError(path, fmt::format("\"{}\" has a character outside A-Z a-z 0-9 _ . -", name));
    }
  }
  return name;
}

// An SNI name (RFC 6066 section 3: a DNS host name, ASCII, no trailing dot,
// no IP literal) in RFC 1123 section 2.1 syntax, or a wildcard whose "*" is
// the whole left-most label (RFC 6125 section 6.4.3). Returned in lower case:
// DNS names compare case-insensitively (RFC 4343).
std::string parse_host_name(const json& value, const std::string& path) {
  const std::string given = as_string(value, path);
  if (given.empty()) throw ConfigError(path, "is empty");
  for (char c : given) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      throw ConfigError(path, fmt::format("\"{}\" is not ASCII: give an internationalized name in "
                                          "its A-label form (xn--..., RFC 5890)",
                                          given));
    }
  }
  const std::string name = lower_case(given);
  if (name.back() == '.') {
    throw ConfigError(path, fmt::format("\"{}\" ends with a dot, which an SNI name never has "
                                        "(RFC 6066 section 3)",
                                        given));
  }
  if (name.size() > 253) {
    throw ConfigError(path, fmt::format("is {} characters long, more than a DNS name's 253",
                                        name.size()));
  }
  const bool wildcard = name.starts_with("*.");
  const std::string_view exact = std::string_view(name).substr(wildcard ? 2 : 0);
  if (exact.find('*') != std::string_view::npos) {
    throw ConfigError(path, fmt::format("\"{}\": a wildcard must be the whole left-most label, as "
                                        "in \"*.example.test\" (RFC 6125 section 6.4.3)",
                                        given));
  }
  std::vector<std::string_view> labels;
  for (size_t pos = 0;;) {
    const size_t dot = exact.find('.', pos);
    labels.push_back(exact.substr(pos, dot == std::string_view::npos ? exact.npos : dot - pos));
    if (dot == std::string_view::npos) break;
    pos = dot + 1;
  }
  for (std::string_view label : labels) {
    if (label.empty()) throw ConfigError(path, fmt::format("\"{}\" has an empty label", given));
    if (label.size() > 63) {
      throw ConfigError(path, fmt::format("\"{}\": the label \"{}\" is longer than 63 characters",
                                          given, label));
    }
    for (char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
        throw ConfigError(path, fmt::format("\"{}\" has '{}', which is not a letter, digit or "
                                            "hyphen (RFC 1123 section 2.1)",
                                            given, c));
      }
    }
    if (label.front() == '-' || label.back() == '-') {
      throw ConfigError(path, fmt::format("\"{}\": the label \"{}\" begins or ends with a hyphen",
                                          given, label));
    }
  }
  // RFC 1123 section 2.1: the top-level label is alphabetic, which is what
  // keeps a host name apart from a dotted-decimal address.
  const std::string_view top = labels.back();
  if (std::all_of(top.begin(), top.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    throw ConfigError(path, fmt::format("\"{}\" is an IP address or ends in a numeric label; SNI "
                                        "carries host names only (RFC 6066 section 3)",
                                        given));
  }
  if (wildcard && labels.size() < 2) {
    throw ConfigError(path, fmt::format("\"{}\": a wildcard needs at least two labels after "
                                        "\"*.\" (\"*.example.test\", not \"*.test\")",
                                        given));
  }
  return name;
}

// ---- cas, hosts, default_host, access_log ---------------------------------

CaConfig parse_ca(const json& value, const std::string& path, const std::string& base_dir,
                  std::vector<std::string>& warnings) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"name", "cert", "cert_pem", "crl", "crl_pem", "max_depth"});
  CaConfig ca;
  ca.name = parse_ca_name(require(value, path, "name"), path + ".name");
  PemItem cert = *read_pem_item(value, path, base_dir, "cert", "cert_pem", true);
  const std::string cert_path = path + (cert.file.empty() ? ".cert_pem" : ".cert");
  std::vector<PemBlock> blocks;
  ca.certificate_count = check_certificate_text(cert.text, cert.source(), cert_path, &blocks);
  for (const PemBlock& b : blocks) {
    if (is_private_key_label(b.label)) {
      // Not an error: the gateway never reads it. But a CA's key belongs
      // offline, and a gateway's disk is not that place.
      warnings.push_back(fmt::format("{}: {} also holds a private key (line {}), which the gateway "
                                     "does not need",
                                     cert_path, cert.source(), b.line));
      break;
    }
  }
  ca.cert_path = cert.file;
  ca.cert_pem = std::move(cert.text);
  if (auto crl = read_pem_item(value, path, base_dir, "crl", "crl_pem", false)) {
    ca.crl_count = check_crl_text(crl->text, crl->source(), path + (crl->file.empty() ? ".crl_pem" : ".crl"));
    ca.crl_path = crl->file;
    ca.crl_pem = std::move(crl->text);
  }
  if (auto it = value.find("max_depth"); it != value.end()) {
    ca.max_depth = static_cast<uint32_t>(as_uint(*it, path + ".max_depth", 1, 16));
  }
  return ca;
}

template <typename Enum, size_t N>
Enum parse_choice(const json& value, const std::string& path,
                  const std::pair<std::string_view, Enum> (&choices)[N]) {
  const std::string text = as_string(value, path);
  std::string names;
  for (const auto& [name, choice] : choices) {
    if (name == text) return choice;
    names += fmt::format("{}{}", names.empty() ? "" : ", ", name);
  }
  throw ConfigError(path, fmt::format("\"{}\" is not one of {}", text, names));
}

constexpr std::pair<std::string_view, MtlsMode> kMtlsModes[] = {
    {"off", MtlsMode::off}, {"optional", MtlsMode::optional}, {"required", MtlsMode::required}};
constexpr std::pair<std::string_view, ForwardMode> kForwardModes[] = {
    {"tcp", ForwardMode::tcp}, {"proxy_v2", ForwardMode::proxy_v2}, {"http", ForwardMode::http}};
constexpr std::pair<std::string_view, TlsVersion> kTlsVersions[] = {{"1.2", TlsVersion::tls1_2},
                                                                    {"1.3", TlsVersion::tls1_3}};

bool parse_bool(const json& value, const std::string& path) {
  if (!value.is_boolean()) {
    throw ConfigError(path, fmt::format("expected true or false, got {}", type_name(value)));
  }
  return value.get<bool>();
}

// RFC 7301 section 3.1: a protocol name is 1 to 255 octets. Registered names
// are printable ASCII; anything else here is more likely a typo than a
// private protocol.
std::vector<std::string> parse_alpn(const json& value, const std::string& path,
                                    ForwardMode forward) {
  if (!value.is_array()) {
    throw ConfigError(path, fmt::format("expected an array, got {}", type_name(value)));
  }
  if (value.size() > 16) {
    throw ConfigError(path, fmt::format("has {} protocols, more than 16", value.size()));
  }
  std::vector<std::string> alpn;
  for (size_t j = 0; j < value.size(); ++j) {
    const std::string item_path = fmt::format("{}[{}]", path, j);
    std::string id = as_string(value[j], item_path);
    if (id.empty() || id.size() > 255) {
      throw ConfigError(item_path, fmt::format("a protocol name has 1 to 255 bytes, \"{}\" has {}",
                                               id.size() > 255 ? id.substr(0, 16) + "..." : id,
                                               id.size()));
    }
    for (char c : id) {
      if (c < 0x21 || c > 0x7e) {
        throw ConfigError(item_path,
                          fmt::format("\"{}\" has a character outside printable ASCII", id));
      }
    }
    if (std::find(alpn.begin(), alpn.end(), id) != alpn.end()) {
      throw ConfigError(item_path, fmt::format("\"{}\" is listed twice", id));
    }
    if (forward == ForwardMode::http && id != "http/1.1") {
      // The http forwarder parses HTTP/1.1 requests; HTTP/2 (gRPC) passes
      // through only as bytes, in tcp and proxy_v2.
      throw ConfigError(item_path, fmt::format("forward http speaks HTTP/1.1 only, not \"{}\" "
                                               "(h2 passes through with forward tcp or proxy_v2)",
                                               id));
    }
    alpn.push_back(std::move(id));
  }
  return alpn;
}

HostConfig parse_host(const json& value, const std::string& path, const std::string& base_dir,
                      const std::vector<CaConfig>& cas, std::vector<std::string>& warnings) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path,
               {"name", "cert", "cert_pem", "key", "key_pem", "mtls", "client_cas", "upstream",
                "forward", "alpn", "min_version", "early_data", "handshake_timeout_ms",
                "idle_timeout_ms", "connect_timeout_ms"});
  HostConfig host;
  host.name = parse_host_name(require(value, path, "name"), path + ".name");
  PemItem cert = *read_pem_item(value, path, base_dir, "cert", "cert_pem", true);
  check_certificate_text(cert.text, cert.source(), path + (cert.file.empty() ? ".cert_pem" : ".cert"));
  host.cert_path = cert.file;
  host.cert_pem = std::move(cert.text);
  PemItem key = *read_pem_item(value, path, base_dir, "key", "key_pem", true);
  const std::string key_path = path + (key.file.empty() ? ".key_pem" : ".key");
  check_key_text(key.text, key.source(), key_path);
  if (key.mode & S_IROTH) {
    warnings.push_back(fmt::format("{}: {} is readable by every user of this machine (mode {:04o})",
                                   key_path, key.file, key.mode & 07777));
  }
  host.key_path = key.file;
  host.key_pem = std::move(key.text);

  if (auto it = value.find("mtls"); it != value.end()) {
    host.mtls = parse_choice(*it, path + ".mtls", kMtlsModes);
  }
  const std::string cas_path = path + ".client_cas";
  if (auto it = value.find("client_cas"); it != value.end()) {
    if (!it->is_array()) {
      throw ConfigError(cas_path, fmt::format("expected an array, got {}", type_name(*it)));
    }
    std::vector<std::string> known;
    for (const CaConfig& ca : cas) known.push_back(ca.name);
    for (size_t j = 0; j < it->size(); ++j) {
      const std::string item_path = fmt::format("{}[{}]", cas_path, j);
      std::string name = as_string((*it)[j], item_path);
      if (std::find(known.begin(), known.end(), name) == known.end()) {
        throw ConfigError(item_path,
                          known.empty()
                              ? fmt::format("no CA named \"{}\": cas is empty", name)
                              : fmt::format("no CA named \"{}\" in cas ({})", name, quoted_list(known)));
      }
      if (std::find(host.client_cas.begin(), host.client_cas.end(), name) != host.client_cas.end()) {
        throw ConfigError(item_path, fmt::format("\"{}\" is listed twice", name));
      }
      host.client_cas.push_back(std::move(name));
    }
  }
  if (host.mtls != MtlsMode::off && host.client_cas.empty()) {
    throw ConfigError(cas_path, fmt::format("needs at least one CA when mtls is {}: the CAs a "
                                            "client certificate must chain to",
                                            to_string(host.mtls)));
  }
  if (host.mtls == MtlsMode::off && !host.client_cas.empty()) {
    warnings.push_back(fmt::format("{}: mtls is off, so no client certificate is asked for and "
                                   "these CAs are not used",
                                   cas_path));
  }

  std::tie(host.upstream_ip, host.upstream_port) =
      parse_endpoint(require(value, path, "upstream"), path + ".upstream");
  if (auto it = value.find("forward"); it != value.end()) {
    host.forward = parse_choice(*it, path + ".forward", kForwardModes);
  }
  if (auto it = value.find("alpn"); it != value.end()) {
    host.alpn = parse_alpn(*it, path + ".alpn", host.forward);
  } else if (host.forward == ForwardMode::http) {
    host.alpn = {"http/1.1"};
  } else {
    host.alpn = {"h2", "http/1.1"};
  }
  if (auto it = value.find("min_version"); it != value.end()) {
    host.min_version = parse_choice(*it, path + ".min_version", kTlsVersions);
  }
  if (auto it = value.find("early_data"); it != value.end()) {
    host.early_data = parse_bool(*it, path + ".early_data");
  }
  // Bounds: a handshake takes a few round trips, so 100 ms is the least that
  // lets a distant client finish; past 2 minutes a handshake is a slowloris.
  // Idle: 1 second to 1 day. Connect: a SYN and up to 6 retransmissions with
  // an initial RTO of 1 s (RFC 6298) take 63 s, so 60 s is the longest wait
  // that is still shorter than TCP's own.
  if (auto it = value.find("handshake_timeout_ms"); it != value.end()) {
    host.handshake_timeout_ms =
        static_cast<uint32_t>(as_uint(*it, path + ".handshake_timeout_ms", 100, 120'000));
  }
  if (auto it = value.find("idle_timeout_ms"); it != value.end()) {
    host.idle_timeout_ms =
        static_cast<uint32_t>(as_uint(*it, path + ".idle_timeout_ms", 1'000, 86'400'000));
  }
  if (auto it = value.find("connect_timeout_ms"); it != value.end()) {
    host.connect_timeout_ms =
        static_cast<uint32_t>(as_uint(*it, path + ".connect_timeout_ms", 100, 60'000));
  }
  return host;
}

AccessLogConfig parse_access_log(const json& value, const std::string& path,
                                 const std::string& base_dir) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"path"});
  const std::string file_path = path + ".path";
  const json& name = require(value, path, "path");
  if (name.is_string() && name.get<std::string>() == "-") return AccessLogConfig{"-"};
  AccessLogConfig log{resolve_file_name(name, file_path, base_dir)};
  // Checked now so that a typo in a directory name fails here rather than
  // at the first connection; the file itself is created by the writer.
  const std::filesystem::path file(log.path);
  const std::string directory = file.parent_path().string();
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    throw ConfigError(file_path, std::filesystem::exists(directory, ec)
                                     ? fmt::format("{} is not a directory", directory)
                                     : fmt::format("the directory {} does not exist", directory));
  }
  if (std::filesystem::exists(file, ec)) {
    if (std::filesystem::is_directory(file, ec)) {
      throw ConfigError(file_path, fmt::format("{} is a directory", log.path));
    }
    if (::access(log.path.c_str(), W_OK) != 0) {
      throw ConfigError(file_path, fmt::format("cannot write {}: {}", log.path, std::strerror(errno)));
    }
  } else if (::access(directory.c_str(), W_OK | X_OK) != 0) {
    throw ConfigError(file_path, fmt::format("cannot create a file in {}: {}", directory,
                                             std::strerror(errno)));
  }
  return log;
}

constexpr std::pair<std::string_view, RuleAction> kRuleActions[] = {
    {"block", RuleAction::block}, {"allow", RuleAction::allow}, {"log", RuleAction::log}};

// The rules language's own limit (docs/rules.md): longer is refused there
// too, with a position; here it only bounds what the file may carry.
constexpr size_t kMaxRuleExpressionBytes = 4096;

RuleConfig parse_rule(const json& value, const std::string& path) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"name", "expression", "action"});
  RuleConfig rule;
  const std::string name_path = path + ".name";
  rule.name = as_string(require(value, path, "name"), name_path);
  if (rule.name.empty() || rule.name.size() > 64) {
    throw ConfigError(name_path, fmt::format("a rule name has 1 to 64 characters, \"{}\" has {}",
                                             rule.name.substr(0, 70), rule.name.size()));
  }
  for (char c : rule.name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.';
    if (!ok) {
      throw ConfigError(name_path, fmt::format("\"{}\": a rule name has letters, digits, '_', '-' and '.' only",
                                               rule.name));
    }
  }
  const std::string expression_path = path + ".expression";
  rule.expression = as_string(require(value, path, "expression"), expression_path);
  if (rule.expression.empty()) throw ConfigError(expression_path, "is empty");
  if (rule.expression.size() > kMaxRuleExpressionBytes) {
    throw ConfigError(expression_path, fmt::format("has {} bytes, more than {}", rule.expression.size(),
                                                   kMaxRuleExpressionBytes));
  }
  rule.action = parse_choice(require(value, path, "action"), path + ".action", kRuleActions);
  return rule;
}

RevocationConfig parse_revocation(const json& value, const std::string& path, const std::vector<CaConfig>& cas) {
  if (!value.is_object()) {
    throw ConfigError(path, fmt::format("expected an object, got {}", type_name(value)));
  }
  check_fields(value, path, {"ca", "serial", "fingerprint"});
  RevocationConfig r;
  const bool by_fingerprint = value.contains("fingerprint");
  if (by_fingerprint) {
    if (value.contains("ca") || value.contains("serial")) {
      throw ConfigError(path + ".fingerprint", "give either a fingerprint, or a ca and a serial, not both");
    }
    const std::string fp_path = path + ".fingerprint";
    r.fingerprint = normalize_fingerprint(as_string(value["fingerprint"], fp_path), fp_path);
    return r;
  }
  if (!value.contains("ca") && !value.contains("serial")) {
    throw ConfigError(path, "needs a fingerprint, or a ca and a serial");
  }
  const std::string ca_path = path + ".ca";
  r.ca = as_string(require(value, path, "ca"), ca_path);
  if (std::none_of(cas.begin(), cas.end(), [&](const CaConfig& ca) { return ca.name == r.ca; })) {
    throw ConfigError(ca_path, fmt::format("no CA named \"{}\" in cas", r.ca));
  }
  const std::string serial_path = path + ".serial";
  r.serial = normalize_serial(as_string(require(value, path, "serial"), serial_path), serial_path);
  return r;
}

template <typename Item, typename ParseOne>
void parse_array(const json& root, const char* key, std::vector<Item>& out, ParseOne parse_one) {
  auto it = root.find(key);
  if (it == root.end()) return;
  if (!it->is_array()) {
    throw ConfigError(key, fmt::format("expected an array, got {}", type_name(*it)));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    out.push_back(parse_one((*it)[i], fmt::format("{}[{}]", key, i)));
  }
}

void parse_tls_sections(const json& root, const std::string& base_dir, Config& config) {
  parse_array(root, "cas", config.cas, [&](const json& value, const std::string& path) {
    CaConfig ca = parse_ca(value, path, base_dir, config.warnings);
    for (size_t j = 0; j < config.cas.size(); ++j) {
      if (config.cas[j].name == ca.name) {
        throw ConfigError(path + ".name",
                          fmt::format("\"{}\" is already the name of cas[{}]", ca.name, j));
      }
    }
    return ca;
  });
  parse_array(root, "hosts", config.hosts, [&](const json& value, const std::string& path) {
    HostConfig host = parse_host(value, path, base_dir, config.cas, config.warnings);
    for (size_t j = 0; j < config.hosts.size(); ++j) {
      if (config.hosts[j].name == host.name) {
        throw ConfigError(path + ".name",
                          fmt::format("\"{}\" is already the name of hosts[{}] (names compare "
                                      "ignoring case)",
                                      host.name, j));
      }
    }
    return host;
  });
  if (auto it = root.find("default_host"); it != root.end()) {
    const std::string name = lower_case(as_string(*it, "default_host"));
    if (!config.find_host(name)) {
      std::vector<std::string> names;
      for (const HostConfig& host : config.hosts) names.push_back(host.name);
      throw ConfigError("default_host",
                        names.empty()
                            ? fmt::format("no host named \"{}\": hosts is empty", name)
                            : fmt::format("no host named \"{}\" in hosts ({})", name, quoted_list(names)));
    }
    config.default_host = name;
  }
  if (auto it = root.find("access_log"); it != root.end()) {
    config.access_log = parse_access_log(*it, "access_log", base_dir);
  }
  parse_array(root, "rules", config.rules, [&](const json& value, const std::string& path) {
    RuleConfig rule = parse_rule(value, path);
    if (config.find_rule(rule.name) != nullptr) {
      throw ConfigError(path + ".name", fmt::format("\"{}\" is already the name of another rule", rule.name));
    }
    return rule;
  });
  parse_array(root, "revocations", config.revocations, [&](const json& value, const std::string& path) {
    RevocationConfig r = parse_revocation(value, path, config.cas);
    if (std::find(config.revocations.begin(), config.revocations.end(), r) != config.revocations.end()) {
      throw ConfigError(path, "is listed twice");
    }
    return r;
  });

  bool tls_listener = false;
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    if (config.listeners[i].service != "tls") continue;
    tls_listener = true;
    if (config.hosts.empty()) {
      throw ConfigError(fmt::format("listeners[{}].service", i),
                        "a tls listener needs at least one entry in hosts");
    }
  }
  if (!config.hosts.empty() && !tls_listener) {
    config.warnings.push_back(
        "hosts: no listener has service \"tls\", so no host receives connections");
  }
  for (size_t i = 0; i < config.cas.size(); ++i) {
    const std::string& name = config.cas[i].name;
    const bool used = std::any_of(config.hosts.begin(), config.hosts.end(), [&](const HostConfig& h) {
      return h.mtls != MtlsMode::off &&
             std::find(h.client_cas.begin(), h.client_cas.end(), name) != h.client_cas.end();
    });
    if (!used) {
      config.warnings.push_back(
          fmt::format("cas[{}]: no host with mtls on lists \"{}\" in client_cas", i, name));
    }
  }
}

}  // namespace

std::string_view to_string(MtlsMode mode) noexcept {
  for (const auto& [name, value] : kMtlsModes) {
    if (value == mode) return name;
  }
  return "?";
}

std::string_view to_string(ForwardMode mode) noexcept {
  for (const auto& [name, value] : kForwardModes) {
    if (value == mode) return name;
  }
  return "?";
}

std::string_view to_string(TlsVersion version) noexcept {
  for (const auto& [name, value] : kTlsVersions) {
    if (value == version) return name;
  }
  return "?";
}

std::string_view to_string(RuleAction action) noexcept {
  for (const auto& [name, value] : kRuleActions) {
    if (value == action) return name;
  }
  return "?";
}

const RuleConfig* Config::find_rule(std::string_view name) const noexcept {
  for (const RuleConfig& rule : rules) {
    if (rule.name == name) return &rule;
  }
  return nullptr;
}

HostConfig parse_host_entry(const json& value, const std::string& path, const std::string& base_dir,
                            Config& config) {
  return parse_host(value, path, base_dir, config.cas, config.warnings);
}

CaConfig parse_ca_entry(const json& value, const std::string& path, const std::string& base_dir, Config& config) {
  return parse_ca(value, path, base_dir, config.warnings);
}

RuleConfig parse_rule_entry(const json& value, const std::string& path) { return parse_rule(value, path); }

RevocationConfig parse_revocation_entry(const json& value, const std::string& path, const Config& config) {
  return parse_revocation(value, path, config.cas);
}

// Parsed by the revocation set's own parsers (revocation_set.h), so that
// what the config accepts is exactly what the workers' set is built from,
// and kept as text in the form ClientIdentity prints: the serial in
// upper-case hex without DER's sign octet (RFC 5280 4.1.2.2), the
// fingerprint in lower-case hex.
std::string normalize_serial(std::string_view text, const std::string& path) {
  std::vector<uint8_t> content;
  std::string error;
  if (!tls::parse_serial_hex(text, &content, &error)) {
    throw ConfigError(path, fmt::format("\"{}\" is not a serial number ({})", text, error));
  }
  size_t first = content.size() > 1 && content[0] == 0 && (content[1] & 0x80) != 0 ? 1 : 0;
  std::string hex;
  for (size_t i = first; i < content.size(); ++i) hex += fmt::format("{:02X}", content[i]);
  return hex;
}

std::string normalize_fingerprint(std::string_view text, const std::string& path) {
  tls::RevocationKey key;
  std::string error;
  if (!tls::parse_fingerprint_hex(text, &key, &error)) {
    throw ConfigError(path, fmt::format("\"{}\" is not a SHA-256 fingerprint ({})", text, error));
  }
  std::string hex;
  for (uint8_t b : key.bytes) hex += fmt::format("{:02x}", b);
  return hex;
}

const CaConfig* Config::find_ca(std::string_view name) const noexcept {
  for (const CaConfig& ca : cas) {
    if (ca.name == name) return &ca;
  }
  return nullptr;
}

const HostConfig* Config::find_host(std::string_view name) const noexcept {
  for (const HostConfig& host : hosts) {
    if (host.name == name) return &host;
  }
  return nullptr;
}

Config parse_config(std::string_view json_text, const std::string& base_dir) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::parse_error& e) {
    // nlohmann reports "[json.exception.parse_error.101] parse error at line
    // 3, column 5: ..."; keep the location and the reason.
    std::string what = e.what();
    auto pos = what.find("] ");
    throw ConfigError("", "invalid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
  }
  if (!root.is_object()) {
    throw ConfigError("", fmt::format("the top level must be an object, got {}", type_name(root)));
  }
  check_fields(root, "",
               {"ports", "listeners", "tcp", "cas", "hosts", "default_host", "access_log", "rules",
                "revocations"});
  Config config;
  const json& ports = require(root, "", "ports");
  if (!ports.is_array()) {
    throw ConfigError("ports", fmt::format("expected an array, got {}", type_name(ports)));
  }
  if (ports.empty()) throw ConfigError("ports", "needs at least one port");
  std::set<uint16_t> seen;
  for (size_t i = 0; i < ports.size(); ++i) {
    const std::string path = fmt::format("ports[{}]", i);
    PortConfig port = parse_port(ports[i], path);
    if (!seen.insert(port.port_id).second) {
      throw ConfigError(path + ".port_id", fmt::format("port {} is listed twice", port.port_id));
    }
    for (size_t j = 0; j < config.ports.size(); ++j) {
      const net::Ipv4Prefix& other = config.ports[j].address;
      // Overlapping on-link prefixes would make the egress port ambiguous.
      const uint8_t shorter = std::min(other.length, port.address.length);
      const net::Ipv4Prefix common{other.address, shorter};
      if (common.contains(port.address.address)) {
        throw ConfigError(path + ".address",
                          fmt::format("overlaps ports[{}].address ({}/{})", j,
                                      net::format_ipv4(other.address), other.length));
      }
    }
    config.ports.push_back(port);
  }
  if (auto it = root.find("listeners"); it != root.end()) {
    if (!it->is_array()) {
      throw ConfigError("listeners", fmt::format("expected an array, got {}", type_name(*it)));
    }
    std::set<uint16_t> ports;
    for (size_t i = 0; i < it->size(); ++i) {
      const std::string path = fmt::format("listeners[{}]", i);
      ListenerConfig listener = parse_listener((*it)[i], path);
      if (!ports.insert(listener.port).second) {
        throw ConfigError(path + ".port", fmt::format("port {} is listened on twice", listener.port));
      }
      config.listeners.push_back(listener);
    }
  }
  if (auto it = root.find("tcp"); it != root.end()) config.tcp = parse_tcp(*it, "tcp");
  parse_tls_sections(root, base_dir, config);
  return config;
}

Config load_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("", fmt::format("cannot read config file {}", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_config(buffer.str(), std::filesystem::path(path).parent_path().string());
}

}  // namespace mtlsgw::control
