#pragma once
// The stats snapshot in Prometheus' text exposition format (version 0.0.4):
// `mtlsgwctl stats --prometheus`, for a node exporter's textfile collector
// or a scrape through a small HTTP shim. Every counter is a `counter`
// (summed over workers), the gauges are `gauge`s, per-host TLS outcomes
// carry a `host` label and per-worker load a `worker` label.

#include <string>

#include "control/stats.h"

namespace mtlsgw::control {

std::string stats_to_prometheus(const StatsSnapshot& stats);

}  // namespace mtlsgw::control
