#include "server/bridge/upstream_protocol.hpp"

namespace callstream::server::bridge {

std::unique_ptr<upstream_protocol> make_upstream_protocol(const upstream_config& upstream) {
    if (upstream.protocol == "twilio") {
        return make_twilio_protocol(upstream);
    }
    if (upstream.protocol == "openai-realtime") {
        return make_openai_realtime_protocol(upstream);
    }
    if (upstream.protocol == "audio") {
        return make_audio_protocol(upstream);
    }
    return nullptr;
}

std::string validate_upstream(const upstream_config& upstream) {
    if (upstream.protocol == "twilio") {
        return validate_twilio_options(upstream);
    }
    if (upstream.protocol == "openai-realtime") {
        return validate_openai_realtime_options(upstream);
    }
    if (upstream.protocol == "audio") {
        return validate_audio_options(upstream);
    }
    return "--bridge-protocol " + upstream.name + "=" + upstream.protocol +
           ": unknown protocol (twilio, openai-realtime or audio)";
}

} // namespace callstream::server::bridge
