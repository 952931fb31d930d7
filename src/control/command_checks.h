#pragma once
// The checks commands run on what they bring (command.h's CommandChecks),
// with the real TLS engine: a host's contexts built once, a CA's trust store
// built once, a rule compiled. What passes here builds again at commit.

#include "control/commands/command.h"

namespace mtlsgw::control {

CommandChecks make_command_checks();

}  // namespace mtlsgw::control
