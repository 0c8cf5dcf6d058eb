// Placeholder until the openai_realtime protocol lands (branch bridge-protocols replaces this
// file): startup refuses an upstream that selects it, so no call can reach a missing protocol.
#include "server/bridge/upstream_protocol.hpp"

namespace callstream::server::bridge {

std::unique_ptr<upstream_protocol>
make_openai_realtime_protocol(const upstream_config& /*upstream*/) {
    return nullptr;
}

std::string validate_openai_realtime_options(const upstream_config& upstream) {
    return "--bridge-protocol " + upstream.name + "=" + upstream.protocol +
           ": not available in this build";
}

} // namespace callstream::server::bridge
