#include "server/bridge/upstream_handshake.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include "codec/base64.hpp"
#include "server/media/websocket_upgrade.hpp"

namespace callstream::server::bridge {
namespace {

namespace http = boost::beast::http;

bool splits_a_header(std::string_view s) {
    return s.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos;
}

} // namespace

std::string websocket_client_key(const std::array<std::uint8_t, 16>& nonce) {
    return codec::base64_encode(nonce);
}

http::request<http::empty_body> websocket_upgrade_request(const upgrade_request_fields& fields,
                                                          std::string* refused) {
    http::request<http::empty_body> req{http::verb::get, fields.target, 11};
    req.set(http::field::host, fields.host);
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, fields.key);
    req.set(http::field::sec_websocket_version, "13");
    req.set(http::field::user_agent, fields.user_agent);
    if (fields.headers != nullptr) {
        for (const auto& [name, value] : *fields.headers) {
            if (name.empty() || splits_a_header(name) || splits_a_header(value)) {
                if (refused != nullptr) {
                    *refused = name;
                }
                continue;
            }
            req.set(name, value);
        }
    }
    if (!fields.subprotocol.empty()) {
        req.set(http::field::sec_websocket_protocol, fields.subprotocol);
    }
    return req;
}

std::string check_upgrade_response(const http::response<http::string_body>& res,
                                   std::string_view key, std::string_view subprotocol,
                                   bool* subprotocol_mismatch) {
    if (subprotocol_mismatch != nullptr) {
        *subprotocol_mismatch = false;
    }
    if (res.result() != http::status::switching_protocols) {
        return "the upstream answered HTTP " + std::to_string(res.result_int()) +
               " instead of 101 Switching Protocols";
    }
    if (!boost::beast::iequals(res[http::field::upgrade], "websocket")) {
        return "the 101 response has no 'Upgrade: websocket'";
    }
    if (!http::token_list{res[http::field::connection]}.exists("upgrade")) {
        return "the 101 response has no 'Connection: upgrade'";
    }
    if (res[http::field::sec_websocket_accept] != websocket_accept_key(key)) {
        return "Sec-WebSocket-Accept does not match our Sec-WebSocket-Key";
    }
    if (res.find(http::field::sec_websocket_extensions) != res.end()) {
        return "the upstream chose an extension, and none was offered";
    }
    const auto answered = res[http::field::sec_websocket_protocol];
    if (answered != subprotocol) {
        if (subprotocol_mismatch != nullptr) {
            *subprotocol_mismatch = true;
        }
        return "asked for '" + std::string(subprotocol) + "', the upstream answered '" +
               std::string(answered) + "'";
    }
    return {};
}

} // namespace callstream::server::bridge
