#include "server/media/close_reason.hpp"

namespace callstream::server {

std::string_view to_string(close_reason r) noexcept {
    switch (r) {
    case close_reason::stop:
        return "stop";
    case close_reason::peer_closed:
        return "peer_closed";
    case close_reason::vanished:
        return "vanished";
    case close_reason::invalid_json:
        return "invalid_json";
    case close_reason::bad_base64:
        return "bad_base64";
    case close_reason::binary_frame:
        return "binary_frame";
    case close_reason::protocol_order:
        return "protocol_order";
    case close_reason::too_big:
        return "too_big";
    case close_reason::slow_consumer:
        return "slow_consumer";
    case close_reason::idle_timeout:
        return "idle_timeout";
    case close_reason::websocket_error:
        return "websocket_error";
    case close_reason::bad_app:
        return "bad_app";
    case close_reason::shutdown:
        return "shutdown";
    case close_reason::upstream_failed:
        return "upstream_failed";
    case close_reason::count_:
        break;
    }
    return "unknown";
}

} // namespace callstream::server
