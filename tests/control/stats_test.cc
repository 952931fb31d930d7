#include "control/stats.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mtlsgw::control {
namespace {

// The exit report (docs/telemetry.md): each enabled fault injector
// direction of each worker gets a line with its spec and every count, so
// that a run's real loss, duplication and reordering can be read after it;
// a direction without an injector gets none.
TEST(StatsReport, ListsWhatEachEnabledFaultInjectorDid) {
  StatsSnapshot stats;
  WorkerStats w;
  w.index = 1;
  w.lcore = 2;
  w.fault_tx.enabled = true;
  w.fault_tx.spec = "drop=0.03,duplicate=0.01,reorder=0.03,corrupt=0,delay_us=0,reorder_us=500";
  w.fault_tx.counts.passed = 970;
  w.fault_tx.counts.dropped = 30;
  w.fault_tx.counts.duplicated = 9;
  w.fault_tx.counts.reordered = 28;
  stats.workers.push_back(w);
  const std::string report = format_report(stats);
  EXPECT_NE(report.find("\nworker 1 fault-tx (drop=0.03,duplicate=0.01,reorder=0.03,corrupt=0,delay_us=0,"
                        "reorder_us=500): passed=970 dropped=30 duplicated=9 duplicate_failed=0 "
                        "reordered=28 delayed=0 corrupted=0 hold_overflow=0\n"),
            std::string::npos)
      << report;
  EXPECT_EQ(report.find("fault-rx"), std::string::npos) << report;
}

// A segment dispatched from the worker that received it to the one that owns
// its connection went through both workers' TCP input: the sum over workers
// counts it once, and leaves every other counter as summed.
TEST(StatsSum, DispatchedSegmentsCountOnceInTcpSegmentsIn) {
  std::vector<std::pair<std::string_view, uint64_t>> summed = {
      {"rx_frames", 100}, {"dispatched_to_owner", 7}, {"dispatched_from_peer", 6},
      {"tcp_segments_in", 106}};
  count_dispatched_segments_once(summed);
  EXPECT_EQ(summed[0].second, 100u);
  EXPECT_EQ(summed[1].second, 7u);
  EXPECT_EQ(summed[2].second, 6u);
  EXPECT_EQ(summed[3].second, 100u);
  // Read while segments move: never below zero.
  std::vector<std::pair<std::string_view, uint64_t>> racing = {{"tcp_segments_in", 2},
                                                               {"dispatched_from_peer", 3}};
  count_dispatched_segments_once(racing);
  EXPECT_EQ(racing[0].second, 0u);
}

TEST(StatsReport, NoFaultLinesWithoutInjectors) {
  StatsSnapshot stats;
  stats.workers.push_back(WorkerStats{});
  EXPECT_EQ(format_report(stats).find("fault"), std::string::npos);
}

}  // namespace
}  // namespace mtlsgw::control
