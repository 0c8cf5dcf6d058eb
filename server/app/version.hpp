#pragma once
// callstream's version, sent in the Server header of HTTP and WebSocket responses.

namespace callstream::server {
inline constexpr const char* version = "0.1.0";
}
