#pragma once
// From the configuration's "cas" and "hosts" to the TLS gateway's
// description (dataplane/gateway/gateway_tables.h): CA files read and checked
// into trust stores, one per distinct set of client CAs, and each host's TLS
// settings and route. Control path; every worker then makes its own tables
// from the one result.

#include <map>
#include <memory>
#include <string>

#include "control/config.h"
#include "dataplane/gateway/gateway_tables.h"

namespace mtlsgw::control {

// Null, with `error` naming the CA or host and the problem, when a CA file
// or CRL does not load or check. Warnings of the trust stores (a CA without
// CRL, an expired CA...) are appended to `warnings`.
//
// slots: the gateway's counter-slot registry (host_slots.h), shared by
// every publication; null makes one (slots by position). generation: the
// publication's number.
//
// stores: trust stores of earlier specs by exactly what they were built
// from (the CAs' names, certificates, CRLs and depth); one whose sources
// did not change is used again, so its generation, and the verdicts cached
// under it (verdict_cache.h), survive a change elsewhere. Replaced on return
// by the stores this spec uses. Null: every store is built.
using TrustStoreCache = std::map<std::string, std::shared_ptr<const tls::TrustStore>>;
std::shared_ptr<const gateway::GatewaySpec> make_gateway_spec(const Config& config, std::string& error,
                                                              std::vector<std::string>& warnings,
                                                              const std::shared_ptr<gateway::HostSlots>& slots = nullptr,
                                                              uint64_t generation = 1,
                                                              TrustStoreCache* stores = nullptr);

}  // namespace mtlsgw::control
