#pragma once
// The stats snapshot as JSON, for `mtlsgwctl stats` (the control socket's
// `stats` command): the same counters as the exit report and /mtlsgw/*
// telemetry, summed over workers, with the per-worker load and the per-host
// TLS counters.

#include <nlohmann/json.hpp>

#include "control/stats.h"

namespace mtlsgw::control {

nlohmann::json stats_to_json(const StatsSnapshot& stats);

}  // namespace mtlsgw::control
