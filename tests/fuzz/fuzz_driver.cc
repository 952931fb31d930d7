// A stand-in for libFuzzer's main() when the targets are built without it
// (GCC, or clang without -Dfuzz=true): runs LLVMFuzzerTestOneInput over every
// seed, then over a bounded number of deterministic mutations of them, so
// that each target runs in the unit suite in seconds and a regression in a
// seed's neighbourhood shows in CI. Real fuzzing is scripts/fuzz.
//
//   fuzz_<target> [--mutations N] [--seed S] [--dict FILE] PATH...
//
// FILE is a libFuzzer dictionary (name="value" lines, \" \\ \xNN escapes);
// its tokens are inserted and swapped for words, which keeps far more
// mutants valid for a target that parses a language.
//
// PATH is a seed file or a directory of them (not recursive). On a crash
// (a signal: segfault, abort from a failed check) the input at fault is
// written to ./fuzz-crash-input and the mutation's number to stderr; give
// that file alone to replay just it.

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <istream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size);

namespace {

using Bytes = std::vector<uint8_t>;

// Inputs grow up to twice libFuzzer's -max_len in scripts/fuzz, enough to
// cross every length limit of a target.
constexpr std::size_t kMaxInput = 16 * 1024;

// splitmix64: small, fast, and the same sequence on every platform.
class Random {
 public:
  explicit Random(uint64_t seed) noexcept : state_(seed) {}
  uint64_t next() noexcept {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform enough in [0, n) for n far below 2^64; 0 when n is 0.
  std::size_t below(std::size_t n) noexcept { return n == 0 ? 0 : next() % n; }

 private:
  uint64_t state_;
};

// Bytes that are structure in text formats (brackets, quotes, operators,
// separators, digits), tried more often than the other 200-odd.
constexpr std::string_view kStructural = "(){}[]\"'\\ \t\n,.:;/#=!<>~&|^*+-_0123456789azrAZ\xff";

uint8_t random_byte(Random& random) {
  if (random.below(2) == 0) {
    return static_cast<uint8_t>(kStructural[random.below(kStructural.size())]);
  }
  return static_cast<uint8_t>(random.next());
}

// A libFuzzer dictionary's values; nothing on a malformed line.
std::vector<Bytes> read_dictionary(std::istream& in) {
  std::vector<Bytes> tokens;
  for (std::string line; std::getline(in, line);) {
    const std::size_t open = line.find('"');
    const std::size_t close = line.rfind('"');
    if (line.starts_with("#") || open == std::string::npos || close <= open) continue;
    Bytes token;
    for (std::size_t i = open + 1; i < close; ++i) {
      if (line[i] != '\\' || i + 1 >= close) {
        token.push_back(static_cast<uint8_t>(line[i]));
      } else if (line[i + 1] == 'x' && i + 3 < close) {
        token.push_back(static_cast<uint8_t>(std::stoi(line.substr(i + 2, 2), nullptr, 16)));
        i += 3;
      } else {
        token.push_back(static_cast<uint8_t>(line[++i]));
      }
    }
    if (!token.empty()) tokens.push_back(std::move(token));
  }
  return tokens;
}

bool is_word_byte(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.';
}

// Replaces the word around a random position with a dictionary token, or
// inserts one between words: the mutations that keep a language's inputs
// well-formed most often.
void use_dictionary(Bytes& input, const std::vector<Bytes>& dictionary, Random& random) {
  const Bytes& token = dictionary[random.below(dictionary.size())];
  std::size_t at = random.below(input.size() + 1);
  if (random.below(2) == 0 && at < input.size() && is_word_byte(input[at])) {
    std::size_t end = at;
    while (at > 0 && is_word_byte(input[at - 1])) --at;
    while (end < input.size() && is_word_byte(input[end])) ++end;
    input.erase(input.begin() + static_cast<std::ptrdiff_t>(at),
                input.begin() + static_cast<std::ptrdiff_t>(end));
  } else {
    input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), ' ');
    ++at;
  }
  input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), token.begin(), token.end());
}

void mutate_once(Bytes& input, const std::vector<Bytes>& seeds,
                 const std::vector<Bytes>& dictionary, Random& random) {
  if (!dictionary.empty() && random.below(2) == 0) {
    use_dictionary(input, dictionary, random);
    return;
  }
  switch (random.below(6)) {
    case 0:  // flip one bit
      if (!input.empty()) {
        input[random.below(input.size())] ^= static_cast<uint8_t>(1u << random.below(8));
      }
      return;
    case 1:  // overwrite a byte
      if (!input.empty()) input[random.below(input.size())] = random_byte(random);
      return;
    case 2: {  // insert one to four bytes
      const std::size_t at = random.below(input.size() + 1);
      const std::size_t n = 1 + random.below(4);
      for (std::size_t i = 0; i < n; ++i) {
        input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), random_byte(random));
      }
      return;
    }
    case 3: {  // delete up to eight bytes
      if (input.empty()) return;
      const std::size_t at = random.below(input.size());
      const std::size_t n = 1 + random.below(std::min<std::size_t>(8, input.size() - at));
      input.erase(input.begin() + static_cast<std::ptrdiff_t>(at),
                  input.begin() + static_cast<std::ptrdiff_t>(at + n));
      return;
    }
    case 4: {  // splice: our head, another seed's tail
      const Bytes& other = seeds[random.below(seeds.size())];
      const std::size_t cut = random.below(input.size() + 1);
      const std::size_t from = random.below(other.size() + 1);
      input.resize(cut);
      input.insert(input.end(), other.begin() + static_cast<std::ptrdiff_t>(from), other.end());
      return;
    }
    default: {  // copy a piece of ourselves elsewhere (repeats nest and lengthen)
      if (input.empty()) return;
      const std::size_t from = random.below(input.size());
      const std::size_t n = 1 + random.below(input.size() - from);
      const Bytes piece(input.begin() + static_cast<std::ptrdiff_t>(from),
                        input.begin() + static_cast<std::ptrdiff_t>(from + n));
      const std::size_t at = random.below(input.size() + 1);
      input.insert(input.begin() + static_cast<std::ptrdiff_t>(at), piece.begin(), piece.end());
      return;
    }
  }
}

bool read_file(const std::filesystem::path& path, Bytes& out) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return false;
  out.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  return true;
}

// What is running now, for the crash handler, with its report written
// beforehand because a signal handler may not format.
const Bytes* current_input = nullptr;
char crash_report[128];

void write_all(int fd, const void* data, std::size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n <= 0) return;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Async-signal-safe: open(2), write(2), close(2) only.
void on_crash(int signal_number) {
  if (current_input != nullptr) {
    const int fd = ::open("fuzz-crash-input", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      write_all(fd, current_input->data(), current_input->size());
      ::close(fd);
    }
    write_all(2, crash_report, std::strlen(crash_report));
  }
  ::signal(signal_number, SIG_DFL);
  ::raise(signal_number);
}

void run(const Bytes& input, const std::string& what) {
  std::snprintf(crash_report, sizeof crash_report,
                "fuzz driver: crashed on %s; the input is in ./fuzz-crash-input\n", what.c_str());
  current_input = &input;
  LLVMFuzzerTestOneInput(input.data(), input.size());
  current_input = nullptr;
}

int usage(const char* self) {
  std::fprintf(stderr, "usage: %s [--mutations N] [--seed S] [--dict FILE] PATH...\n", self);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t mutations = 20'000;
  uint64_t seed = 1;
  std::vector<std::filesystem::path> paths;
  std::vector<Bytes> dictionary;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--dict" && i + 1 < argc) {
      std::ifstream file(argv[++i]);
      if (!file) {
        std::fprintf(stderr, "%s: cannot read %s\n", argv[0], argv[i]);
        return 1;
      }
      dictionary = read_dictionary(file);
    } else if ((arg == "--mutations" || arg == "--seed") && i + 1 < argc) {
      char* end = nullptr;
      const unsigned long long value = std::strtoull(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0') return usage(argv[0]);
      if (arg == "--mutations") {
        mutations = value;
      } else {
        seed = value;
      }
    } else if (arg.starts_with("--")) {
      return usage(argv[0]);
    } else {
      paths.emplace_back(arg);
    }
  }
  if (paths.empty()) return usage(argv[0]);

  std::vector<Bytes> seeds;
  std::vector<std::string> names;
  for (const std::filesystem::path& path : paths) {
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(path)) {
      for (const auto& entry : std::filesystem::directory_iterator(path)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());  // the same order on every file system
    } else {
      files.push_back(path);
    }
    for (const std::filesystem::path& file : files) {
      Bytes bytes;
      if (!read_file(file, bytes)) {
        std::fprintf(stderr, "%s: cannot read %s\n", argv[0], file.c_str());
        return 1;
      }
      seeds.push_back(std::move(bytes));
      names.push_back(file.string());
    }
  }
  if (seeds.empty()) {
    std::fprintf(stderr, "%s: no seeds found\n", argv[0]);
    return 1;
  }

  for (int signal_number : {SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) {
    ::signal(signal_number, on_crash);
  }
  for (std::size_t i = 0; i < seeds.size(); ++i) run(seeds[i], "seed " + names[i]);
  // A lone file is a replay, not a campaign.
  if (paths.size() == 1 && !std::filesystem::is_directory(paths[0])) mutations = 0;

  Random random(seed);
  for (std::size_t m = 0; m < mutations; ++m) {
    Bytes input = seeds[random.below(seeds.size())];
    // Mostly one step: for a parser, each further step halves the share of
    // mutants it accepts (measured on the rules target: 13 % compile after
    // one step, 6 % after one to four); now and then several.
    const std::size_t steps = random.below(4) == 0 ? 2 + random.below(3) : 1;
    for (std::size_t s = 0; s < steps; ++s) mutate_once(input, seeds, dictionary, random);
    if (input.size() > kMaxInput) input.resize(kMaxInput);
    run(input, "mutation " + std::to_string(m));
  }
  std::printf("%zu seeds and %zu mutations (seed %llu, %zu dictionary tokens) ran\n",
              seeds.size(), mutations, static_cast<unsigned long long>(seed), dictionary.size());
  return 0;
}
