#include "server/media/websocket_upgrade.hpp"

#include <array>
#include <cstdint>

#include <openssl/sha.h>

#include "codec/base64.hpp"
#include "server/app/version.hpp"

namespace callstream::server {

std::string websocket_accept_key(std::string_view key) {
    constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    std::string input(key);
    input += guid;
    std::array<std::uint8_t, SHA_DIGEST_LENGTH> digest{};
    SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest.data());
    return codec::base64_encode(digest);
}

std::optional<http_response> refuse_websocket_handshake(const http_request& req) {
    auto refuse = [&](http::status status, std::string_view why) {
        auto res = json_error(req, status, why);
        res.keep_alive(false);
        return res;
    };
    if (req.find(http::field::host) == req.end()) {
        return refuse(http::status::bad_request, "WebSocket upgrade without a Host header");
    }
    const auto key = req[http::field::sec_websocket_key];
    std::array<std::uint8_t, 18> decoded{};
    std::size_t n = 0;
    if (key.size() != 24 || codec::base64_decode(key, decoded, n) || n != 16) {
        return refuse(http::status::bad_request,
                      "Sec-WebSocket-Key must be 16 bytes in base64 (RFC 6455 section 4.1)");
    }
    if (req[http::field::sec_websocket_version] != "13") {
        auto res = refuse(http::status::upgrade_required, "Sec-WebSocket-Version must be 13");
        res.set(http::field::sec_websocket_version, "13");
        return res;
    }
    return std::nullopt;
}

std::string websocket_upgrade_response(const http_request& req) {
    std::string out = "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: ";
    out += websocket_accept_key(req[http::field::sec_websocket_key]);
    out += "\r\nServer: callstream/";
    out += version;
    out += "\r\n\r\n";
    return out;
}

} // namespace callstream::server
