#pragma once
// The client side of the WebSocket opening handshake (RFC 6455 sections 4.1 and 4.2.2) for the
// bridge's upstream socket, done by callstream rather than Beast so that the socket speaks
// RFC 6455 itself from the first byte after the response (codec/websocket_frame.hpp), as the
// media transport does on the server side.
//
// Pure functions, callable from any thread; no I/O. The request is built with Beast's HTTP
// types and written and its response read by the caller.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace callstream::server::bridge {

// A Sec-WebSocket-Key: 16 bytes (the caller's random ones) in base64.
std::string websocket_client_key(const std::array<std::uint8_t, 16>& nonce);

struct upgrade_request_fields {
    std::string host;   // the Host header: host, and ":port" when not the scheme's default
    std::string target; // path and query
    std::string key;    // websocket_client_key()
    std::string user_agent;
    const std::vector<std::pair<std::string, std::string>>* headers = nullptr; // configured
    std::string subprotocol; // empty: none asked for
};

// The GET upgrade request. A configured header whose name or value holds CR, LF or NUL is left
// out (it could split the request) and named in `refused`.
boost::beast::http::request<boost::beast::http::empty_body>
websocket_upgrade_request(const upgrade_request_fields& fields, std::string* refused);

// Why the upstream's response does not accept our upgrade, or "" when it does: the status must
// be 101, Upgrade "websocket", Connection has "upgrade", Sec-WebSocket-Accept the key's, no
// extension (none is offered), and Sec-WebSocket-Protocol what was asked for (or absent when
// nothing was). `subprotocol_mismatch` is set when that last rule is the one broken.
std::string
check_upgrade_response(const boost::beast::http::response<boost::beast::http::string_body>& res,
                       std::string_view key, std::string_view subprotocol,
                       bool* subprotocol_mismatch);

} // namespace callstream::server::bridge
