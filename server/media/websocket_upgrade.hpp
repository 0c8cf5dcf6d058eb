#pragma once
// The server side of the WebSocket opening handshake (RFC 6455 section 4.2), done by callstream
// rather than Beast so that the media transport can speak RFC 6455 itself from the first byte
// after the request (codec/websocket_frame.hpp).
//
// Pure functions over a parsed request, callable from any thread. The caller has already
// checked websocket::is_upgrade (GET, HTTP/1.1, Connection: upgrade, Upgrade: websocket).

#include <optional>
#include <string>
#include <string_view>

#include "server/http/responses.hpp"

namespace callstream::server {

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string websocket_accept_key(std::string_view key);

// The refusal for a request the handshake cannot accept (no Host, a Sec-WebSocket-Key that is
// not 16 bytes of base64, a version other than 13: 426 naming 13), or nullopt when it can.
std::optional<http_response> refuse_websocket_handshake(const http_request& req);

// The whole 101 Switching Protocols response for an accepted request, as bytes to write.
std::string websocket_upgrade_response(const http_request& req);

} // namespace callstream::server
