#pragma once
// Why a media stream ended, one value per /metrics counter (callstream_streams_closed_total).
// Plain values; callable from any thread.

#include <cstdint>
#include <string_view>

namespace callstream::server {

// Why a media stream ended; one counter each.
enum class close_reason : std::uint8_t {
    stop,            // Twilio sent stop, we closed normally
    peer_closed,     // the peer closed the WebSocket
    vanished,        // the connection broke without a close
    invalid_json,    // 1007
    bad_base64,      // 1007
    binary_frame,    // 1003
    protocol_order,  // 1008: media before start, wrong streamSid, ...
    too_big,         // 1009
    slow_consumer,   // 1008: outbound queue over its limit
    idle_timeout,    // no traffic from the peer
    websocket_error, // a WebSocket protocol violation (1002, or 1007 for text not UTF-8)
    bad_app,         // 1008: unknown processor named in customParameters
    shutdown,        // 1001: server shutting down
    upstream_failed, // the call's bridge upstream failed and its policy ended the stream
    count_
};
std::string_view to_string(close_reason r) noexcept;

} // namespace callstream::server
