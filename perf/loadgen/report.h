#pragma once
// What loadgen prints: a progress line per interval (stderr), and the final
// report as text or as JSON (stdout), for people and for perf/compare.

#include <nlohmann/json.hpp>

#include <string>

#include "load_driver.h"
#include "options.h"
#include "run_stats.h"

namespace mtlsgw::loadgen {

std::string progress_line(double elapsed_s, double interval_s, const Counters& counters,
                          const Latencies& latencies, unsigned active);

nlohmann::json report_json(const Options& options, const RunStats& stats,
                           const RunResult& result);
std::string report_text(const Options& options, const RunStats& stats, const RunResult& result);

// Failures over attempts (completed requests plus failures).
double failure_ratio(const RunStats& stats);

}  // namespace mtlsgw::loadgen
