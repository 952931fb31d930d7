#include "dataplane/net/tcp_sack_scoreboard.h"

#include <gtest/gtest.h>

#include <random>
#include <utility>
#include <vector>

namespace mtlsgw::testing {
namespace {

using net::tcp::SackScoreboard;
using Block = std::pair<uint32_t, uint32_t>;

std::vector<Block> ranges_of(const SackScoreboard& sb) {
  std::vector<Block> out;
  for (uint8_t i = 0; i < sb.range_count(); ++i)
    out.emplace_back(sb.range(i).left, sb.range(i).right);
  return out;
}

TEST(SackScoreboardTest, StartsEmpty) {
  SackScoreboard sb;
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.sacked_bytes(), 0u);
  EXPECT_EQ(sb.highest_sacked(), 0u);
  EXPECT_FALSE(sb.is_sacked(0));
  EXPECT_FALSE(sb.is_lost(0, 1000));
  EXPECT_EQ(sb.next_hole(0), (Block{0, 0}));
  EXPECT_EQ(sb.pipe(5000, 1000), 5000u);
  EXPECT_EQ(sb.lost_below(1000), 0u);
}

TEST(SackScoreboardTest, EmptyAndInvertedBlocksAreIgnored) {
  SackScoreboard sb;
  sb.add(10, 10);
  sb.add(20, 10);
  EXPECT_TRUE(sb.empty());
}

TEST(SackScoreboardTest, BlocksMergeWhenTheyOverlapOrTouch) {
  SackScoreboard sb;
  sb.add(100, 200);
  sb.add(300, 400);
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{100, 200}, {300, 400}}));
  EXPECT_EQ(sb.sacked_bytes(), 200u);
  sb.add(50, 150);  // overlaps the left end
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{50, 200}, {300, 400}}));
  sb.add(350, 450);  // overlaps the right end
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{50, 200}, {300, 450}}));
  sb.add(120, 180);  // inside: nothing new
  EXPECT_EQ(sb.sacked_bytes(), 150u + 150u);
  sb.add(200, 300);  // touches both: one range
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{50, 450}}));
  EXPECT_EQ(sb.sacked_bytes(), 400u);
  sb.add(500, 510);
  sb.add(520, 530);
  sb.add(540, 550);
  sb.add(505, 545);  // spans several
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{50, 450}, {500, 550}}));
  EXPECT_EQ(sb.sacked_bytes(), 450u);
  sb.add(0, 1000);  // covers everything
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{0, 1000}}));
  EXPECT_EQ(sb.sacked_bytes(), 1000u);
  EXPECT_EQ(sb.highest_sacked(), 1000u);
}

TEST(SackScoreboardTest, FullTableForgetsTheHighestRangeNeverInventsOne) {
  SackScoreboard sb;
  for (uint32_t k = 0; k < SackScoreboard::kMaxRanges; ++k)
    sb.add(100 * (k + 1), 100 * (k + 1) + 10);
  ASSERT_EQ(sb.range_count(), SackScoreboard::kMaxRanges);
  EXPECT_EQ(sb.overflow_count(), 0u);
  const uint32_t top = 100 * SackScoreboard::kMaxRanges;

  sb.add(top + 50, top + 60);  // above everything: ignored
  EXPECT_EQ(sb.overflow_count(), 1u);
  EXPECT_EQ(sb.highest_sacked(), top + 10);
  EXPECT_FALSE(sb.is_sacked(top + 50));

  sb.add(150, 160);  // lower: the highest range makes room
  EXPECT_EQ(sb.overflow_count(), 2u);
  EXPECT_EQ(sb.range_count(), SackScoreboard::kMaxRanges);
  EXPECT_TRUE(sb.is_sacked(150));
  EXPECT_FALSE(sb.is_sacked(top));
  EXPECT_EQ(sb.highest_sacked(), top - 100 + 10);
  EXPECT_EQ(sb.sacked_bytes(), 10u * SackScoreboard::kMaxRanges);

  sb.add(110, 150);  // touches two ranges: merges, frees one, no overflow
  EXPECT_EQ(sb.overflow_count(), 2u);
  EXPECT_EQ(sb.range_count(), SackScoreboard::kMaxRanges - 1);
  // Bytes between ranges never become SACKed through a merge.
  EXPECT_FALSE(sb.is_sacked(160));
  EXPECT_FALSE(sb.is_sacked(199));
}

TEST(SackScoreboardTest, AdvanceShiftsDropsAndCutsRanges) {
  SackScoreboard sb;
  sb.add(100, 200);
  sb.add(300, 400);
  sb.add(500, 600);
  sb.advance(0);
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{100, 200}, {300, 400}, {500, 600}}));
  sb.advance(50);
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{50, 150}, {250, 350}, {450, 550}}));
  sb.advance(150);  // exactly the first range's right edge: it goes
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{100, 200}, {300, 400}}));
  EXPECT_EQ(sb.sacked_bytes(), 200u);
  sb.advance(150);  // inside a range (the peer reneged or acked partially)
  EXPECT_EQ(ranges_of(sb), (std::vector<Block>{{0, 50}, {150, 250}}));
  EXPECT_EQ(sb.sacked_bytes(), 150u);
  sb.advance(1000);
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.sacked_bytes(), 0u);
  EXPECT_EQ(sb.highest_sacked(), 0u);
}

TEST(SackScoreboardTest, ResetForgetsRangesButKeepsTheOverflowCounter) {
  SackScoreboard sb;
  for (uint32_t k = 0; k <= SackScoreboard::kMaxRanges; ++k) sb.add(10 * k + 1, 10 * k + 2);
  sb.reset();
  EXPECT_TRUE(sb.empty());
  EXPECT_EQ(sb.sacked_bytes(), 0u);
  EXPECT_EQ(sb.overflow_count(), 1u);
}

TEST(SackScoreboardTest, IsSackedAtRangeEdges) {
  SackScoreboard sb;
  sb.add(10, 20);
  sb.add(30, 31);
  EXPECT_FALSE(sb.is_sacked(9));
  EXPECT_TRUE(sb.is_sacked(10));
  EXPECT_TRUE(sb.is_sacked(19));
  EXPECT_FALSE(sb.is_sacked(20));
  EXPECT_TRUE(sb.is_sacked(30));
  EXPECT_FALSE(sb.is_sacked(31));
  EXPECT_FALSE(sb.is_sacked(0xFFFF'FFFFu));
}

TEST(SackScoreboardTest, IsLostByDiscontiguousRanges) {
  SackScoreboard sb;
  const uint32_t smss = 1000;  // the byte rule stays out of the way
  sb.add(10, 11);
  sb.add(20, 21);
  sb.add(30, 31);
  EXPECT_TRUE(sb.is_lost(0, smss));
  EXPECT_TRUE(sb.is_lost(9, smss));
  EXPECT_FALSE(sb.is_lost(10, smss));  // only two ranges hold bytes above 10
  EXPECT_FALSE(sb.is_lost(15, smss));
  EXPECT_EQ(sb.lost_below(smss), 10u);
  // DupThresh is a parameter (RFC 6675 section 2 allows other values).
  EXPECT_TRUE(sb.is_lost(15, smss, 2));
  EXPECT_FALSE(sb.is_lost(20, smss, 2));
  EXPECT_FALSE(sb.is_lost(0, smss, 4));
  EXPECT_TRUE(sb.is_lost(29, smss, 1));
  EXPECT_FALSE(sb.is_lost(30, smss, 1));
  EXPECT_TRUE(sb.is_lost(29, smss, 0));  // 0 behaves as 1
}

TEST(SackScoreboardTest, IsLostBySackedBytes) {
  SackScoreboard sb;
  const uint32_t smss = 10;  // (3 - 1) * 10 = 20 bytes must be exceeded
  sb.add(100, 121);          // 21 bytes
  EXPECT_TRUE(sb.is_lost(99, smss));
  EXPECT_FALSE(sb.is_lost(100, smss));  // bytes above 100: 20
  EXPECT_EQ(sb.lost_below(smss), 100u);
  SackScoreboard exact;
  exact.add(100, 120);  // 20 bytes: "more than" is not met
  EXPECT_FALSE(exact.is_lost(0, smss));
  EXPECT_EQ(exact.lost_below(smss), 0u);
  // Two ranges adding up: 15 + 10 > 20.
  SackScoreboard two;
  two.add(100, 115);
  two.add(200, 210);
  EXPECT_TRUE(two.is_lost(99, smss));
  EXPECT_TRUE(two.is_lost(103, smss));   // 104..114 and 200..209: 21 bytes above
  EXPECT_FALSE(two.is_lost(104, smss));  // 105..114 and 200..209: 20 bytes above
  EXPECT_EQ(two.lost_below(smss), 104u);
  // A huge SMSS and DupThresh do not overflow.
  EXPECT_FALSE(two.is_lost(0, 0xFFFF'FFFFu, 0xFFFF'FFFFu));
  EXPECT_EQ(two.lost_below(0xFFFF'FFFFu, 0xFFFF'FFFFu), 0u);
}

TEST(SackScoreboardTest, NextHoleWalksTheGapsBelowTheHighestSack) {
  SackScoreboard sb;
  sb.add(1000, 2000);
  sb.add(3000, 3500);
  EXPECT_EQ(sb.next_hole(0), (Block{0, 1000}));
  EXPECT_EQ(sb.next_hole(400), (Block{400, 600}));
  EXPECT_EQ(sb.next_hole(1000), (Block{2000, 1000}));  // from inside a range
  EXPECT_EQ(sb.next_hole(1999), (Block{2000, 1000}));
  EXPECT_EQ(sb.next_hole(2000), (Block{2000, 1000}));
  EXPECT_EQ(sb.next_hole(2999), (Block{2999, 1}));
  EXPECT_EQ(sb.next_hole(3000).second, 0u);  // nothing SACKed above the hole it would be
  EXPECT_EQ(sb.next_hole(3600), (Block{3600, 0}));
}

TEST(SackScoreboardTest, PipeCountsNeitherSackedNorLostBytes) {
  SackScoreboard sb;
  const uint32_t smss = 1000;
  // Segments of 1000: 0, 1 and 2 lost, 3 SACKed, 4 in flight, 5 SACKed,
  // 6 in flight, 7 SACKed, 8 and 9 in flight.
  sb.add(3000, 4000);
  sb.add(5000, 6000);
  sb.add(7000, 8000);
  EXPECT_TRUE(sb.is_lost(2999, smss));
  EXPECT_FALSE(sb.is_lost(4000, smss));  // two ranges, 2000 bytes above: not more than 2000
  EXPECT_EQ(sb.pipe(10000, smss), 1000u + 1000u + 2000u);
  EXPECT_EQ(sb.pipe(8500, smss), 1000u + 1000u + 500u);
  EXPECT_EQ(sb.pipe(0, smss), 0u);
  // With DupThresh 2 segment 4 is lost too (two ranges above it).
  EXPECT_EQ(sb.pipe(10000, smss, 2), 1000u + 2000u);
  EXPECT_EQ(sb.unsacked_bytes(0, 10000), 7000u);
  EXPECT_EQ(sb.unsacked_bytes(3500, 5500), 1000u);
  EXPECT_EQ(sb.unsacked_bytes(5500, 5500), 0u);
  EXPECT_EQ(sb.unsacked_bytes(6000, 100), 0u);
}

// ------------------------------------------------------------ randomized

// The scoreboard against a byte map: every query answered byte by byte from
// the definitions in RFC 6675 section 4.
class BitmapModel {
 public:
  explicit BitmapModel(uint32_t size) : sacked_(size, false) {}

  void add(uint32_t left, uint32_t right) {
    if (left >= right) return;
    std::vector<bool> before = sacked_;
    for (uint32_t i = left; i < right; ++i) sacked_[i] = true;
    std::vector<Block> runs = ranges();
    if (runs.size() <= SackScoreboard::kMaxRanges) return;
    // The block was disjoint and the table was full.
    if (runs.back().first == left) {
      sacked_ = before;
      return;
    }
    for (uint32_t i = runs.back().first; i < runs.back().second; ++i) sacked_[i] = false;
  }

  void advance(uint32_t acked) {
    std::vector<bool> next(sacked_.size(), false);
    for (size_t i = acked; i < sacked_.size(); ++i) next[i - acked] = sacked_[i];
    sacked_ = next;
  }

  std::vector<Block> ranges() const {
    std::vector<Block> runs;
    for (uint32_t i = 0; i < sacked_.size(); ++i) {
      if (!sacked_[i]) continue;
      uint32_t j = i;
      while (j < sacked_.size() && sacked_[j]) ++j;
      runs.emplace_back(i, j);
      i = j;
    }
    return runs;
  }

  bool sacked(uint32_t i) const { return i < sacked_.size() && sacked_[i]; }

  // IsLost for every offset at once: SACKed bytes and runs strictly above
  // each offset, counted from the top down.
  std::vector<bool> lost_map(uint32_t smss, uint32_t dup_thresh) const {
    if (dup_thresh == 0) dup_thresh = 1;
    std::vector<bool> lost(sacked_.size(), false);
    uint64_t bytes = 0;
    uint32_t runs = 0;
    for (size_t o = sacked_.size(); o-- > 0;) {
      const size_t above = o + 1;
      if (above < sacked_.size() && sacked_[above]) {
        ++bytes;
        if (above + 1 == sacked_.size() || !sacked_[above + 1]) ++runs;  // a run's last byte
      }
      lost[o] = runs >= dup_thresh || bytes > uint64_t{dup_thresh - 1} * smss;
    }
    return lost;
  }

  uint32_t size() const { return static_cast<uint32_t>(sacked_.size()); }

 private:
  std::vector<bool> sacked_;
};

TEST(SackScoreboardRandomTest, MatchesAByteMap) {
  constexpr uint32_t kSpace = 1200;
  uint64_t lost_seen = 0, overflow_seen = 0;
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    auto rand_in = [&](uint32_t lo, uint32_t hi) {
      return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
    };
    SackScoreboard sb;
    BitmapModel model(kSpace);
    const uint32_t max_block = rand_in(1, 120);
    for (int step = 0; step < 150; ++step) {
      if (rand_in(0, 9) == 0) {
        const uint32_t acked = rand_in(0, 200);
        sb.advance(acked);
        model.advance(acked);
      } else {
        const uint32_t left = rand_in(0, kSpace - 2);
        const uint32_t right = std::min(kSpace - 1, left + rand_in(0, max_block));
        sb.add(left, right);
        model.add(left, right);
      }
      const std::vector<Block> runs = model.ranges();
      ASSERT_EQ(ranges_of(sb), runs) << "seed " << seed << " step " << step;
      uint32_t bytes = 0;
      for (const auto& r : runs) bytes += r.second - r.first;
      ASSERT_EQ(sb.sacked_bytes(), bytes);
      ASSERT_EQ(sb.highest_sacked(), runs.empty() ? 0u : runs.back().second);

      const uint32_t smss = rand_in(1, 60);
      const uint32_t dup_thresh = rand_in(0, 5);
      const uint32_t snd_nxt = rand_in(0, kSpace);
      const uint32_t lost_below = sb.lost_below(smss, dup_thresh);
      const std::vector<bool> lost_map = model.lost_map(smss, dup_thresh);
      uint32_t pipe = 0;
      for (uint32_t o = 0; o < kSpace; ++o) {
        ASSERT_EQ(sb.is_sacked(o), model.sacked(o)) << "seed " << seed << " offset " << o;
        const bool lost = lost_map[o];
        ASSERT_EQ(sb.is_lost(o, smss, dup_thresh), lost)
            << "seed " << seed << " step " << step << " offset " << o << " smss " << smss << " dt "
            << dup_thresh;
        ASSERT_EQ(o < lost_below, lost) << "seed " << seed << " step " << step << " offset " << o;
        if (o < snd_nxt && !model.sacked(o) && !lost) ++pipe;
        lost_seen += lost && !model.sacked(o);
      }
      ASSERT_EQ(sb.pipe(snd_nxt, smss, dup_thresh), pipe) << "seed " << seed << " step " << step;

      const uint32_t from = rand_in(0, kSpace);
      uint32_t hole = from;
      while (hole < kSpace && model.sacked(hole)) ++hole;
      uint32_t hole_end = hole;
      while (hole_end < kSpace && !model.sacked(hole_end)) ++hole_end;
      const Block expect = hole_end < kSpace ? Block{hole, hole_end - hole} : Block{from, 0};
      ASSERT_EQ(sb.next_hole(from), expect) << "seed " << seed << " from " << from;

      const uint32_t a = rand_in(0, kSpace), b = rand_in(0, kSpace);
      uint32_t unsacked = 0;
      for (uint32_t o = a; o < b; ++o) unsacked += !model.sacked(o);
      ASSERT_EQ(sb.unsacked_bytes(a, b), unsacked);
    }
    overflow_seen += sb.overflow_count();
  }
  EXPECT_GT(lost_seen, 1000u);
  EXPECT_GT(overflow_seen, 10u);
}

}  // namespace
}  // namespace mtlsgw::testing
